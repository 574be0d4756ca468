import math

import pytest

from bench.timing import StepTimer, step_stats, throughput


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
    assert s.cv == pytest.approx(math.sqrt(8.25) / 5.5)


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
