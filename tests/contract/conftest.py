import numpy as np
import pytest

from bench.core.dataset import Dataset
from tests.conftest import adapter_under_test

# Timesteps of the contract's sequences: what the contract checks does not depend on the length, and
# the cost does (torch-compile-rnn traces, and tf1-graph unrolls, every step: 6 min cold at 28 steps).
SEQ = 4


@pytest.fixture(scope="session")
def adapter_name() -> str:
    """The adapter whose process this is (the driver sets RNNBENCH_TEST_ADAPTER)."""
    return adapter_under_test()


@pytest.fixture
def tiny_data() -> Dataset:
    rng = np.random.default_rng(0)
    return Dataset(
        name="tiny",
        x_train=rng.random((64, SEQ, 28), dtype=np.float32),
        y_train=rng.integers(0, 10, 64),
        x_test=rng.random((20, SEQ, 28), dtype=np.float32),
        y_test=rng.integers(0, 10, 20),
        origin="test",
        sha256="0" * 64,
    )
