import importlib.util
import os

import numpy as np
import pytest

from bench.data import Dataset
from tests.fake_adapters import ENV_VALUE


def installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


# Settings fixed when a framework is imported, so one process holds one value of each:
# the Keras backend (default tensorflow) and whether tf.keras is the legacy tf-keras (TF 1.x cells).
PROCESS_VARS = {"KERAS_BACKEND": "tensorflow", "TF_USE_LEGACY_KERAS": None}
ONLY_ADAPTER_VAR = "RNNBENCH_TEST_ADAPTER"  # set in the subprocess that tests one such adapter


def runs_in_this_process(name: str) -> bool:
    import adapters

    only = os.environ.get(ONLY_ADAPTER_VAR)
    if only:
        return name == only
    env = adapters.BUILTIN[name].env
    return all(os.environ.get(k, default) == env.get(k, default) for k, default in PROCESS_VARS.items())


def same_backend_adapters() -> list:
    """pytest params of the built-in adapters this process can load, skipped when not installed.

    Adapters that need other PROCESS_VARS run in a subprocess with those set (see
    test_adapters_contract.test_adapter_in_its_own_process).
    """
    import adapters

    return [
        pytest.param(name, marks=pytest.mark.skipif(not installed(*info.requires), reason=f"{info.requires} not installed"))
        for name, info in adapters.BUILTIN.items()
        if runs_in_this_process(name)
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
