"""Micro-benchmarks (pytest-benchmark): one training step per adapter x cell on a small model.

Not part of the default test run (marker `perf`). Save a baseline and gate on it:

    RNNBENCH_TEST_ADAPTER=torch python -m pytest -m perf tests/benchmarks --benchmark-autosave
    RNNBENCH_TEST_ADAPTER=torch python -m pytest -m perf tests/benchmarks --benchmark-compare \
        --benchmark-compare-fail=median:10%

One adapter per process (tests/framework_guard.py): RNNBENCH_TEST_ADAPTER names it (with
KERAS_BACKEND=jax for keras-jax, and so on); without it the framework benchmarks are skipped.

Timings live here and in `python -m bench compare`, never in the unit tests.
"""


import numpy as np
import pytest

import adapters
from bench.core.specs import CELLS, ModelSpec, TrainSpec
from tests.conftest import adapter_under_test

pytestmark = pytest.mark.perf

ADAPTERS = [adapter_under_test()] if adapter_under_test() else []
BATCH = 64


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return rng.random((BATCH, 28, 28), dtype=np.float32), rng.integers(0, 10, BATCH)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("adapter_name", ADAPTERS)
def test_train_step(benchmark, adapter_name, cell, batch):
    adapter = adapters.load(adapter_name)
    adapter.setup("auto", threads=2, seed=0)
    train = TrainSpec(batch_size=BATCH)
    step = adapter.train_step(adapter.build(ModelSpec(cell, (64, 64)), train), train)
    x, y = batch
    for _ in range(3):  # compile / trace / warm-up outside the measurement
        step(x, y)
    benchmark.group = f"train step, {cell} 2x64, batch {BATCH}"
    loss = benchmark.pedantic(step, args=(x, y), rounds=30, iterations=1, warmup_rounds=2)
    assert np.isfinite(loss)
