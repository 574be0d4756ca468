"""The guard that keeps one framework per test process (tests/framework_guard.py)."""

import json
import subprocess
import sys

import pytest

from tests import framework_guard
from tests.conftest import ROOT, installed


def test_an_adapter_s_process_may_hold_its_frameworks_and_their_machinery():
    assert framework_guard.allowed_frameworks(("keras", "tensorflow")) == {"keras", "tensorflow", "tf_keras"}
    assert framework_guard.allowed_frameworks(("torch",)) == {"torch", "triton"}
    assert framework_guard.allowed_frameworks(("keras", "jax")) == {"keras", "jax"}
    assert framework_guard.allowed_frameworks(()) == frozenset()
    assert framework_guard.loaded_frameworks(["numpy", "torch", "torch.nn", "jax"]) == ["torch", "jax"]


PROBE = """
import importlib, importlib.util, json, sys
from tests import framework_guard as g
out = {}
guard = g.install(frozenset(), "probe")
out["find_spec"] = importlib.util.find_spec("torch") is not None
try:
    importlib.import_module("adapters.torch_adapter")  # own code importing torch: refused
    out["own"] = "imported"
except g.SecondFrameworkError as exc:
    out["own"] = str(exc)
out["loaded_after_refusal"] = "torch" in sys.modules
out["refused"] = guard.refused
guard.allowed = g.allowed_frameworks(("torch",))
importlib.import_module("adapters.torch_adapter")  # now this process's framework
out["allowed"] = "torch" in sys.modules
print(json.dumps(out))
"""


@pytest.mark.skipif(not installed("torch"), reason="torch not installed")
def test_own_code_importing_a_framework_the_process_may_not_hold_is_refused_before_it_runs():
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["find_spec"] is True  # checking what is installed is never refused
    assert "probe imported 'torch', which it may not hold (allowed here: none)" in out["own"]
    assert "tests/contract/" in out["own"]
    assert out["loaded_after_refusal"] is False and out["refused"] == ["torch"]
    assert out["allowed"] is True


def test_this_test_process_holds_no_framework():
    assert framework_guard.loaded_frameworks(sys.modules) == []
    assert any(isinstance(f, framework_guard.FrameworkGuard) for f in sys.meta_path)
