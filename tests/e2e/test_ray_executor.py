"""The Ray executor: a local Ray instance in the default run (small), a two-node cluster in a slow test."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import data
from tests.conftest import ROOT, installed

needs_ray = pytest.mark.skipif(not installed("ray"), reason="ray not installed (pip install 'rnnbench[ray]')")
RUN = ["run", "--matrix", "smoke", "--cells", "lstm", "--dataset", "synthetic", "--max-steps", "8", "--quiet"]


def cli(*args, timeout=300, env=None):
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


@needs_ray
def test_a_local_ray_instance_runs_every_case_and_keeps_every_failure(tmp_path, fake_adapters):
    ray_run = cli(*RUN, "--adapters", "fake-ok,fake-crash,fake-hang", "--timeout", "6", "--executor", "ray",
                  "--out", str(tmp_path / "ray"))
    local = cli(*RUN, "--adapters", "fake-ok,fake-crash,fake-hang", "--timeout", "6", "--out", str(tmp_path / "local"))
    assert ray_run.returncode == local.returncode == 1, ray_run.stderr[-2000:]
    (ray_dir,) = (tmp_path / "ray" / "runs").iterdir()
    (local_dir,) = (tmp_path / "local" / "runs").iterdir()
    r, lo = pd.read_parquet(ray_dir / "results.parquet"), pd.read_parquet(local_dir / "results.parquet")
    assert list(r.columns) == list(lo.columns)  # the same records, whichever executor ran them
    assert len(r) == 6 and r["case_id"].is_unique
    status = r.groupby("adapter")["status"].agg(set).to_dict()
    assert status == {"fake-ok": {"ok"}, "fake-crash": {"failed"}, "fake-hang": {"timeout"}}
    assert set(r["executor"]) == {"ray"} and r["node"].str.len().gt(20).all() and r["host"].notna().all()
    assert set(lo["executor"]) == {"local"} and lo["node"].isna().all()
    assert "about to crash hard" in r.loc[r["adapter"] == "fake-crash", "error"].iloc[0]
    assert len(list((ray_dir / "cases").glob("*.log"))) == 6  # every case's log came back as data
    import json

    meta = json.loads((ray_dir / "meta.json").read_text())
    assert meta["executor"] == "ray" and meta["cluster"]["nodes"] and meta["node_environments"]


def test_without_ray_the_executor_is_bad_input_naming_the_extra(tmp_path, monkeypatch, capsys):
    import builtins

    from bench.cli.main import main

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray.") or name == "bench.execution.executors.ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    monkeypatch.delitem(sys.modules, "bench.execution.executors.ray", raising=False)
    assert main(["run", "--executor", "ray", "--out", str(tmp_path / "o")]) == 2
    assert "pip install 'rnnbench[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@needs_ray
def test_data_reaches_a_node_without_the_files_by_checksum(tmp_path, monkeypatch):
    from bench.execution.executors.ray import materialize
    from tests.unit.test_data import make_idx_dir

    src_dir = tmp_path / "driver"
    src_dir.mkdir()
    make_idx_dir(src_dir)
    source = data.resolve("fashion-mnist", src_dir)  # custom content: accepted, with a notice
    blobs = {name: (src_dir / name).read_bytes() for name, _ in source.files}
    moved = source.__class__(source.name, str(tmp_path / "not-on-this-node"), source.origin, source.files)
    monkeypatch.setenv("RNNBENCH_DATA_HOME", str(tmp_path / "node-cache"))
    fetched = []
    local = materialize(moved, lambda name: fetched.append(name) or blobs[name])
    assert sorted(fetched) == sorted(blobs) and "shipped to" in local.origin
    assert data.load(local).x_train.shape == (12, 28, 28)
    assert materialize(moved, lambda name: pytest.fail("already cached")).path == local.path
    bad = {k: v[:-1] + bytes([v[-1] ^ 1]) for k, v in blobs.items()}  # bytes that changed in transit
    shutil.rmtree(tmp_path / "node-cache")
    with pytest.raises(data.DataError, match="changed since the run started"):
        materialize(moved, lambda name: bad[name])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(*args, env):
    return subprocess.run([shutil.which("ray") or "ray", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.slow
@needs_ray
@pytest.mark.skipif(not installed("keras", "tensorflow", "torch"), reason="keras and torch needed")
def test_smoke_on_a_two_node_cluster_with_a_node_killed_mid_run(tmp_path):
    """`ray start --head` plus a second `ray start --address` on this machine, the smoke matrix on both;
    the second node's raylet is killed once the run is under way: every planned case still has
    exactly one row, cases lost with the node say so, and the rest finish on the head node."""
    # Ray's socket paths must stay under 107 bytes (AF_UNIX): pytest's tmp_path is too deep for them.
    ray_tmp = tempfile.mkdtemp(prefix="rb-ray-", dir="/tmp")
    # RAY_AUTH_MODE: recent Ray (2.60 here) starts clusters with token authentication; this one is on localhost.
    env = {**os.environ, "RAY_TMPDIR": ray_tmp, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    port, manager_port = _free_port(), _free_port()
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env["PATH"]
    head = _ray("start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false", env=env)
    assert head.returncode == 0, head.stderr
    try:
        second = _ray("start", f"--address=127.0.0.1:{port}", "--num-cpus=1",
                      f"--node-manager-port={manager_port}", env=env)
        assert second.returncode == 0, second.stderr
        out = tmp_path / "out"
        proc = subprocess.Popen([sys.executable, "-m", "bench", "run", "--matrix", "smoke", "--executor", "ray",
                                 "--ray-address", f"127.0.0.1:{port}", "--threads", "1", "--out", str(out), "--quiet"],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 600
        while time.time() < deadline:  # kill the second node once two cases are recorded
            records = list(out.glob("runs/*/records.jsonl"))
            if records and len(records[0].read_text().splitlines()) >= 2:
                break
            time.sleep(1)
        raylet = subprocess.run(["pgrep", "-f", f"raylet.*--node_manager_port={manager_port}"], capture_output=True,
                                text=True).stdout.split()
        assert raylet, "the second node's raylet was not found"
        for pid in raylet:
            os.kill(int(pid), signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=1800)
        (run_dir,) = (out / "runs").iterdir()
        df = pd.read_parquet(run_dir / "results.parquet")
        assert len(df) == 12 and df["case_id"].is_unique, stderr[-3000:]  # exactly one row per planned case
        assert "have no record" not in stdout
        lost = df[df["status"] != "ok"]
        assert lost["error"].str.contains("Ray").all(), lost[["case_id", "error"]].to_string()
        assert (df["status"] == "ok").sum() >= 12 - 2, df[["case_id", "status", "host"]].to_string()
        assert np.isin(df["executor"], ["ray"]).all()
    finally:
        _ray("stop", "--force", env=env)
        shutil.rmtree(ray_tmp, ignore_errors=True)
