"""Adaptive rounds for `bench ab` and `bench find`: each case gets as many rounds as its noise needs.

A fixed number of rounds gives the matrix its power, not each case: with 4 rounds a noisy case slowed by
15% was not flagged (p 0.014 against alpha 0.01; docs/measurements.md). Here each case runs `min_rounds`
rounds, then one more round at a time while its answer is open, up to `max_rounds`:

- **regression**: the slowdown is above the threshold and the paired t-test over rounds gives
  p < alpha / L, L = max_rounds - min_rounds + 1 looks (Bonferroni over the looks, so the chance that
  an unchanged case is ever called a regression stays below alpha however often it is looked at);
- **cleared**: the one-sided upper confidence bound of the mean log ratio, at level 1 - beta / L, is
  below log(1 + threshold): the case cannot be slower by the threshold (the chance that a case slower
  by more than the threshold is cleared stays below beta);
- **open** otherwise: another round; **done** once max_rounds are run (the verdict then at alpha / L).

The error rates are stated per case and checked on generated rounds in tests/unit/test_sequential.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_MAX_ROUNDS = 12
DEFAULT_BETA = 0.05


@dataclass(frozen=True)
class SequentialRule:
    min_rounds: int
    max_rounds: int
    threshold: float  # relative: 0.05 for 5%
    alpha: float
    beta: float = DEFAULT_BETA

    @property
    def looks(self) -> int:
        return self.max_rounds - self.min_rounds + 1

    @property
    def alpha_per_look(self) -> float:
        return self.alpha / self.looks

    @property
    def beta_per_look(self) -> float:
        return self.beta / self.looks

    def decide(self, log_ratios: Sequence[float]) -> str:
        """'regression', 'cleared', 'open' or 'done' from the per-round log ratios (head / base) so far."""
        from scipy import stats

        d = np.asarray(log_ratios, dtype=float)
        n = d.size
        if n < self.min_rounds:
            return "open"
        limit = math.log1p(self.threshold)
        mean = float(d.mean())
        sd = float(d.std(ddof=1)) if n > 1 else math.inf
        if sd == 0:
            return "regression" if mean > limit else "cleared"
        se = sd / math.sqrt(n)
        p = float(2 * stats.t.sf(abs(mean) / se, n - 1))
        if mean > limit and p < self.alpha_per_look:
            return "regression"
        upper = mean + float(stats.t.ppf(1 - self.beta_per_look, n - 1)) * se
        if upper < limit:
            return "cleared"
        return "open" if n < self.max_rounds else "done"


def log_ratios(base: Sequence[np.ndarray], head: Sequence[np.ndarray]) -> list[float]:
    """Per round, log(median head step / median base step)."""
    return [math.log(float(np.median(h)) / float(np.median(b))) for b, h in zip(base, head, strict=True)]
