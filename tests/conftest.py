import importlib.util

import numpy as np
import pytest

from bench.data import Dataset
from tests.fake_adapters import ENV_VALUE


def installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


@pytest.fixture
def fake_adapters(monkeypatch):
    """Register the framework-free test adapters (inherited by worker processes)."""
    monkeypatch.setenv("RNNBENCH_ADAPTERS", ENV_VALUE)


@pytest.fixture
def tiny_data() -> Dataset:
    rng = np.random.default_rng(0)
    return Dataset(
        name="tiny",
        x_train=rng.random((64, 28, 28), dtype=np.float32),
        y_train=rng.integers(0, 10, 64),
        x_test=rng.random((20, 28, 28), dtype=np.float32),
        y_test=rng.integers(0, 10, 20),
        origin="test",
        sha256="0" * 64,
    )
