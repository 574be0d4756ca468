"""Each case's process compiles from an empty cache unless the run asks for the machine's (bench/core/compile_cache.py)."""

import os

from bench import data
from bench.core.compile_cache import CACHE_DIR_VARS, COMPILE_CACHE_VAR, compile_cache_for_this_process
from bench.core.specs import Case, ModelSpec, TrainSpec
from bench.execution.jobs import CaseJob, case_job


def test_a_cold_process_gets_empty_cache_directories_that_are_removed_after(monkeypatch):
    monkeypatch.setenv(COMPILE_CACHE_VAR, "cold: an empty Inductor/Triton cache for this process")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/somewhere/shared")
    with compile_cache_for_this_process() as root:
        dirs = [os.environ[v] for v in CACHE_DIR_VARS]
        assert all(d.startswith(root) for d in dirs) and os.listdir(root) == []
        os.makedirs(dirs[0])
        open(os.path.join(dirs[0], "kernel.so"), "w").close()  # what Inductor would leave
    assert not os.path.exists(root)
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == "/somewhere/shared" and "TRITON_CACHE_DIR" not in os.environ


def test_a_warm_process_keeps_the_machine_s_caches(monkeypatch):
    monkeypatch.setenv(COMPILE_CACHE_VAR, "warm: the machine's compile caches, shared with earlier processes")
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    with compile_cache_for_this_process() as root:
        assert root is None and "TORCHINDUCTOR_CACHE_DIR" not in os.environ


def test_every_case_job_names_its_cache_policy_cold_unless_asked():
    case = Case("torch-compile", ModelSpec("lstm", (8,)), TrainSpec())
    source = data.resolve("synthetic")
    assert case_job(CaseJob(case, source, 1, "r"), 60).env[COMPILE_CACHE_VAR].startswith("cold")
    assert case_job(CaseJob(case, source, 1, "r", warm_compile_cache=True), 60).env[COMPILE_CACHE_VAR].startswith("warm")
