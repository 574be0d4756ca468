"""Step time compared across processes: the statistic that a 10% slowdown cannot hide from.

Step times of one process are not independent samples of "the speed of this code": a process draws
its own memory layout, thread placement, turbo state and cache luck, and every step of it shares
them. On the 2-core CI machine the median of one process moves by several percent from process to
process (docs/measurements.md, "The gate"), while its steps scatter far less around that median. A test
that pools the steps of one process per side (Mann-Whitney over steps) therefore reports tiny p
values for differences that are only between-process noise, and needs a large threshold to stay
quiet. Here the unit of evidence is the process (pyperf's approach):

- each process is summarized by its median step time;
- two separate runs (`compare` of runs with `--repeat K`): the ratio is median(current process
  medians) / median(baseline process medians); the test is Welch's t-test on the logarithms of the
  process medians, and the interval is that test's: exp of Welch's t-interval of the difference of
  the mean log medians;
- one job with paired rounds (`bench ab`): a round's two processes ran together, so the machine's
  phase during the round is in both; the ratio is the median of the per-round ratios, the test a paired
  t-test on log process medians, and the interval exp(mean d +- t(0.975, n-1) sd(d) / sqrt(n)) of the
  per-round log ratios d. Measured on the CI VM, the ratio of medians would put the phase back in: in
  one A/A run it read 1.050 where the median of per-round ratios read 1.015.

The interval is the test's own (it excludes 1 exactly when the test's p is below 0.05) and covers at its
stated level: on generated rounds, 95% intervals cover the true ratio 94-96% of the time at 4, 8 and 12
rounds (tests/unit/test_process_stats.py: 95.2%, 94.7%, 95.1% of 4,000 runs). The hierarchical percentile
bootstrap used before (rounds, then steps within each process) covered 94.5%, 98.2% and 98.3% of 1,000
runs of the same generator (a 2026-12-07 review measured about 90%, 96% and 97% on its own): no stated
level, too narrow at 4 rounds in one noise model and too wide at 8 and 12 here, and never in step with the
t-test's p. The interval is that of the geometric mean of the per-round ratios, the quantity the t-test
judges; the ratio shown beside it is the median, which one odd round cannot move.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.core.spread import cv_or_inf

LEVEL = 0.95


@dataclass(frozen=True)
class ProcessComparison:
    ratio: float  # median of current process medians / median of baseline process medians
    ci_low: float
    ci_high: float
    p_value: float
    base_cv: float  # spread of the process medians on each side (std / mean)
    cur_cv: float
    method: str
    noise: float  # what judges whether the comparison is too noisy: the spread of the per-round
    # ratios when paired (std of their logs), else the larger spread of the two sides


def process_medians(steps: Sequence[np.ndarray]) -> np.ndarray:
    return np.array([float(np.median(s)) for s in steps])


def log_ratio_interval(base_medians: np.ndarray, cur_medians: np.ndarray, paired: bool,
                       level: float = LEVEL) -> tuple[float, float]:
    """The t-interval of the ratio on log process medians: paired (per-round log ratios, n - 1 degrees of
    freedom) or Welch's (Welch-Satterthwaite degrees of freedom); a point where there is no spread."""
    from scipy import stats

    lb, lc = np.log(np.asarray(base_medians, dtype=float)), np.log(np.asarray(cur_medians, dtype=float))
    if paired:
        d = lc - lb
        mean, var, df = float(d.mean()), (float(d.var(ddof=1)) / d.size if d.size > 1 else 0.0), d.size - 1
    else:
        vb = float(lb.var(ddof=1)) / lb.size if lb.size > 1 else 0.0
        vc = float(lc.var(ddof=1)) / lc.size if lc.size > 1 else 0.0
        mean, var = float(lc.mean() - lb.mean()), vb + vc
        df = var**2 / ((vb**2 / (lb.size - 1) if lb.size > 1 else 0) + (vc**2 / (lc.size - 1) if lc.size > 1 else 0)) \
            if var > 0 else 0
    if var <= 0 or df <= 0:
        return math.exp(mean), math.exp(mean)
    half = float(stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(var)
    return math.exp(mean - half), math.exp(mean + half)


def compare_processes(base: Sequence[np.ndarray], cur: Sequence[np.ndarray], paired: bool) -> ProcessComparison:
    """Compare two sides given as the timed steps of each of their processes.

    `paired`: base[i] and cur[i] were measured in the same round, next to each other (ab).
    """
    from scipy import stats

    bm, cm = process_medians(base), process_medians(cur)
    if paired and len(bm) != len(cm):
        raise ValueError(f"paired comparison needs equal rounds ({len(bm)} vs {len(cm)})")
    ratio = float(np.median(cm / bm) if paired else np.median(cm) / np.median(bm))
    lo, hi = log_ratio_interval(bm, cm, paired)
    lb, lc = np.log(bm), np.log(cm)
    if paired:
        diffs = lc - lb
        p = 1.0 if np.allclose(diffs, diffs[0]) and diffs[0] == 0 else float(stats.ttest_rel(lc, lb).pvalue)
        method = f"paired t-test on log process medians, {len(bm)} interleaved rounds"
    else:
        p = float(stats.ttest_ind(lc, lb, equal_var=False).pvalue)
        method = f"Welch t-test on log process medians, {len(bm)} vs {len(cm)} processes"
    if math.isnan(p):  # no spread at all on either side
        p = 0.0 if ratio != 1.0 else 1.0
    noise = float(np.std(lc - lb, ddof=1)) if paired and len(bm) > 1 else max(cv_or_inf(bm), cv_or_inf(cm))
    return ProcessComparison(ratio, lo, hi, p, cv_or_inf(bm), cv_or_inf(cm), method, noise)
