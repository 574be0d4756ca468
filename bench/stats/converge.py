"""Convergence agreement: does the same model, from the same weights, on the same batches, learn alike
in every framework?

`bench converge` trains each model in each adapter with one starting-weight scheme (`--init keras` or
`torch`: canonical weights, bench/core/canonical.py) and N seeds; a seed fixes the weights and the batch
order, so the seeds of two adapters pair up: seed s of keras and seed s of torch start from the same
weights and see the same batches. What remains between them is the framework: its kernels' rounding,
and any difference in the update rule (Adam's epsilon, a gate's formula, the loss's reduction).

Per model, for the reference adapter (the first) and each other adapter, on every evaluation k both curves
hold, for the test loss and the test accuracy, paired by seed:

- d[s, k] = other[s, k] - reference[s, k]; each seed contributes one number, its mean difference along the
  curve, g[s] = mean_k d[s, k] (the evaluations of one curve are not independent samples);
- **agree** when an equivalence test shows |mean gap| < the metric's margin: TOST (two one-sided t-tests over
  the seeds' g, each at alpha; the claim is the intersection of both, so no correction is owed), with
  margins stated up front (MARGINS: 0.02 nats of test loss, 1 point of test accuracy; `--margin-loss`,
  `--margin-accuracy`);
- **differ** when a two-sided one-sample t-test over g is significant (Holm over the two metrics) and the
  gap is not shown to be within the margin;
- **inconclusive** otherwise: neither shown. Absence of evidence of a difference is not agreement: with 3
  seeds a t-test has 2 degrees of freedom and finds little, so a gap must be small and steady to be shown
  within the margin.

No verdict from fewer than MIN_SEEDS paired seeds. A model's verdict is `differ` when a metric differs,
`agree` when every metric agrees, else `inconclusive`. Seeds that one adapter did not finish are named.
Where the curves part (the first evaluation where |mean_s d| exceeds the between-seed spread,
spread[k] = sqrt((var_s reference + var_s other) / 2)) is shown to locate a difference, not to decide it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from bench.core.status import is_timed
from bench.stats.multiplicity import holm
from bench.stats.seeds import ALPHA, seedless_id

METRICS = (("curve_test_loss", "test loss"), ("curve_test_accuracy", "test accuracy"))
MARGINS = {"test loss": 0.02, "test accuracy": 0.01}  # |mean gap| shown below these: the curves agree
MIN_SEEDS = 3  # below this a t-test over seeds has under 2 degrees of freedom: no verdict


@dataclass(frozen=True)
class MetricGap:
    metric: str
    mean_gap: float  # the mean over seeds of each seed's mean difference along the curve (other - reference)
    margin: float  # the equivalence margin of this metric
    largest: float  # the largest |mean paired difference| over the evaluations
    spread: float  # the between-seed standard deviation at that evaluation
    at_step: int | None
    parted_at: int | None  # the first evaluation step where |mean difference| > spread
    p_value: float | None  # two-sided one-sample t-test over seeds of the mean difference (before Holm)
    p_equivalent: float | None  # TOST: the larger of the two one-sided p's against -margin and +margin
    verdict: str = "inconclusive"

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
    p_value: float | None  # the smallest Holm-adjusted p of a difference over the metrics
    verdict: str  # agree, differ or inconclusive
    reason: str = ""
    dropped: dict[str, list[int]] = field(default_factory=dict)  # adapter -> its seeds the other did not finish

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


def tost_p(values: np.ndarray, margin: float) -> float:
    """Two one-sided tests of |mean| < margin: the larger of P(mean <= -margin) and P(mean >= margin)'s p.
    Without any spread: 0 when the common value is inside the margin, else 1."""
    from scipy import stats

    if np.ptp(values) == 0:
        return 0.0 if abs(values[0]) < margin else 1.0
    above_low = stats.ttest_1samp(values, -margin, alternative="greater").pvalue
    below_high = stats.ttest_1samp(values, margin, alternative="less").pvalue
    return float(max(above_low, below_high))


def metric_gap(name: str, steps: list[int], reference: np.ndarray, other: np.ndarray, margin: float) -> MetricGap:
    """The gap between two (seeds x evaluations) curves of one metric, paired by seed (verdict not yet set)."""
    d = other - reference
    mean = d.mean(axis=0)
    spread = np.sqrt((reference.var(axis=0, ddof=1) + other.var(axis=0, ddof=1)) / 2)
    k = int(np.argmax(np.abs(mean)))
    parted = np.flatnonzero(np.abs(mean) > spread)
    per_seed = d.mean(axis=1)
    return MetricGap(name, float(per_seed.mean()), margin, float(abs(mean[k])), float(spread[k]), steps[k],
                     steps[int(parted[0])] if parted.size else None, one_sample_p(per_seed),
                     tost_p(per_seed, margin))


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
                   alpha: float = ALPHA, margins: dict[str, float] | None = None) -> Agreement:
    """The agreement of two adapters' curves on one model, over the seeds both finished."""
    margins = {**MARGINS, **(margins or {})}
    ref_seeds, other_seeds = set(ref_rows["seed"]), set(other_rows["seed"])
    common = sorted(ref_seeds & other_seeds)
    dropped = {a: sorted(int(s) for s in seeds - set(common))
               for a, seeds in ((reference, ref_seeds), (other, other_seeds)) if seeds - set(common)}
    step_sets = [set(r) for rows in (ref_rows, other_rows) for r in rows["curve_steps"]]
    steps = sorted(set.intersection(*step_sets)) if step_sets else []
    if len(common) < MIN_SEEDS or not steps:
        why = (f"{len(common)} seed(s) finished in both; a verdict needs {MIN_SEEDS}" if len(common) < MIN_SEEDS
               else "no evaluation step in common")
        return Agreement(model, reference, other, len(common), len(steps), (), None, "inconclusive", why, dropped)
    gaps = []
    for column, name in METRICS:
        ref, oth = (_curves(rows[rows["seed"].isin(common)], column, steps) for rows in (ref_rows, other_rows))
        a, b = np.stack([ref[s] for s in common]), np.stack([oth[s] for s in common])
        if np.isnan(a).any() or np.isnan(b).any():
            continue  # older records hold no test loss
        gaps.append(metric_gap(name, steps, a, b, margins[name]))
    adjusted = holm([m.p_value for m in gaps])
    metrics = []
    for m, p in zip(gaps, adjusted, strict=True):
        verdict = "agree" if m.p_equivalent < alpha else "differ" if p < alpha else "inconclusive"
        metrics.append(replace(m, verdict=verdict))
    verdicts = {m.verdict for m in metrics}
    overall = ("differ" if "differ" in verdicts else "agree" if verdicts == {"agree"} else "inconclusive")
    real = [f"{m.metric} {m.mean_gap:+.3g}" for m, p in zip(metrics, adjusted, strict=True)
            if m.verdict == "agree" and p < alpha]
    reason = f"a real gap within the margin: {', '.join(real)}" if real else ""
    return Agreement(model, reference, other, len(common), len(steps), tuple(metrics),
                     min(adjusted) if adjusted else None, overall, reason, dropped)


def model_key(case_id: str) -> str:
    """The case without its adapter and seed: what the adapters' curves are compared on."""
    head, _, rest = seedless_id(case_id).partition("/")
    label = head.split(":", 1)[0] + ":" if ":" in head else ""
    return label + rest


def agreements(df: pd.DataFrame, alpha: float = ALPHA, margins: dict[str, float] | None = None) -> list[Agreement]:
    """Every model of a run: the first adapter against each other one, over the seeds both finished."""
    ok = df[df["status"].map(is_timed) & df["curve_steps"].map(len).gt(0)]
    out = []
    for model, g in ok.groupby(ok["case_id"].map(model_key), sort=False):
        names = list(dict.fromkeys(g["adapter"]))
        for other in names[1:]:
            out.append(compare_curves(model, names[0], other, g[g["adapter"] == names[0]], g[g["adapter"] == other],
                                      alpha, margins))
    return out
