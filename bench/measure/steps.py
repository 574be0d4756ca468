"""Step-time statistics: robust summaries of the raw per-step times (bench/core/timer.py collects them).

Step 0
(tracing, compilation, kernel selection) is reported apart as `first_step_ms`; the next
`warmup_steps` are discarded; statistics come from the rest, except the steps that ran right after
one of the harness's curve evaluations (`settling_steps`): they are recorded but not summarised.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from bench.core.columns import columns
from bench.core.spread import cv

UNSTABLE_CV = 0.10  # step-time CV above this flags the row `step_time_unstable`
# Steps after each curve evaluation that the statistics leave out: an evaluation (thousands of test
# samples through the model) leaves caches and thread pools in another state, and the next steps pay
# for it. Measured on the `smoke` matrix with an evaluation every 5 steps: the two steps after each
# were 1.03-1.22x the median of the others for Keras (docs/measurements.md, "Curve evaluations"). For some models the
# evaluations also slow every later step; no number of left-out steps removes that (the same place).
SETTLE_STEPS = 2

COLUMNS = columns(
    "time",
    ("first_step_ms", "float", "step 0 alone: tracing, compilation, kernel selection", {"unit": "ms", "fmt": ".0f", "better": "lower", "table": True}),
    ("warmup_steps", "int", "steps after step 0 left out of the statistics"),
    ("timed_steps", "int", "steps the statistics summarise"),
    ("step_time_ms_median", "float", "median training step time", {"unit": "ms", "fmt": ".2f", "better": "lower", "gate": True, "table": True}),
    ("step_time_ms_mean", "float", "mean training step time", {"unit": "ms", "fmt": ".2f", "better": "lower"}),
    ("step_time_ms_p10", "float", "10th percentile of the step times", {"unit": "ms", "fmt": ".2f", "better": "lower", "table": True}),
    ("step_time_ms_p90", "float", "90th percentile of the step times", {"unit": "ms", "fmt": ".2f", "better": "lower", "table": True}),
    ("step_time_ms_iqr", "float", "interquartile range of the step times", {"unit": "ms", "fmt": ".2f"}),
    ("step_time_cv", "float", "coefficient of variation of the step times: sample std (ddof=1) / mean, bench/core/spread.py", {"fmt": ".3f", "table": True}),
    ("step_time_unstable", "bool", f"step_time_cv above {UNSTABLE_CV:g}: the timing of this row is noisy"),
    ("throughput_samples_per_s", "float", "examples per second at the median step time", {"unit": "samples/s", "fmt": ".0f", "better": "higher", "gate": True, "table": True}),
)
RAW_COLUMNS = columns(
    "raw steps",
    ("step_times_ms", "list[float]", "every step's time, step 0 included: the input of compare and ab", {"unit": "ms"}),
    ("untimed_steps", "list[int]", "indices into step_times_ms left out of the statistics: the steps right after a curve evaluation"),
)


@dataclass(frozen=True)
class StepStats:
    """Statistics of the timed (post warm-up) steps; NaN where there were no timed steps."""

    first_step_ms: float
    warmup_steps: int
    timed_steps: int
    median_ms: float
    mean_ms: float
    p10_ms: float
    p90_ms: float
    iqr_ms: float
    cv: float  # std / mean of the timed steps (population std)

    def columns(self) -> dict[str, float | int | bool | None]:
        """The record's time columns (NaN stored as missing)."""
        def finite(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {
            "first_step_ms": finite(self.first_step_ms),
            "warmup_steps": self.warmup_steps,
            "timed_steps": self.timed_steps,
            "step_time_ms_median": finite(self.median_ms),
            "step_time_ms_mean": finite(self.mean_ms),
            "step_time_ms_p10": finite(self.p10_ms),
            "step_time_ms_p90": finite(self.p90_ms),
            "step_time_ms_iqr": finite(self.iqr_ms),
            "step_time_cv": finite(self.cv),
            "step_time_unstable": bool(self.cv > UNSTABLE_CV) if self.timed_steps else None,
        }


def settling_steps(evaluated_after: Iterable[int], n_steps: int, settle: int = SETTLE_STEPS) -> list[int]:
    """Indices (into the per-step times) of the steps that ran within `settle` steps after a curve
    evaluation. An evaluation "after step s" (the curve's step s: s steps done) precedes the steps of
    index s, s+1, ...; the evaluation after the last step precedes none. Empty when leaving them out
    would keep fewer than half of the steps after step 0 (an evaluation every step or two): then no
    step is undisturbed, and dropping most of them would hide that rather than fix it."""
    out = sorted({s + k for s in evaluated_after for k in range(settle) if 0 < s + k < n_steps})
    return out if 2 * len(out) <= n_steps - 1 else []


def timed_times(times_ms: Sequence[float], warmup_steps: int, untimed: Iterable[int] = ()) -> np.ndarray:
    """The step times that statistics are computed from: after step 0 and `warmup_steps`, without the
    `untimed` indices (the settling steps). `compare`, `ab` and the exports read step times through
    this too, so every summary of a record agrees with its stored median."""
    times = np.asarray(times_ms, dtype=float)
    keep = np.zeros(times.size, dtype=bool)
    keep[1 + max(warmup_steps, 0) :] = True
    drop = [i for i in untimed if 0 <= i < times.size]
    keep[drop] = False
    return times[keep]


def step_stats(times_ms: Sequence[float], warmup_steps: int, untimed: Iterable[int] = ()) -> StepStats:
    """Split raw per-step times into first step, warm-up and timed steps; summarize the latter,
    leaving out the `untimed` indices (settling_steps).

    Percentiles use linear interpolation (numpy's default), so the values are exact and
    reproducible on hand-made samples.
    """
    times = np.asarray(times_ms, dtype=float)
    first = float(times[0]) if times.size else math.nan
    discarded = min(warmup_steps, max(times.size - 1, 0))
    timed = timed_times(times, discarded, untimed)
    if timed.size == 0:
        nan = math.nan
        return StepStats(first, discarded, 0, nan, nan, nan, nan, nan, nan)
    p10, p25, p50, p75, p90 = np.percentile(timed, [10, 25, 50, 75, 90])
    mean = float(timed.mean())
    spread = cv(timed)
    return StepStats(
        first_step_ms=first,
        warmup_steps=discarded,
        timed_steps=int(timed.size),
        median_ms=float(p50),
        mean_ms=mean,
        p10_ms=float(p10),
        p90_ms=float(p90),
        iqr_ms=float(p75 - p25),
        cv=spread,
    )


def throughput(batch_size: int, median_ms: float) -> float:
    """Samples per second at the median step time."""
    if not median_ms or math.isnan(median_ms):
        return math.nan
    return batch_size * 1000.0 / median_ms
