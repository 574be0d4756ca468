import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.core.dataset import Dataset
from tests import framework_guard
from tests.fake_adapters import ENV_VALUE


def installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


ONLY_ADAPTER_VAR = "RNNBENCH_TEST_ADAPTER"  # set in the subprocess that runs tests/contract for one adapter


def adapter_under_test() -> str | None:
    """The adapter whose frameworks this test process holds (None: the main, framework-free process)."""
    return os.environ.get(ONLY_ADAPTER_VAR) or None


def _install_guard() -> framework_guard.FrameworkGuard:
    import adapters

    name = adapter_under_test()
    if name is None:
        return framework_guard.install(frozenset(), "this test process (framework-free)")
    allowed = framework_guard.allowed_frameworks(adapters.get_info(name).requires)
    return framework_guard.install(allowed, f"the test process of adapter {name!r}")


GUARD = _install_guard()


@pytest.fixture(autouse=True)
def _one_framework_per_process(request):
    """Fail the test that brought a framework it may not hold into this process (see framework_guard)."""
    refused = len(GUARD.refused)
    yield
    assert GUARD.refused[refused:] == [], f"{request.node.nodeid} tried to import {GUARD.refused[refused:]}"
    if adapter_under_test() is None:
        loaded = framework_guard.loaded_frameworks(sys.modules)
        assert loaded == [], f"{request.node.nodeid} left {loaded} in the framework-free test process"


ROOT = Path(__file__).resolve().parent.parent  # the repository
CONTRACT_DIR = Path(__file__).resolve().parent / "contract"
CONTRACT_DRIVER = "test_in_own_processes.py"  # the one module of tests/contract/ the main process runs


def only_for(*names: str):
    """Mark a tests/contract/ test that concerns some adapters only (skipped in the others' processes)."""
    return pytest.mark.skipif(adapter_under_test() not in names, reason=f"a test of {', '.join(names)} only")


def pytest_collection_modifyitems(config, items):
    """tests/contract/ runs in one subprocess per adapter (its driver starts them): the main process
    runs only the driver, an adapter's process everything else there."""
    in_adapter = adapter_under_test() is not None
    keep, drop = [], []
    for item in items:
        path = Path(item.path).resolve()
        if path.is_relative_to(CONTRACT_DIR) and (path.name == CONTRACT_DRIVER) == in_adapter:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


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
