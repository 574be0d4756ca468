"""Convergence agreement: does the same model, from the same weights, on the same batches, learn alike
in every framework?

`bench converge` trains each model in each adapter with one starting-weight scheme (`--init keras` or
`torch`: canonical weights, bench/core/canonical.py) and N seeds; a seed fixes the weights and the batch
order, so the seeds of two adapters pair up: seed s of keras and seed s of torch start from the same
weights and see the same batches. What remains between them is the framework: its kernels' rounding,
and any difference in the update rule (Adam's epsilon, a gate's formula, the loss's reduction).

The yardstick is the spread between seeds: two frameworks agree when the curves of the same seed differ
by less than the curves of different seeds. Per model, for the reference adapter (the first) and each
other adapter, on every evaluation k both curves hold, for the test loss and the test accuracy:

- d[s, k] = other[s, k] - reference[s, k] (paired by seed);
- spread[k] = sqrt((var_s reference[:, k] + var_s other[:, k]) / 2), the between-seed standard
  deviation (ddof 1) pooled over the two adapters;
- the curves part at the first k where |mean_s d[s, k]| > spread[k];
- the test: a one-sample t-test over seeds of each seed's mean difference along the curve (one number
  per seed, so the evaluations of a curve are not counted as independent samples), Holm-corrected over
  the two metrics.

The verdict is `differ` when the test is significant (p < alpha) and the curves part somewhere, `agree`
otherwise, and `inconclusive` below two paired seeds. A systematic gap smaller than the seed spread is
reported (its p) but agrees: that is the question the check answers, as MLPerf's reference-convergence
check asks whether a submission converges within the spread of the reference runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.stats.seeds import ALPHA, seedless_id

METRICS = (("curve_test_loss", "test loss"), ("curve_test_accuracy", "test accuracy"))


@dataclass(frozen=True)
class MetricGap:
    metric: str
    largest: float  # the largest |mean paired difference| over the evaluations
    spread: float  # the between-seed standard deviation at that evaluation
    at_step: int | None
    parted_at: int | None  # the first evaluation step where |mean difference| > spread
    p_value: float | None  # one-sample t-test over seeds of the mean difference along the curve

    @property
    def ratio(self) -> float:
        if self.spread > 0:
            return self.largest / self.spread
        return 0.0 if self.largest == 0 else math.inf


@dataclass(frozen=True)
class Agreement:
    model: str
    reference: str
    other: str
    seeds: int  # seeds both adapters finished
    evaluations: int
    metrics: tuple[MetricGap, ...]
    p_value: float | None  # the smallest Holm-adjusted p over the metrics
    verdict: str  # agree, differ or inconclusive
    reason: str = ""

    @property
    def parted_at(self) -> int | None:
        steps = [m.parted_at for m in self.metrics if m.parted_at is not None]
        return min(steps) if steps else None


def one_sample_p(values: np.ndarray) -> float:
    """Two-sided p of a t-test of mean 0; without any spread: 0 if the values are not 0, else 1."""
    from scipy import stats

    if np.ptp(values) == 0:
        return 1.0 if values[0] == 0 else 0.0
    return float(stats.ttest_1samp(values, 0.0).pvalue)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of p values (the family-wise error rate), in the input order."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def metric_gap(name: str, steps: list[int], reference: np.ndarray, other: np.ndarray) -> MetricGap:
    """The gap between two (seeds x evaluations) curves of one metric, paired by seed."""
    d = other - reference
    mean = d.mean(axis=0)
    spread = np.sqrt((reference.var(axis=0, ddof=1) + other.var(axis=0, ddof=1)) / 2)
    k = int(np.argmax(np.abs(mean)))
    parted = np.flatnonzero(np.abs(mean) > spread)
    return MetricGap(name, float(abs(mean[k])), float(spread[k]), steps[k],
                     steps[int(parted[0])] if parted.size else None, one_sample_p(d.mean(axis=1)))


def _curves(rows: pd.DataFrame, column: str, steps: list[int]) -> dict[int, np.ndarray]:
    """seed -> the metric at `steps` (the seed's first process; None where a step is missing)."""
    out = {}
    for seed, g in rows.sort_values("repeat").groupby("seed", sort=True):
        r = g.iloc[0]
        values = dict(zip(r["curve_steps"], r[column] if len(r[column]) else [math.nan] * len(r["curve_steps"]),
                          strict=True))
        out[int(seed)] = np.array([values.get(s, math.nan) for s in steps], dtype=float)
    return out


def compare_curves(model: str, reference: str, other: str, ref_rows: pd.DataFrame, other_rows: pd.DataFrame,
                   alpha: float = ALPHA) -> Agreement:
    """The agreement of two adapters' curves on one model, over the seeds both finished."""
    common = sorted(set(ref_rows["seed"]) & set(other_rows["seed"]))
    step_sets = [set(r) for rows in (ref_rows, other_rows) for r in rows["curve_steps"]]
    steps = sorted(set.intersection(*step_sets)) if step_sets else []
    if len(common) < 2 or not steps:
        why = f"{len(common)} seed(s) finished in both" if len(common) < 2 else "no evaluation step in common"
        return Agreement(model, reference, other, len(common), len(steps), (), None, "inconclusive", why)
    metrics = []
    for column, name in METRICS:
        ref, oth = (_curves(rows[rows["seed"].isin(common)], column, steps) for rows in (ref_rows, other_rows))
        a, b = np.stack([ref[s] for s in common]), np.stack([oth[s] for s in common])
        if np.isnan(a).any() or np.isnan(b).any():
            continue  # older records hold no test loss
        metrics.append(metric_gap(name, steps, a, b))
    adjusted = holm([m.p_value for m in metrics])
    p = min(adjusted) if adjusted else None
    parted = any(m.parted_at is not None for m in metrics)
    verdict = "differ" if p is not None and p < alpha and parted else "agree"
    return Agreement(model, reference, other, len(common), len(steps), tuple(metrics), p, verdict)


def model_key(case_id: str) -> str:
    """The case without its adapter and seed: what the adapters' curves are compared on."""
    head, _, rest = seedless_id(case_id).partition("/")
    label = head.split(":", 1)[0] + ":" if ":" in head else ""
    return label + rest


def agreements(df: pd.DataFrame, alpha: float = ALPHA) -> list[Agreement]:
    """Every model of a run: the first adapter against each other one, over the seeds both finished ok."""
    ok = df[(df["status"] == "ok") & df["curve_steps"].map(len).gt(0)]
    out = []
    for model, g in ok.groupby(ok["case_id"].map(model_key), sort=False):
        names = list(dict.fromkeys(g["adapter"]))
        for other in names[1:]:
            out.append(compare_curves(model, names[0], other, g[g["adapter"] == names[0]], g[g["adapter"] == other],
                                      alpha))
    return out
