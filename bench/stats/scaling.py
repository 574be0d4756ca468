"""Cost curves of a sweep: the fitted exponent of step time against an axis, and where the fastest
adapter changes.

- **Exponent**: least squares on log(step time) = a + b log(axis value); b is the exponent (1: linear,
  2: quadratic), its interval the Student-t interval of the slope (n - 2 degrees of freedom). The FLOP
  model (bench/measure/flops.py) predicts b -> 2 in units and b -> 1 in timesteps and batch size once the
  matrix work dominates; below that, launch and per-step overheads flatten the curve (b < prediction).
  The FLOP model speaks of large sizes, so the exponent over the largest three points (`upper`) is
  reported beside the one over every point.
- **Crossover**: where the fastest adapter changes along the axis, the point where the two adapters' step
  times are equal, interpolated linearly in log-log space (each curve is a power law between its measured
  points), said in words: "keras is faster below about 180 units". A point where the two fastest are
  within TIE (10%) of each other decides nothing: one process per point moves by several percent between
  fresh processes, and a ranking that flips inside that band is noise, not a crossover (at 5%, the
  `scaling` matrix read SimpleRNN's timesteps as keras, torch, keras at 7, 14, 28 on a 6.5% gap); the
  interpolation then spans the tie. `run --repeat 3` narrows what a point's noise can do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bench.core.status import is_timed
from bench.stats.break_even import variant

LEVEL = 0.95
TIE = 0.10  # two adapters within 10% at a point: neither is faster there
UPPER_POINTS = 3  # the exponent "at large sizes": over the largest three values of the axis
# What the analytic FLOP model predicts for large sizes (bench/measure/flops.py: matmuls of in x h and
# h x h per timestep and gate, times batch and timesteps); layers add equal blocks: linear.
FLOP_EXPONENT = {"units": 2.0, "timesteps": 1.0, "batch_size": 1.0, "layers": 1.0}
AXIS_WORDS = {"units": "units", "timesteps": "timesteps", "batch_size": "examples per batch", "layers": "layers"}


@dataclass(frozen=True)
class Fit:
    exponent: float
    low: float | None  # the interval of the exponent (None below 3 points)
    high: float | None
    points: int


def fit_exponent(x: Sequence[float], y: Sequence[float], level: float = LEVEL) -> Fit | None:
    """The least-squares slope of log y on log x with its t-interval; None below two usable points."""
    from scipy import stats

    pairs = [(a, b) for a, b in zip(x, y, strict=True) if a and b and a > 0 and b > 0 and math.isfinite(b)]
    if len(pairs) < 2:
        return None
    lx, ly = np.log([p[0] for p in pairs]), np.log([p[1] for p in pairs])
    if np.ptp(lx) == 0:
        return None
    fit = stats.linregress(lx, ly)
    if len(pairs) < 3:
        return Fit(float(fit.slope), None, None, len(pairs))
    half = float(stats.t.ppf(0.5 + level / 2, len(pairs) - 2)) * float(fit.stderr)
    return Fit(float(fit.slope), float(fit.slope) - half, float(fit.slope) + half, len(pairs))


@dataclass(frozen=True)
class Crossover:
    at: float  # the axis value where the two are equally fast (interpolated)
    below: str  # the adapter faster below it
    above: str  # the adapter faster above it

    def text(self, axis: str, what: str = "") -> str:
        words = AXIS_WORDS.get(axis, axis)
        where = f" for {what}" if what else ""
        return f"{self.below} is faster below about {_round(self.at)} {words}{where}, {self.above} above"


def _round(v: float) -> str:
    """Two significant figures: an interpolated crossover is no more precise than that."""
    two = float(f"{v:.2g}")
    return f"{two:,.0f}" if two >= 10 else f"{two:g}"


def clear_winner(times: Mapping[str, Sequence[float | None]], i: int, tie: float = TIE) -> str | None:
    """The adapter fastest at point i by more than `tie` over every other one there; None for a tie."""
    have = sorted((t[i], a) for a, t in times.items() if t[i] is not None and math.isfinite(t[i]))
    if not have or (len(have) > 1 and have[1][0] < have[0][0] * (1 + tie)):
        return None
    return have[0][1]


def crossovers(x: Sequence[float], times: Mapping[str, Sequence[float | None]], tie: float = TIE) -> list[Crossover]:
    """Where the clearly fastest adapter changes along the axis (x ascending; None where an adapter has no
    time); ties are skipped, and the crossing is interpolated between the two clear points around it."""
    clear = [(i, w) for i in range(len(x)) if (w := clear_winner(times, i, tie)) is not None]
    out = []
    for (i, a), (j, b) in zip(clear, clear[1:], strict=False):
        if a == b or None in (times[a][i], times[a][j], times[b][i], times[b][j]):
            continue
        d0, d1 = math.log(times[a][i] / times[b][i]), math.log(times[a][j] / times[b][j])  # < 0 at i, > 0 at j
        frac = d0 / (d0 - d1) if d0 != d1 else 0.5
        at = math.exp(math.log(x[i]) + frac * (math.log(x[j]) - math.log(x[i])))
        out.append(Crossover(at, a, b))
    return out


@dataclass(frozen=True)
class SweepSeries:
    """One swept axis for one model family: every adapter's step time (and memory) per axis value."""

    axis: str
    family: str  # the model and every setting but the axis, e.g. 'rnn-uni, 1 layer, T=28, batch 64'
    values: tuple[int, ...]  # ascending
    times: dict[str, list[float | None]]  # adapter -> median step time (ms) per value; None: no ok case
    memory: dict[str, list[float | None]]  # adapter -> peak memory (MB) per value
    memory_label: str
    statuses: dict[tuple[str, int], str]  # (adapter, value) -> a status other than ok

    @property
    def fits(self) -> dict[str, Fit | None]:
        return {a: fit_exponent(self.values, t) for a, t in self.times.items()}

    @property
    def upper_fits(self) -> dict[str, Fit | None]:
        """The exponent over the largest UPPER_POINTS values: what the FLOP model's b speaks of."""
        if len(self.values) <= UPPER_POINTS:
            return {a: None for a in self.times}
        return {a: fit_exponent(self.values[-UPPER_POINTS:], t[-UPPER_POINTS:]) for a, t in self.times.items()}

    @property
    def crossings(self) -> list[Crossover]:
        return crossovers(self.values, self.times)


