import numpy as np
import pytest

from bench.core.batching import BatchPlan, epoch_permutation


def test_permutation_is_seeded_and_differs_per_epoch():
    a = epoch_permutation(0, 0, 100)
    assert np.array_equal(a, epoch_permutation(0, 0, 100))
    assert not np.array_equal(a, epoch_permutation(0, 1, 100))
    assert not np.array_equal(a, epoch_permutation(1, 0, 100))
    assert sorted(a) == list(range(100))


def test_plan_drops_partial_batch_and_stops_at_max_steps():
    plan = BatchPlan(n=100, batch_size=30, epochs=3, max_steps=7, seed=0)
    assert plan.steps_per_epoch == 3
    assert plan.total_steps == 7
    sizes = [len(idx) for idx in plan.epochs_indices()]
    assert sizes == [90, 90, 30]  # 3 + 3 + 1 steps of 30


def test_order_hash_is_equal_for_equal_plans_and_differs_by_seed():
    def digest(seed):
        plan = BatchPlan(n=50, batch_size=10, epochs=2, max_steps=None, seed=seed)
        list(plan.epochs_indices())
        return plan.order_hash()

    assert digest(0) == digest(0)
    assert digest(0) != digest(1)
    assert len(digest(0)) == 16


def test_batch_larger_than_data_is_rejected():
    with pytest.raises(ValueError, match="batch_size 200 is larger than the training set"):
        BatchPlan(n=100, batch_size=200, epochs=1, max_steps=None, seed=0)
