"""The runner with real child processes and framework-free adapters: every failure is a row."""

import json

import pandas as pd
import pytest

from bench.core.specs import Case, ModelSpec, TrainSpec
from bench.core.status import STATUSES
from bench.data import resolve
from bench.execution.runner import run_cases
from bench.results.store import read_records

MODEL = ModelSpec("lstm", (8,))
TRAIN = TrainSpec(batch_size=256, max_steps=12, warmup_steps=2)


def run(tmp_path, adapter_names, timeout_s=60.0):
    cases = [Case(a, MODEL, TRAIN, dataset="synthetic") for a in adapter_names]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    df = run_cases(cases, run_dir, resolve("synthetic"), threads=1, timeout_s=timeout_s, meta={"x": 1})
    return df.set_index("adapter"), run_dir


def test_every_failure_kind_is_recorded_and_the_matrix_completes(tmp_path, fake_adapters):
    names = ["fake-crash", "fake-raise", "fake-oom", "fake-nan", "fake-missing", "fake-hang", "fake-frozen", "fake-ok"]
    df, run_dir = run(tmp_path, names, timeout_s=8.0)
    status = df["status"].to_dict()
    assert status == {
        "fake-crash": "failed",
        "fake-raise": "failed",
        "fake-oom": "oom",
        "fake-nan": "diverged",
        "fake-missing": "unavailable",
        "fake-hang": "timeout",
        "fake-frozen": "not-learning",
        "fake-ok": "ok",
    }
    # every documented status is reachable, and no other (inconclusive needs real labels: test_curve.py reaches it)
    assert set(status.values()) == set(STATUSES) - {"inconclusive"}
    assert "weights that never changed: l0.d0.w_ih, l0.d0.w_hh" in df.loc["fake-frozen", "error"]
    assert pd.isna(df.loc["fake-frozen", "test_accuracy"])
    assert "exited with code 3" in df.loc["fake-crash", "error"]
    assert "about to crash hard" in df.loc["fake-crash", "error"]  # the log's tail
    assert "ValueError: shape mismatch in layer 2" in df.loc["fake-raise", "error"]
    assert "No module named 'tests.no_such_module'" in df.loc["fake-missing", "error"]
    assert "8 s limit" in df.loc["fake-hang", "error"]
    assert pd.isna(df.loc["fake-nan", "test_accuracy"])  # not reported
    assert "diverged" in df.loc["fake-nan", "accuracy_reason"]
    assert df.loc["fake-hang", "wall_time_s"] < 30
    # one line per case in the append-only log, and the saved tables
    assert len(read_records(run_dir)) == len(names)
    assert {"results.parquet", "results.csv", "meta.json"} <= {p.name for p in run_dir.iterdir()}


def test_ok_row_holds_timing_and_threads(tmp_path, fake_adapters):
    df, _ = run(tmp_path, ["fake-ok"])
    r = df.loc["fake-ok"]
    assert r["status"] == "ok" and r["params"] == 42
    assert r["steps_run"] == 12 and len(r["step_times_ms"]) == 12
    assert r["warmup_steps"] == 2 and r["timed_steps"] == 9
    assert r["step_time_ms_median"] >= 1.0  # the fake sleeps 1 ms a step
    assert pd.isna(r["test_accuracy"]) and "synthetic" in r["accuracy_reason"]
    assert r["threads"] == 1 and len(r["batch_order_sha256"]) == 16
    assert r["cpu_rss_peak_mb"] > 0


def test_resume_skips_recorded_cases(tmp_path, fake_adapters):
    df, run_dir = run(tmp_path, ["fake-ok"])
    first = read_records(run_dir)
    cases = [Case(a, MODEL, TRAIN, dataset="synthetic") for a in ("fake-ok", "fake-nan")]
    df = run_cases(cases, run_dir, resolve("synthetic"), threads=1, timeout_s=60, meta={})
    rows = read_records(run_dir)
    assert rows[0] == first[0]  # untouched
    assert [r["adapter"] for r in rows] == ["fake-ok", "fake-nan"]
    assert len(df) == 2


@pytest.mark.parametrize("threads", [1, 3])
def test_thread_settings_reach_the_child(tmp_path, fake_adapters, threads):
    cases = [Case("fake-ok", MODEL, TRAIN, dataset="synthetic")]
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    run_cases(cases, run_dir, resolve("synthetic"), threads=threads, timeout_s=60, meta={})
    job = json.loads(next((run_dir / "cases").glob("*.job.json")).read_text())
    assert job["payload"]["threads"] == threads
    assert job["env"]["OMP_NUM_THREADS"] == job["env"]["TF_NUM_INTRAOP_THREADS"] == str(threads)


def test_a_run_directory_in_use_is_refused(tmp_path, fake_adapters):
    from bench.core.errors import BenchInputError
    from bench.execution.runner import run_lock

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cases = [Case("fake-ok", MODEL, TRAIN, dataset="synthetic")]
    with run_lock(run_dir):
        with pytest.raises(BenchInputError, match=r"is in use by pid [0-9]+"):
            run_cases(cases, run_dir, resolve("synthetic"), threads=1, timeout_s=60, meta={})
    assert read_records(run_dir) == []
    run_cases(cases, run_dir, resolve("synthetic"), threads=1, timeout_s=60, meta={})  # free again
    assert len(read_records(run_dir)) == 1


def test_sigterm_stops_the_running_case_and_keeps_finished_ones(tmp_path, fake_adapters):
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", "--matrix", "smoke", "--adapters", "fake-ok,fake-hang",
         "--dataset", "synthetic", "--max-steps", "8", "--out", str(tmp_path), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 60
    records = []
    while time.time() < deadline and not records:  # wait until fake-ok finished and fake-hang runs
        time.sleep(0.5)
        records = list(tmp_path.glob("runs/*/records.jsonl"))
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "continue with --resume" in err
    run_dir = records[0].parent
    assert [r["adapter"] for r in read_records(run_dir)] == ["fake-ok"]
    assert workers_started_by(proc.pid) == [], "orphaned worker still running"


def workers_started_by(pid: int) -> list[int]:
    """Live case processes whose runner was `pid` (the executor marks them in their environment)."""
    import os
    from pathlib import Path

    mark = f"RNNBENCH_PARENT_PID={pid}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if mark in (proc / "environ").read_bytes().split(b"\0"):
                state = (proc / "stat").read_text().split(") ", 1)[1][0]
                if state != "Z":  # a zombie is dead, waiting to be reaped
                    found.append(int(proc.name))
        except OSError:
            continue
    return found
