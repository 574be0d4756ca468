import importlib.util
import os

import numpy as np
import pytest

from bench.data import Dataset
from tests.fake_adapters import ENV_VALUE


def installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def same_backend_adapters() -> list:
    """pytest params of the built-in adapters this process can load, skipped when not installed.

    A Keras backend is fixed when Keras is imported, so a process holds the adapters of its own
    KERAS_BACKEND (default tensorflow); the others run in a subprocess with their backend set.
    """
    import adapters

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    return [
        pytest.param(name, marks=pytest.mark.skipif(not installed(*info.requires), reason=f"{info.requires} not installed"))
        for name, info in adapters.BUILTIN.items()
        if info.env.get("KERAS_BACKEND", backend) == backend
    ]


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
