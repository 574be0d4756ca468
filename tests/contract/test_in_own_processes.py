"""The driver of tests/contract/: one fresh pytest process per built-in adapter.

Each process holds that adapter's frameworks only (tests/framework_guard.py), with the adapter's
import-time settings (its Keras backend, legacy tf-keras for the TF 1.x cells), exactly as a case's
worker process does. This module runs in the main, framework-free test process.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import adapters
from tests.conftest import ONLY_ADAPTER_VAR, installed

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 1800  # a loaded 2-core machine: tf1-graph's contract alone takes minutes there


@pytest.mark.parametrize("name", list(adapters.BUILTIN))
def test_contract_in_the_adapters_own_process(name, tmp_path):
    info = adapters.BUILTIN[name]
    if not installed(*info.requires):
        pytest.skip(f"{', '.join(info.requires)} not installed (pip install 'rnnbench[{name}]')")
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_USE_LEGACY_KERAS")}
    env.update({**info.env, ONLY_ADAPTER_VAR: name})
    # A cold compile cache, as on a fresh machine: no result depends on what an earlier run compiled.
    env["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path / "inductor")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(HERE), "-q", "-p", "no:cacheprovider", "-n", "0", "-rfE"],
        capture_output=True, text=True, env=env, timeout=TIMEOUT_S, cwd=HERE.parent.parent,
    )
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    failed = "\n".join(line for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR")))
    assert proc.returncode == 0, f"{name}: {summary}\n{failed}\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 20, f"{name}: too few contract tests ran: {summary}"
