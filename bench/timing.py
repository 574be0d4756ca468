"""Step timing: a minimal-cost timer the adapters call around each training step, and the
robust statistics derived from the raw times.

Protocol (see README "Measurement"): the adapter synchronizes the device before each clock read
(`sync`), keeps batch preparation outside `start()`/`stop()`, and times every step. Step 0
(tracing, compilation, kernel selection) is reported apart as `first_step_ms`; the next
`warmup_steps` are discarded; statistics come from the rest.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

UNSTABLE_CV = 0.10  # step-time CV above this flags the row `step_time_unstable`


class StepTimer:
    """Collects one duration per training step, in nanoseconds.

    Cost per step is two `perf_counter_ns` calls, one list append and the sync callback, which
    is what the framework needs anyway to have finished the step.
    """

    __slots__ = ("_sync", "_t0", "durations_ns")

    def __init__(self, sync: Callable[[], None] | None = None) -> None:
        self._sync = sync
        self._t0 = 0
        self.durations_ns: list[int] = []

    def start(self) -> None:
        if self._sync is not None:
            self._sync()  # earlier queued work must not leak into this step
        self._t0 = time.perf_counter_ns()

    def stop(self) -> None:
        if self._sync is not None:
            self._sync()
        self.durations_ns.append(time.perf_counter_ns() - self._t0)

    @property
    def steps(self) -> int:
        return len(self.durations_ns)

    def times_ms(self) -> list[float]:
        return [d / 1e6 for d in self.durations_ns]


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


def step_stats(times_ms: Sequence[float], warmup_steps: int) -> StepStats:
    """Split raw per-step times into first step, warm-up and timed steps; summarize the latter.

    Percentiles use linear interpolation (numpy's default), so the values are exact and
    reproducible on hand-made samples.
    """
    times = np.asarray(times_ms, dtype=float)
    first = float(times[0]) if times.size else math.nan
    discarded = min(warmup_steps, max(times.size - 1, 0))
    timed = times[1 + discarded :]
    if timed.size == 0:
        nan = math.nan
        return StepStats(first, discarded, 0, nan, nan, nan, nan, nan, nan)
    p10, p25, p50, p75, p90 = np.percentile(timed, [10, 25, 50, 75, 90])
    mean = float(timed.mean())
    cv = float(timed.std() / mean) if mean > 0 else math.nan
    return StepStats(
        first_step_ms=first,
        warmup_steps=discarded,
        timed_steps=int(timed.size),
        median_ms=float(p50),
        mean_ms=mean,
        p10_ms=float(p10),
        p90_ms=float(p90),
        iqr_ms=float(p75 - p25),
        cv=cv,
    )


def throughput(batch_size: int, median_ms: float) -> float:
    """Samples per second at the median step time."""
    if not median_ms or math.isnan(median_ms):
        return math.nan
    return batch_size * 1000.0 / median_ms
