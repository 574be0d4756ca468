"""The learning verdict (bench/measure/learning.py): `ok` only on evidence of learning, a failure only on
evidence of a broken training, `inconclusive` in between."""

import math

import numpy as np
import pytest

from bench.core.status import Status
from bench.measure.learning import SplitScores, above_chance_p, below_uniform_p, learning_verdict


def scores(correct: int, n: int, loss_mean: float, loss_sd: float = 0.5, classes: int = 10) -> SplitScores:
    """n test examples with balanced labels, `correct` of them right, losses with the given mean and spread."""
    labels = np.arange(n) % classes
    right = np.zeros(n, bool)
    right[:correct] = True
    losses = loss_mean + loss_sd * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)  # exact mean, exact spread
    return SplitScores(right, losses, labels)


def test_the_binomial_p_is_the_exact_upper_tail():
    n, k, p = 100, 20, 0.1
    tail = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))
    assert above_chance_p(k, n, p) == pytest.approx(tail, rel=1e-9)
    assert above_chance_p(0, n, p) == pytest.approx(1.0)


def test_the_loss_test_is_a_one_sided_t_test_against_ln_c():
    # mean 2.2, sd 0.5 (ddof 1 slightly more) over 1000 examples: t = (2.2 - ln 10) / (s / sqrt(1000))
    losses = 2.2 + 0.5 * np.where(np.arange(1000) % 2 == 0, 1.0, -1.0)
    from scipy import stats

    t = (losses.mean() - math.log(10)) / (losses.std(ddof=1) / math.sqrt(1000))
    assert below_uniform_p(losses, math.log(10)) == pytest.approx(stats.t.cdf(t, 999), rel=1e-9)
    assert below_uniform_p(np.full(5, 1.0), math.log(10)) == 0.0  # no spread, below: certain
    assert below_uniform_p(np.full(5, 3.0), math.log(10)) == 1.0


def test_a_run_at_chance_is_inconclusive_not_ok():
    # the smoke rows: exactly 10.0% test accuracy, test loss 2.305 (above ln 10)
    v = learning_verdict([], scores(100, 1000, 2.305), 10)
    assert v.status == Status.INCONCLUSIVE and not v.status.failing
    assert "test accuracy 10.0% is not significantly above chance 10.0%" in v.reason
    assert "test loss 2.3050 is not significantly below ln(10) = 2.3026" in v.reason
    assert v.columns["chance_accuracy"] == 0.1 and v.columns["uniform_loss"] == pytest.approx(math.log(10))


def test_a_healthy_short_run_is_ok():
    # the gru-bi-32x2 seed 1: 24.0% at 2.4 times chance, which the old first-batch rule failed
    v = learning_verdict([], scores(240, 1000, 2.20), 10)
    assert v.status == Status.OK and v.reason is None
    assert v.columns["above_chance_p"] < 1e-20


def test_accuracy_above_chance_with_a_loss_at_ln_c_is_not_yet_ok():
    v = learning_verdict([], scores(240, 1000, 2.31), 10)
    assert v.status == Status.INCONCLUSIVE
    assert "test loss 2.3100 is not significantly below ln(10)" in v.reason and "test accuracy" not in v.reason


def test_chance_is_the_majority_class_not_one_over_c():
    labels = np.array([0] * 60 + [1] * 40)  # a constant prediction of class 0 scores 60%
    right = np.arange(100) < 62
    v = learning_verdict([], SplitScores(right, np.full(100, 0.5), labels), 2)
    assert v.columns["chance_accuracy"] == 0.6
    assert v.status == Status.INCONCLUSIVE  # 62% against 60% is no evidence


def test_frozen_weights_fail_and_random_labels_judge_weights_only():
    v = learning_verdict(["l0.d0.w_ih"], scores(900, 1000, 0.3), 10)
    assert v.status == Status.NOT_LEARNING and v.status.failing and "l0.d0.w_ih" in v.reason
    assert learning_verdict([], None, 10).status == Status.OK