AXIS_COLUMN = {"units": "units", "timesteps": "timesteps", "batch_size": "batch_size", "layers": "layers"}


def _axis_value(row, axis: str) -> int:
    if axis == "units":
        return int(str(row["units"]).split(",")[0])
    return int(row[AXIS_COLUMN[axis]])


def _family(row, axis: str) -> str:
    parts = [f"{row['cell']}-{'bi' if row['bidirectional'] else 'uni'}"]
    if axis != "units":
        parts.append(f"{str(row['units']).split(',')[0]} units")
    if axis != "layers":
        parts.append(f"{int(row['layers'])} layer{'s' if int(row['layers']) != 1 else ''}")
    if axis != "timesteps":
        parts.append(f"T={int(row['timesteps'])}" + (f"x{int(row['features'])}" if int(row["features"]) != 28 else ""))
    if axis != "batch_size":
        parts.append(f"batch {int(row['batch_size'])}")
    return ", ".join(parts)


def sweep_series(df) -> list[SweepSeries]:
    """Every (axis, model family) of a run's sweeps, in the order the run holds them; adapters are named
    with their compile switch where the run has one (the view's column groups)."""
    import pandas as pd

    if "sweep_axes" not in df or not df["sweep_axes"].fillna("").astype(bool).any():
        return []
    axes = list(dict.fromkeys(a for tags in df["sweep_axes"].fillna("") for a in tags.split(",") if a))
    gpu = "gpu_mem_peak_mb" in df and df["gpu_mem_peak_mb"].notna().any()
    mem_col, mem_label = ("gpu_mem_peak_mb", "GPU memory (NVML, MB)") if gpu else ("cpu_rss_peak_mb", "CPU peak RSS (MB)")
    jit = df["jit_compile"] if "jit_compile" in df else pd.Series("auto", index=df.index)
    name = pd.Series([variant(a, j) for a, j in zip(df["adapter"], jit, strict=True)], index=df.index)
    out = []
    for axis in axes:
        rows = df[df["sweep_axes"].fillna("").str.split(",").map(lambda tags, a=axis: a in tags)]
        rows = rows.assign(_family=[_family(r, axis) for _, r in rows.iterrows()],
                           _value=[_axis_value(r, axis) for _, r in rows.iterrows()], _adapter=name.loc[rows.index])
        for family, g in rows.groupby("_family", sort=False):
            values = tuple(sorted(set(g["_value"])))
            adapters = list(dict.fromkeys(g["_adapter"]))
            times = {a: [None] * len(values) for a in adapters}
            memory = {a: [None] * len(values) for a in adapters}
            statuses = {}
            for (a, v), cell in g.groupby(["_adapter", "_value"], sort=False):
                i = values.index(v)
                bad = [s for s in cell["status"] if not is_timed(s)]
                if bad:
                    statuses[(a, int(v))] = bad[0]
                    continue
                times[a][i] = float(cell["step_time_ms_median"].median())
                mem = cell[mem_col].median() if mem_col in cell else None
                memory[a][i] = None if mem is None or pd.isna(mem) else float(mem)
            out.append(SweepSeries(axis, str(family), values, times, memory, mem_label, statuses))
    return out
