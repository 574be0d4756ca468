"""Nothing lost, nothing hidden: torn records, missing rows, a runner killed with SIGKILL, bad data."""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.cli.main import main
from bench.core.specs import Case, ModelSpec, TrainSpec
from bench.execution.runner import missing_cases
from bench.results.record import Record
from bench.results.store import append_record, read_records, records_problems
from tests.conftest import ROOT
from tests.e2e.test_runner import workers_started_by

FAKE_RUN = ["run", "--matrix", "smoke", "--cells", "lstm", "--dataset", "synthetic", "--max-steps", "8", "--quiet"]


def cli(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=timeout)


def record(case_id_seed: int) -> Record:
    case = Case("torch", ModelSpec("gru", (8,)), TrainSpec(seed=case_id_seed))
    return Record.for_case(case, "r", 1).with_measurements({"status": "ok"})


def test_an_append_after_a_torn_line_starts_a_new_line_and_the_torn_line_is_reported(tmp_path):
    append_record(tmp_path, record(0))
    with open(tmp_path / "records.jsonl", "a") as f:
        f.write('{"case_id": "torch/gru-uni-8x1/b64/mnist-5k/s1", "sta')  # a crash mid-append
    append_record(tmp_path, record(2))
    rows = read_records(tmp_path)
    assert [r["seed"] for r in rows] == [0, 2]  # the later record survives whole
    (problem,) = records_problems(tmp_path)
    assert "records.jsonl line 2: a torn or corrupt record" in problem and "'{\"case_id\"" in problem


def test_missing_cases_names_each_planned_case_without_a_row():
    cases = [Case("torch", ModelSpec("gru", (8,)), TrainSpec(seed=s)) for s in (0, 1)]
    df = pd.DataFrame({"case_id": [cases[0].case_id, cases[1].case_id], "repeat": [0, 0]})
    assert missing_cases(cases, 1, df) == []
    assert missing_cases(cases, 1, df.iloc[:1]) == [cases[1].case_id]
    assert missing_cases(cases, 2, df) == [f"{cases[0].case_id}#1", f"{cases[1].case_id}#1"]


def test_a_run_that_ends_with_fewer_rows_than_planned_says_which_and_exits_1(tmp_path, monkeypatch, fake_adapters,
                                                                              capsys):
    import bench.execution.runner

    real = bench.execution.runner.run_cases

    def loses_one(cases, *args, **kwargs):
        df = real(cases, *args, **kwargs)
        return df.iloc[1:].reset_index(drop=True)

    monkeypatch.setattr(bench.execution.runner, "run_cases", loses_one)
    code = main([*FAKE_RUN, "--adapters", "fake-ok", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "1 planned case(s) have no record: fake-ok/lstm-uni-32x2" in out and "--resume" in out


def test_torn_last_line_then_resume_keeps_every_case(tmp_path, fake_adapters):
    first = cli(*FAKE_RUN, "--adapters", "fake-ok,fake-frozen", "--out", str(tmp_path))
    assert first.returncode == 1  # fake-frozen is not-learning
    (run_dir,) = (tmp_path / "runs").iterdir()
    records = run_dir / "records.jsonl"
    lines = records.read_bytes().splitlines(keepends=True)
    assert len(lines) == 4
    records.write_bytes(b"".join(lines[:-1]) + lines[-1][:57])  # the last append was torn by a crash
    (run_dir / "results.parquet").unlink()
    resumed = cli("run", "--resume", str(run_dir), "--quiet")
    assert resumed.returncode == 1, resumed.stderr
    assert "line 4: a torn or corrupt record" in resumed.stderr + resumed.stdout
    df = pd.read_parquet(run_dir / "results.parquet")
    assert len(df) == 4 and df["case_id"].nunique() == 4  # every planned case has exactly one row
    assert "have no record" not in resumed.stdout


def test_killing_the_runner_with_sigkill_leaves_no_case_running(tmp_path, fake_adapters):
    proc = subprocess.Popen([sys.executable, "-m", "bench", *FAKE_RUN, "--adapters", "fake-hang", "--out",
                             str(tmp_path)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not workers_started_by(proc.pid):
        time.sleep(0.2)
    assert workers_started_by(proc.pid), "the case never started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(2)
    assert workers_started_by(proc.pid) == []


def _npz(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    np.savez(path, x_train=rng.integers(0, 256, (8, 28, 28), dtype=np.uint8), y_train=np.arange(8) % 10,
             x_test=rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), y_test=np.arange(4))


@pytest.mark.parametrize("kind", ["corrupt", "foreign"])
def test_a_corrupt_or_foreign_mnist_npz_is_refused_before_any_work(tmp_path, capsys, kind):
    d = tmp_path / "data"
    d.mkdir()
    if kind == "corrupt":
        (d / "mnist.npz").write_bytes(b"PK\x03\x04 not really a zip")
    else:
        _npz(d / "mnist.npz", 0)  # right shapes, wrong data
    actual = hashlib.sha256((d / "mnist.npz").read_bytes()).hexdigest()
    out = tmp_path / "out"
    code = main(["run", "--dataset", "mnist", "--data-dir", str(d), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert str(d / "mnist.npz") in err and actual in err and "731c5ac602752760c8e48fbffcf8c3b850d9dc2a" in err
    assert not out.exists()
