"""Small end-to-end runs of the real CLI with the real frameworks."""

import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import ROOT, installed

needs_both = pytest.mark.skipif(not installed("keras", "tensorflow", "torch"), reason="keras and torch needed")


def run_cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@needs_both
def test_tiny_run_writes_one_ok_row_per_case_and_prints_the_table(tmp_path):
    proc = run_cli(
        "run",
        "--matrix",
        "smoke",
        "--cells",
        "lstm",
        "--max-steps",
        "10",
        "--threads",
        "1",
        "--init",
        "keras",
        "--out",
        str(tmp_path),
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    df = pd.read_parquet(run_dir / "results.parquet")
    assert len(df) == 4
    assert set(df["status"]) == {"ok"}
    assert set(df["adapter"]) == {"keras", "torch"}
    assert (df["steps_run"] == 10).all() and (df["timed_steps"] == 4).all()  # 10 - first - 5 warm-up
    assert df["step_times_ms"].map(len).eq(10).all()
    assert df["batch_order_sha256"].nunique() == 1  # both frameworks saw the same batches
    assert df["dataset_sha256"].nunique() == 1
    assert (df["test_accuracy"].between(0, 1)).all()
    assert df["gpu_mem_peak_mb"].isna().all() and df["gpu_mem_reason"].str.contains("CPU").all()
    # --init keras: both frameworks start from the same weights, so the first loss agrees
    assert (df["init"] == "keras").all()
    for _, pair in df.groupby("bidirectional"):
        losses = pair["first_step_loss"].tolist()
        assert len(losses) == 2 and abs(losses[0] - losses[1]) < 1e-5, losses
    # measurement columns are filled
    assert df["kernel_path"].notna().all() and (df["forward_ms"] > 0).all()
    assert df["compile_cache"].str.startswith("cold").all()  # each case compiled from an empty cache
    assert (df["pct_of_sgemm"] > 0).all() and df["git_commit"].notna().all()
    assert "lstm-bi-32x2" in proc.stdout and "rnnbench smoke" in proc.stdout
    # the same table again from the saved run
    shown = run_cli("show", str(run_dir))
    assert shown.returncode == 0 and "lstm-uni-32x2" in shown.stdout


@pytest.mark.slow
@needs_both
def test_whole_smoke_matrix(tmp_path):
    proc = run_cli("run", "--matrix", "smoke", "--out", str(tmp_path), "--quiet", timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    df = pd.read_parquet(run_dir / "results.parquet")
    assert len(df) == 12 and set(df["status"]) == {"ok"}


@pytest.mark.slow
@needs_both
def test_parity_command_passes():
    proc = run_cli("parity", timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "combinations match" in proc.stdout and "MISMATCH" not in proc.stdout


@pytest.mark.slow
@pytest.mark.skipif(not installed("keras", "tensorflow", "torch", "tf_keras"), reason="keras, torch and tf-keras needed")
def test_seeds_matrix_shortened_on_synthetic_data(tmp_path):
    """Every reference case through the real process path (tf1-graph with legacy tf-keras in its own
    process), shortened; synthetic labels, so the learning check looks at the weights only."""
    proc = run_cli("run", "--matrix", "seeds", "--max-steps", "3", "--dataset", "synthetic", "--out", str(tmp_path),
                   "--quiet", timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    df = pd.read_parquet(run_dir / "results.parquet")
    assert list(df["label"]) == ["A1", "A2", "A3", "A4", "B1", "B2", "B3", "C", "D1", "D2", "D3"]
    assert set(df["status"]) == {"ok"} and set(df["steps_run"]) == {3}
    assert "reference cases: measured | reported" in proc.stdout and "SHORTENED" in proc.stdout
    c = df.set_index("label").loc["C"]
    assert (c["framework"], c["params"], c["lr_schedule"]) == ("tensorflow", 81_674, "exponential")
