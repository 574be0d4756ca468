"""The time-to-accuracy curve (bench/measure/curve.py) and what its evaluations do to the step statistics."""

import numpy as np
import pandas as pd
import pytest

from bench.measure.curve import BetweenSteps, curve_columns, time_to_target


def test_evaluations_run_every_n_steps_before_the_last_with_training_seconds_so_far():
    evaluated = []
    hooks = BetweenSteps(total_steps=12, steps_per_epoch=6, elapsed_s=lambda: 0.5 * len(evaluated),
                         evaluate=lambda: (evaluated.append(1) or 0.1 * len(evaluated), 2.0), eval_every=4)
    for step in range(1, 13):
        hooks(step, 1.0)
    hooks.finish(12, 0.9, 0.3)
    # after steps 4 and 8; never after the last (the case's own evaluation is the final point)
    assert hooks.points == [(4, 0.0, 0.1, 2.0), (8, 0.5, 0.2, 2.0), (12, 1.0, 0.9, 0.3)]


def test_the_curve_loss_is_the_mean_cross_entropy_of_the_logits():
    from bench.measure.curve import test_accuracy

    class Fixed:  # logits: sample 0 is sure of class 0 (right), sample 1 undecided between two classes
        def logits(self, model, x):
            table = np.array([[0.0, -np.inf, -np.inf], [0.0, 0.0, -np.inf]])
            return table[x]

    acc, loss = test_accuracy(lambda x: Fixed().logits(None, x), np.array([0, 1]), np.array([0, 1]), batch_size=1)
    assert acc == 0.5  # argmax of a tie is the first class: sample 1 is wrong
    assert loss == pytest.approx(np.log(2) / 2)  # -log 1 = 0 and -log 0.5, over two samples


def test_without_eval_every_the_curve_has_one_point_per_epoch():
    hooks = BetweenSteps(total_steps=12, steps_per_epoch=6, elapsed_s=lambda: 0.0, evaluate=lambda: (0.5, 1.0))
    for step in range(1, 13):
        hooks(step, 1.0)
    assert [p[0] for p in hooks.points] == [6]


def test_time_to_target_is_the_first_evaluation_at_or_above_it():
    points = [(4, 1.0, 0.5), (8, 2.0, 0.9), (12, 3.0, 0.95)]
    assert time_to_target(points, 0.9) == (8, 2.0)
    assert time_to_target(points, 0.99) == (None, None)
    cols = curve_columns(points, 0.99, None, 0.25)
    assert cols["target_reason"] == "never reached 99.0% (best 95.0%)" and "time_to_target_s" not in cols
    assert curve_columns(points, 0.9, None, 0.25)["steps_to_target"] == 8
    assert curve_columns(points, 0.9, "synthetic labels", 0.0)["target_reason"] == "synthetic labels"


def test_the_steps_right_after_an_evaluation_are_recorded_but_not_summarised(fake_adapters):
    """A framework whose two steps after each evaluation are slow (20 ms against 1 ms): the record
    keeps every step time, names the settling steps, and its statistics, compare's and the exports'
    step times all leave the same steps out."""
    from bench import data
    from bench.core.specs import Case, ModelSpec, TrainSpec
    from bench.execution.jobs import CaseJob
    from bench.measure.case import measure_case
    from bench.stats.compare import timed_steps

    train = TrainSpec(batch_size=64, max_steps=30, warmup_steps=2, phase_rounds=0, eval_every=5)
    case = Case("fake-cold", ModelSpec("gru", (8,)), train, dataset="mnist-5k")
    m = measure_case(CaseJob(case, data.resolve("mnist-5k"), 1, "r", target_accuracy=0.9))
    # the fake's logits are all zero: at chance, so learning is not shown, and its step times stand
    assert m["status"] == "inconclusive" and m["curve_steps"] == [5, 10, 15, 20, 25, 30]
    assert m["test_accuracy"] == m["chance_accuracy"] or m["test_accuracy"] < 0.2
    assert "not significantly above chance" in m["accuracy_reason"] and m["error"] is None
    assert m["untimed_steps"] == [5, 6, 10, 11, 15, 16, 20, 21, 25, 26]
    times = np.asarray(m["step_times_ms"])
    assert len(times) == 30 and (times[m["untimed_steps"]] >= 20.0).all()  # the fake's slow steps
    kept = np.delete(times, [0, 1, 2, *m["untimed_steps"]])  # step 0, two warm-up steps, settling steps
    assert m["timed_steps"] == len(kept) == 17
    assert m["step_time_ms_median"] == float(np.median(kept))
    assert m["step_time_ms_p90"] == float(np.percentile(kept, 90))
    np.testing.assert_array_equal(timed_steps(pd.Series(m)), kept)
