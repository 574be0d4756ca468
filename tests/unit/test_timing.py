import math

import pytest

from bench.core.timer import StepTimer
from bench.measure.steps import settling_steps, step_stats, throughput


def test_stats_on_hand_made_sample_are_exact():
    # step 0 (compile) = 100, two warm-up steps discarded, timed = 1..10
    times = [100.0, 50.0, 40.0] + [float(v) for v in range(1, 11)]
    s = step_stats(times, warmup_steps=2)
    assert s.first_step_ms == 100.0
    assert s.warmup_steps == 2
    assert s.timed_steps == 10
    assert s.median_ms == 5.5
    assert s.mean_ms == 5.5
    assert s.p10_ms == pytest.approx(1.9)  # linear interpolation: 1 + 0.9 * (2 - 1)
    assert s.p90_ms == pytest.approx(9.1)
    assert s.iqr_ms == pytest.approx(7.75 - 3.25)
    assert s.cv == pytest.approx(math.sqrt(82.5 / 9) / 5.5)  # sample std (ddof=1): sum of squares 82.5 over 9


def test_constant_steps_have_zero_spread():
    s = step_stats([9.0] + [2.0] * 20, warmup_steps=5)
    assert (s.median_ms, s.p10_ms, s.p90_ms, s.iqr_ms, s.cv) == (2.0, 2.0, 2.0, 0.0, 0.0)
    assert s.timed_steps == 15


def test_too_few_steps_give_nan_not_a_made_up_number():
    s = step_stats([12.0, 3.0], warmup_steps=5)
    assert s.first_step_ms == 12.0
    assert s.warmup_steps == 1
    assert s.timed_steps == 0
    assert math.isnan(s.median_ms)
    empty = step_stats([], warmup_steps=5)
    assert math.isnan(empty.first_step_ms) and empty.timed_steps == 0


def test_untimed_steps_are_left_out_of_every_statistic():
    times = [100.0, 50.0, 40.0] + [float(v) for v in range(1, 11)]  # timed values 1..10 at indices 3..12
    s = step_stats(times, warmup_steps=2, untimed=[11, 12, 1])  # 9 and 10; index 1 is warm-up anyway
    assert (s.timed_steps, s.median_ms, s.mean_ms, s.first_step_ms, s.warmup_steps) == (8, 4.5, 4.5, 100.0, 2)
    assert s.p90_ms == pytest.approx(7.3)


def test_settling_steps_follow_each_evaluation_but_never_the_last_step():
    # evaluations after steps 5, 10 and 15 of 16: steps 5-6, 10-11 and 15 ran right after one
    assert settling_steps([5, 10, 15, 16], n_steps=16) == [5, 6, 10, 11, 15]
    assert settling_steps([], n_steps=16) == []
    assert settling_steps([4], n_steps=16, settle=3) == [4, 5, 6]


def test_evaluations_every_step_or_two_leave_no_step_undisturbed_so_none_is_dropped():
    assert settling_steps(range(2, 20, 2), n_steps=20) == []  # 17 of 19 steps follow an evaluation
    assert settling_steps(range(4, 20, 4), n_steps=20) == [4, 5, 8, 9, 12, 13, 16, 17]  # 8 of 19


def test_throughput():
    assert throughput(64, 32.0) == 2000.0
    assert math.isnan(throughput(64, math.nan))


def test_timer_calls_sync_before_each_clock_read():
    calls = []
    timer = StepTimer(sync=lambda: calls.append("sync"))
    for _ in range(3):
        timer.start()
        timer.stop()
    assert calls == ["sync"] * 6
    assert timer.steps == 3
    assert all(d >= 0 for d in timer.durations_ns)
    assert len(timer.times_ms()) == 3


def test_the_one_coefficient_of_variation_is_the_sample_cv():
    from bench.core.spread import cv, cv_or_inf

    assert cv([1.0, 2.0, 3.0]) == pytest.approx(1.0 / 2.0)  # std with ddof=1 is 1, mean 2
    assert cv([4.0, 4.0]) == 0.0
    assert math.isnan(cv([5.0])) and math.isnan(cv([])) and math.isnan(cv([-1.0, 1.0]))
    assert cv_or_inf([5.0]) == math.inf and cv_or_inf([1.0, 3.0]) == pytest.approx(math.sqrt(2) / 2)
