"""Did the run learn? A verdict a statistician would sign, from the final evaluation of the test split.

`ok` needs evidence, not a coin flip. With real labels a run has learned when both hold on the test split
(n examples, C classes), each at level ALPHA:

- its accuracy is significantly above chance: a one-sided exact binomial test of the correct count
  against the majority-class rate of the test split (the best a constant prediction scores);
- its cross-entropy is significantly below ln(C), the loss of the uniform prediction: a one-sided
  t-test of the per-example losses minus ln(C) (n is in the hundreds or more, so the mean is close to
  normal whatever the losses' distribution).

A run that shows neither failure nor learning (a short run, a tiny learning rate, a task still at
chance) is `inconclusive`: its timings stand, it does not fail the run, and the reason names the test.
A run fails as `not-learning` only on evidence that training is broken: a trainable weight that never
changed. That check exists because frameworks do ship silent training bugs: Keras 3.10 to 3.13 on the
torch backend detached the cuDNN LSTM's outputs, so its LSTM weights never trained while the run looked
fine. (The old rule, "the last epoch's mean loss is below the first batch's", failed healthy runs at
2.4 times chance and passed runs at chance: one batch's loss is too noisy to decide either way.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bench.core.canonical import CanonicalWeights
from bench.core.columns import columns
from bench.core.status import Status

ALPHA = 0.01  # each of the two tests; a 24-case matrix at chance would show ~0.24 false `ok`s per run

COLUMNS = columns(
    "learning",
    ("chance_accuracy", "float", "the majority class's share of the test split: the accuracy of the best constant prediction", {"fmt": ".3f"}),
    ("above_chance_p", "float", f"one-sided exact binomial p of the test accuracy against chance_accuracy (ok needs < {ALPHA:g})", {"fmt": ".2g"}),
    ("uniform_loss", "float", "ln(classes): the cross-entropy of the uniform prediction", {"fmt": ".4f"}),
    ("below_uniform_p", "float", f"one-sided t-test p of the test loss below uniform_loss (ok needs < {ALPHA:g})", {"fmt": ".2g"}),
)


def frozen_weights(
    before: CanonicalWeights | dict[str, np.ndarray], after: CanonicalWeights | dict[str, np.ndarray],
    keeps_recurrent_bias: bool,
) -> list[str]:
    """Names of the arrays that did not change at all during training (canonical names, or the
    adapter's own where its model has no canonical form; see Adapter.weight_arrays)."""
    a = before.arrays() if isinstance(before, CanonicalWeights) else before
    b = after.arrays() if isinstance(after, CanonicalWeights) else after
    frozen = []
    for name, old in a.items():
        if name.endswith(".b_hh") and not keeps_recurrent_bias:
            continue  # the framework has no such weight (its single bias is reported as b_ih)
        if np.array_equal(old, b[name]):
            frozen.append(name)
    return frozen


@dataclass(frozen=True)
class SplitScores:
    """The final evaluation's per-example outcomes on the test split."""

    correct: np.ndarray  # bool per example
    losses: np.ndarray  # cross-entropy per example (float64)
    labels: np.ndarray

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean()) if self.correct.size else math.nan

    @property
    def loss(self) -> float:
        return float(self.losses.mean()) if self.losses.size else math.nan


@dataclass(frozen=True)
class Verdict:
    status: Status  # OK, INCONCLUSIVE or NOT_LEARNING
    reason: str | None  # why it is not OK
    columns: dict  # the learning columns


def above_chance_p(correct: int, n: int, chance: float) -> float:
    """One-sided exact binomial p: P(X >= correct) for X ~ Binomial(n, chance)."""
    from scipy import stats

    return float(stats.binomtest(correct, n, chance, alternative="greater").pvalue)


def below_uniform_p(losses: np.ndarray, uniform: float) -> float:
    """One-sided t-test p that the mean per-example loss is below `uniform`."""
    from scipy import stats

    d = np.asarray(losses, dtype=float) - uniform
    if d.size < 2 or np.ptp(d) == 0:
        return 0.0 if d.size and d[0] < 0 else 1.0
    return float(stats.ttest_1samp(d, 0.0, alternative="less").pvalue)


def learning_verdict(frozen: list[str], scores: SplitScores | None, num_classes: int, alpha: float = ALPHA) -> Verdict:
    """The learning verdict of a finished run; `scores` is None where labels are random (synthetic data),
    so only the weights can be judged."""
    if frozen:
        return Verdict(Status.NOT_LEARNING, f"weights that never changed: {', '.join(frozen)}", {})
    if scores is None or scores.labels.size == 0:
        return Verdict(Status.OK, None, {})
    n = int(scores.labels.size)
    chance = float(np.bincount(scores.labels).max() / n)
    uniform = math.log(num_classes)
    p_acc = above_chance_p(int(scores.correct.sum()), n, chance)
    p_loss = below_uniform_p(scores.losses, uniform)
    cols = {"chance_accuracy": chance, "above_chance_p": p_acc, "uniform_loss": uniform, "below_uniform_p": p_loss}
    missing = []
    if not p_acc < alpha:
        missing.append(f"test accuracy {scores.accuracy:.1%} is not significantly above chance {chance:.1%} "
                       f"(one-sided binomial p {p_acc:.2g}, n {n})")
    if not p_loss < alpha:
        missing.append(f"test loss {scores.loss:.4f} is not significantly below ln({num_classes}) = {uniform:.4f} "
                       f"(one-sided t-test p {p_loss:.2g})")
    if missing:
        return Verdict(Status.INCONCLUSIVE, f"learning not shown at alpha {alpha:g}: " + "; ".join(missing)
                       + " (train longer to tell)", cols)
    return Verdict(Status.OK, None, cols)
