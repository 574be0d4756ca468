"""Step time compared across processes: the statistic that a 10% slowdown cannot hide from.

Step times of one process are not independent samples of "the speed of this code": a process draws
its own memory layout, thread placement, turbo state and cache luck, and every step of it shares
them. On the 2-core CI machine the median of one process moves by several percent from process to
process (README, "The regression gate"), while its steps scatter far less around that median. A test
that pools the steps of one process per side (Mann-Whitney over steps) therefore reports tiny p
values for differences that are only between-process noise, and needs a large threshold to stay
quiet. Here the unit of evidence is the process (pyperf's approach):

- each process is summarized by its median step time;
- the ratio is median(current process medians) / median(baseline process medians);
- its interval comes from a hierarchical bootstrap that resamples processes, then steps within each
  resampled process;
- the test is a t-test on the logarithms of the process medians: paired by round when the two
  sides were measured interleaved in one job (`bench ab`, so drift that hits a round hits both
  sides), Welch's otherwise (`compare` of two runs with `--repeat K`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class ProcessComparison:
    ratio: float  # median of current process medians / median of baseline process medians
    ci_low: float
    ci_high: float
    p_value: float
    base_cv: float  # spread of the process medians on each side (std / mean)
    cur_cv: float
    method: str


def process_medians(steps: Sequence[np.ndarray]) -> np.ndarray:
    return np.array([float(np.median(s)) for s in steps])


def hierarchical_bootstrap_ratio(base: Sequence[np.ndarray], cur: Sequence[np.ndarray],
                                 resamples: int = BOOTSTRAP_RESAMPLES, level: float = 0.95,
                                 seed: int = 0) -> tuple[float, float]:
    """Percentile interval of median(cur medians) / median(base medians), resampling processes and
    then the steps of each drawn process (both levels of noise enter the interval)."""
    rng = np.random.default_rng(seed)

    def draws(side: Sequence[np.ndarray]) -> np.ndarray:
        # (processes, resamples): each process's median over its own resampled steps
        inner = np.stack([np.median(s[rng.integers(0, s.size, (resamples, s.size))], axis=1)
                          for s in (np.asarray(x, dtype=float) for x in side)])
        picks = rng.integers(0, len(side), (resamples, len(side)))  # the processes each draw takes
        return np.median(inner[picks, np.arange(resamples)[:, None]], axis=1)

    ratios = draws(cur) / draws(base)
    lo, hi = np.percentile(ratios, [50 * (1 - level), 100 - 50 * (1 - level)])
    return float(lo), float(hi)


def _cv(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1) / np.mean(x)) if x.size > 1 and np.mean(x) > 0 else math.inf


def compare_processes(base: Sequence[np.ndarray], cur: Sequence[np.ndarray], paired: bool) -> ProcessComparison:
    """Compare two sides given as the timed steps of each of their processes.

    `paired`: base[i] and cur[i] were measured in the same round, next to each other (ab).
    """
    from scipy import stats

    bm, cm = process_medians(base), process_medians(cur)
    ratio = float(np.median(cm) / np.median(bm))
    lo, hi = hierarchical_bootstrap_ratio(base, cur)
    lb, lc = np.log(bm), np.log(cm)
    if paired:
        if len(bm) != len(cm):
            raise ValueError(f"paired comparison needs equal rounds ({len(bm)} vs {len(cm)})")
        diffs = lc - lb
        p = 1.0 if np.allclose(diffs, diffs[0]) and diffs[0] == 0 else float(stats.ttest_rel(lc, lb).pvalue)
        method = f"paired t-test on log process medians, {len(bm)} interleaved rounds"
    else:
        p = float(stats.ttest_ind(lc, lb, equal_var=False).pvalue)
        method = f"Welch t-test on log process medians, {len(bm)} vs {len(cm)} processes"
    if math.isnan(p):  # no spread at all on either side
        p = 0.0 if ratio != 1.0 else 1.0
    return ProcessComparison(ratio, lo, hi, p, _cv(bm), _cv(cm), method)
