"""Statistics over seeds: which accuracy gaps between adapters are real, and which are noise.

A seed draws a case's starting weights and its batch order, so the accuracy of one seed is one
sample of what a setup achieves. Over N seeds (`run --seeds N`):

- accuracy is the mean with a 95% Student t-interval (mean +- t(0.975, N-1) * s / sqrt(N), s the
  sample standard deviation): N is small (3 to 10), so the normal interval would be too narrow;
- a gap between two adapters is significant when Welch's t-test (unequal variances: one framework's
  seeds may spread more than another's) on their per-seed accuracies gives p < ALPHA after Holm's
  correction over the run's family of comparisons: every pair of adapters on every model. The view shows
  each model's best adapter against the others, a pair chosen after looking at the means; adjusting over
  every pair, not only the shown ones, keeps the family-wise error at ALPHA however they were chosen. A gap
  not found significant is "not significant with N seeds", never "within noise": a test that finds nothing
  with 3 seeds has shown nothing;
- time to target is the median over the seeds that reached it, with how many did ("reached in k of
  N"), as AlgoPerf reports a target only when enough trials reach it;
- step time takes every process of every seed: the seed changes no shape, so each seed's process is
  one more process of the same step, as `run --repeat` makes.

The view, `compare` and the report all use these functions, so they agree on every figure.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.stats.multiplicity import holm

LEVEL = 0.95  # every interval over seeds
ALPHA = 0.05  # every test over seeds: a gap is significant at p < ALPHA
_SEED_PART = re.compile(r"s\d+")


def is_seed_part(part: str) -> bool:
    """Whether one '/'-separated part of a case id is its seed ('s0', 's12')."""
    return _SEED_PART.fullmatch(part) is not None


def seedless_id(case_id: str) -> str:
    """The case id with its seed replaced by 's*': the same setup, whatever the seed."""
    return "/".join("s*" if is_seed_part(p) else p for p in case_id.split("/"))


@dataclass(frozen=True)
class Interval:
    """A mean over seeds and its t-interval; `half` is None below two seeds (no spread to judge)."""

    mean: float
    half: float | None
    n: int

    @property
    def low(self) -> float | None:
        return None if self.half is None else self.mean - self.half

    @property
    def high(self) -> float | None:
        return None if self.half is None else self.mean + self.half


def t_interval(values: Iterable[float], level: float = LEVEL) -> Interval:
    """Mean and Student-t confidence interval of `values` (NaN left out)."""
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if x.size == 0:
        return Interval(math.nan, None, 0)
    if x.size == 1:
        return Interval(float(x[0]), None, 1)
    sem = float(np.std(x, ddof=1)) / math.sqrt(x.size)
    return Interval(float(x.mean()), float(stats.t.ppf(0.5 + level / 2, x.size - 1)) * sem, int(x.size))


def welch_p(a: Iterable[float], b: Iterable[float]) -> float | None:
    """Two-sided p of Welch's t-test between two samples (None below two values a side). Two samples
    without any spread are certainly different when their means differ (p 0) and equal when not (p 1)."""
    from scipy import stats

    x, y = (np.asarray([v for v in s if v is not None and not math.isnan(v)], dtype=float) for s in (a, b))
    if x.size < 2 or y.size < 2:
        return None
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        return 0.0 if x[0] != y[0] else 1.0
    with warnings.catch_warnings():  # one side without spread: scipy warns of lost precision, the p stands
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(x, y, equal_var=False).pvalue)


def per_seed(rows: pd.DataFrame, column: str) -> list[float]:
    """One value per seed of a case's rows: the median over that seed's processes (run --repeat)."""
    if rows.empty or column not in rows:
        return []
    values = rows.groupby("seed", sort=True)[column].median()
    return [float(v) for v in values if pd.notna(v)]


@dataclass(frozen=True)
class Reached:
    """Time to target over seeds: the median over the seeds that reached it, and how many did."""

    median_s: float | None
    reached: int
    seeds: int

    def text(self) -> str:
        if self.seeds <= 1:
            return "-" if self.median_s is None else f"{self.median_s:.1f}s"
        shown = "-" if self.median_s is None else f"{self.median_s:.1f}s"
        return f"{shown} {self.reached}/{self.seeds}"


def time_to_target(rows: pd.DataFrame) -> Reached:
    """Time to target of a case's rows over its seeds (only seeds with an accuracy count)."""
    if rows.empty or "time_to_target_s" not in rows:
        return Reached(None, 0, 0)
    with_acc = rows[rows["test_accuracy"].notna()] if "test_accuracy" in rows else rows
    seeds = with_acc["seed"].nunique() if "seed" in with_acc else len(with_acc)
    times = per_seed(with_acc, "time_to_target_s")
    return Reached(float(np.median(times)) if times else None, len(times), int(seeds))


@dataclass(frozen=True)
class Gap:
    """An accuracy gap between the best and another adapter on one model."""

    model: str
    best: str
    other: str
    best_acc: Interval
    other_acc: Interval
    p_value: float | None  # Welch's two-sided p, Holm-adjusted over the run's family; None: under two seeds a side
    p_raw: float | None = None  # before the adjustment

    @property
    def significant(self) -> bool | None:
        return None if self.p_value is None else self.p_value < ALPHA

    def text(self) -> str:
        test = "" if self.p_value is None else f", Holm p={self.p_value:.2g}"
        return (f"{self.model} ({self.other} {format_accuracy(self.other_acc)} vs {self.best} "
                f"{format_accuracy(self.best_acc)}{test})")


def format_accuracy(acc: Interval) -> str:
    """'91.2%' for one seed, '91.2±0.8%' over several (the half-width of the t-interval, in points)."""
    if acc.n == 0:
        return ""
    if acc.half is None:
        return f"{100 * acc.mean:.1f}%"
    return f"{100 * acc.mean:.1f}±{100 * acc.half:.1f}%"


def accuracy_gaps(df: pd.DataFrame, label: str = "_model") -> list[Gap]:
    """Per model (the `label` column), each adapter against the adapter of the best mean accuracy, with
    Welch's p Holm-adjusted over every pair of adapters of every model of the run (the module says why)."""
    shown, family = [], {}  # family: (model, a, b) -> raw p of every testable pair
    ok = df[df["test_accuracy"].notna()]
    for model, g in ok.groupby(label, sort=False):
        accs = {a: per_seed(rows, "test_accuracy") for a, rows in g.groupby("adapter", sort=False)}
        if len(accs) < 2:
            continue
        names = list(accs)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                p = welch_p(accs[a], accs[b])
                if p is not None:
                    family[(str(model), *sorted((a, b)))] = p
        means = {a: t_interval(v) for a, v in accs.items()}
        best = max(means, key=lambda a: means[a].mean)
        shown += [(str(model), best, a, means[best], means[a]) for a in accs if a != best]
    adjusted = dict(zip(family, holm(list(family.values())), strict=True))
    out = []
    for model, best, a, best_acc, other_acc in shown:
        key = (model, *sorted((best, a)))
        out.append(Gap(model, best, a, best_acc, other_acc, adjusted.get(key), family.get(key)))
    return out
