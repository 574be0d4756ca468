"""Adaptive rounds for `bench ab` and `bench find`: each case gets as many rounds as its noise needs.

A fixed number of rounds gives the matrix its power, not each case: with 4 rounds a noisy case slowed by
15% was not flagged (p 0.014 against alpha 0.01; docs/measurements.md). Here each case runs `min_rounds`
rounds, then one more round at a time while its answer is open, up to `max_rounds`:

- **regression**: the slowdown is above the threshold and the paired t-test over rounds gives p below
  the look's share of alpha. With L = max_rounds - min_rounds + 1 looks, the last look gets alpha / 2
  and each earlier one alpha / (2 (L - 1)): the shares add up to alpha, so the chance that an unchanged
  case is ever called a regression stays below alpha however often it is looked at (Bonferroni's union
  bound). Half at the end, not alpha / L everywhere, because the cases that reach the last look are the
  noisy ones, and a case that is clearly slower is convicted early either way: on generated rounds with
  a 5% spread this finds an 8% slowdown in 94% of runs instead of 82%, for half a round more on average
  (docs/gate.md);
- **cleared**: the one-sided upper confidence bound of the mean log ratio, at level 1 - beta / L, is
  below log(1 + threshold): the case cannot be slower by the threshold (the chance that a case slower
  by more than the threshold is cleared stays below beta);
- **open** otherwise: another round; **done** once max_rounds are run (the verdict then at alpha / 2).

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

    def alpha_at(self, rounds: int) -> float:
        """The share of alpha spent at the look after `rounds` rounds (see the module's docstring)."""
        if self.looks == 1:
            return self.alpha
        return self.alpha / 2 if rounds >= self.max_rounds else self.alpha / (2 * (self.looks - 1))

    @property
    def alpha_final(self) -> float:
        """The level of the verdict on a case's rounds once it has stopped: a case that stopped early was
        convicted at a stricter level, or cleared (its mean below the threshold), so this one decides alike."""
        return self.alpha_at(self.max_rounds)

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
        if mean > limit and p < self.alpha_at(n):
            return "regression"
        upper = mean + float(stats.t.ppf(1 - self.beta_per_look, n - 1)) * se
        if upper < limit:
            return "cleared"
        return "open" if n < self.max_rounds else "done"


def log_ratios(base: Sequence[np.ndarray], head: Sequence[np.ndarray]) -> list[float]:
    """Per round, log(median head step / median base step)."""
    return [math.log(float(np.median(h)) / float(np.median(b))) for b, h in zip(base, head, strict=True)]
