"""Change points of a step-time history (bench/stats/changes.py): exact values for the building blocks,
and synthetic histories over many seeds: the step and the creep are found, a spike and a flat series
are not."""

import numpy as np
import pytest

from bench.stats import changes as C

N, AT, NOISE = 24, 12, 0.01  # points, where the change starts, noise per point (1%, log scale)


def history(kind: str, seed: int, noise: float = NOISE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    level = np.ones(N)
    if kind == "step":  # one commit 5% slower
        level[AT:] *= 1.05
    elif kind == "creep":  # ten commits of 1% each
        for i in range(AT - 4, AT + 6):
            level[i:] *= 1.01
    elif kind == "spike":  # one run 30% slower, then back
        level[AT] *= 1.30
    return 20.0 * level * np.exp(rng.normal(0, noise, N))


def test_best_gains_is_the_squared_error_one_split_removes():
    # [0, 0, 0, 6, 6, 6]: the split after 3 points takes the whole SSE (54) away
    assert C.best_gains(np.array([[0.0, 0, 0, 6, 6, 6]]), 2)[0] == pytest.approx(54.0)
    assert C.best_gains(np.array([[1.0, 1, 1, 1]]), 2)[0] == pytest.approx(0.0)


def test_the_permutation_p_is_deterministic_and_small_for_a_clean_step():
    step = np.log(np.r_[np.full(6, 10.0), np.full(6, 11.0)] * np.exp(np.linspace(-0.001, 0.001, 12)))
    p = C.permutation_p(step, 3)
    assert p == C.permutation_p(step, 3) and p <= 0.01  # only the rare shuffle that sorts it back is as good
    assert C.permutation_p(np.zeros(12), 3) == 1.0


@pytest.mark.parametrize("kind, at_least, at_most", [("step", 0.95, 1.0), ("creep", 0.95, 1.0),
                                                      ("spike", 0.0, 0.02), ("flat", 0.0, 0.02)])
def test_synthetic_histories_over_many_seeds(kind, at_least, at_most):
    found = [C.detect(history(kind, seed), min_magnitude=0.03) for seed in range(100)]
    rate = sum(bool(f) for f in found) / len(found)
    assert at_least <= rate <= at_most, rate
    if kind == "step":  # found at the commit that made it, and its size
        hits = [f[0] for f in found if f]
        assert np.median([c.index for c in hits]) == AT
        assert np.median([c.ratio for c in hits]) == pytest.approx(1.05, abs=0.01)
    if kind == "creep":  # changes within the ramp (steps 8..17), together the accumulated 10%
        ramp = range(AT - 4 - 3, AT + 6 + 3 + 1)  # a segment boundary may sit min_size points off the ramp
        assert all(c.index in ramp for f in found for c in f)
        total = [np.prod([c.ratio for c in f]) for f in found if f]
        assert np.median(total) == pytest.approx(1.10, abs=0.02)


def test_one_noisy_point_is_never_a_change_and_short_series_have_none():
    assert C.detect([10.0] * 11 + [30.0] + [10.0] * 12) == []
    assert C.detect([10.0, 12.0, 14.0]) == []  # fewer than two segments of min_size


def test_the_newest_segment_decides_the_nightly_gate():
    import pandas as pd

    jitter = [1.0, 1.002, 0.998]  # one point of each level in three is a little off
    values = [20.0 * jitter[i % 3] for i in range(AT)] + [21.0 * jitter[i % 3] for i in range(AT, N)] \
        + [25.2] * 6  # 5% slower at AT, then 20% slower again at N
    points = pd.DataFrame({"case_id": "c", "fingerprint": "m", "machine": "x", "commit": [f"{i:040x}" for i in
                                                                                          range(len(values))],
                           "step_time_ms": values})
    (s,) = C.analyse(points, min_magnitude=0.03)
    assert [c.index for c in s.changes] == [AT, N] and s.newest_is_slowdown
    assert s.first_commit_after(s.changes[-1]) == f"{N:040x}"
