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
  medians) / median(baseline process medians), its interval a hierarchical bootstrap that
  resamples each side's processes, then the steps within each drawn process; the test is Welch's
  t-test on the logarithms of the process medians;
- one job with paired rounds (`bench ab`): a round's two processes ran together, so the machine's
  phase during the round is in both; the ratio is the median of the per-round ratios, its interval
  the same bootstrap resampling rounds (both sides of a round together), and the test a paired
  t-test on log process medians. Measured on the CI VM, the ratio of medians would put the phase
  back in: in one A/A run it read 1.050 where the median of per-round ratios read 1.015.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.core.spread import cv_or_inf

BOOTSTRAP_RESAMPLES = 2000  # every bootstrap interval of the harness (compare, ab)


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


def _inner_medians(side: Sequence[np.ndarray], rng: np.random.Generator, resamples: int) -> np.ndarray:
    """(processes, resamples): each process's median over its own resampled steps."""
    return np.stack([np.median(s[rng.integers(0, s.size, (resamples, s.size))], axis=1)
                     for s in (np.asarray(x, dtype=float) for x in side)])


def hierarchical_bootstrap_ratio(base: Sequence[np.ndarray], cur: Sequence[np.ndarray],
                                 resamples: int = BOOTSTRAP_RESAMPLES, level: float = 0.95,
                                 seed: int = 0, paired: bool = False) -> tuple[float, float]:
    """Percentile interval of the ratio, resampling processes (rounds, when paired) and then the
    steps of each drawn process, so both levels of noise enter the interval."""
    rng = np.random.default_rng(seed)
    b, c = _inner_medians(base, rng, resamples), _inner_medians(cur, rng, resamples)
    cols = np.arange(resamples)[:, None]
    if paired:
        rounds = rng.integers(0, len(base), (resamples, len(base)))  # both sides of a drawn round
        ratios = np.median(c[rounds, cols] / b[rounds, cols], axis=1)
    else:
        pick_b = rng.integers(0, len(base), (resamples, len(base)))
        pick_c = rng.integers(0, len(cur), (resamples, len(cur)))
        ratios = np.median(c[pick_c, cols], axis=1) / np.median(b[pick_b, cols], axis=1)
    lo, hi = np.percentile(ratios, [50 * (1 - level), 100 - 50 * (1 - level)])
    return float(lo), float(hi)


def compare_processes(base: Sequence[np.ndarray], cur: Sequence[np.ndarray], paired: bool) -> ProcessComparison:
    """Compare two sides given as the timed steps of each of their processes.

    `paired`: base[i] and cur[i] were measured in the same round, next to each other (ab).
    """
    from scipy import stats

    bm, cm = process_medians(base), process_medians(cur)
    if paired and len(bm) != len(cm):
        raise ValueError(f"paired comparison needs equal rounds ({len(bm)} vs {len(cm)})")
    ratio = float(np.median(cm / bm) if paired else np.median(cm) / np.median(bm))
    lo, hi = hierarchical_bootstrap_ratio(base, cur, paired=paired)
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
