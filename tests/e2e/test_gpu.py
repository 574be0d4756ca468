"""Real-GPU checks (marker `gpu`, deselected by default): python -m pytest -m gpu.

A known allocation of 512 MB, made in a fresh process per framework, must show up in the NVML
per-process figure within +-10%, and a tiny smoke run on the GPU must finish with GPU columns.
"""

import json
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import ROOT, installed

pytestmark = pytest.mark.gpu
ALLOC_MB = 512

PROBE = """
import json, os, time
{setup}
from bench.measure.memory import GpuMemorySampler
with GpuMemorySampler(period_s=0.005) as s:
    {warm}
    time.sleep(0.2)
    before = s.result().process_peak_mb
    {alloc}
    time.sleep(0.2)
    after = s.result().process_peak_mb
print(json.dumps({{"before": before, "after": after, "source": s.result().source}}))
"""

FRAMEWORKS = {
    "torch": dict(
        setup="import torch",
        warm="torch.zeros(1, device='cuda'); torch.cuda.synchronize()",
        alloc=f"t = torch.empty({ALLOC_MB} * 2**20, dtype=torch.uint8, device='cuda'); t.fill_(1); torch.cuda.synchronize()",
        requires=("torch",),
    ),
    "tensorflow": dict(
        setup="import tensorflow as tf\n[tf.config.experimental.set_memory_growth(g, True) for g in tf.config.list_physical_devices('GPU')]",
        warm="tf.zeros((1,)).numpy()",
        alloc=f"t = tf.ones(({ALLOC_MB} * 2**18,), dtype=tf.float32); t.numpy()[:1]",
        requires=("tensorflow",),
    ),
}


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_known_allocation_is_measured_within_ten_percent(framework):
    spec = FRAMEWORKS[framework]
    if not installed(*spec["requires"]):
        pytest.skip(f"{framework} not installed")
    code = PROBE.format(setup=spec["setup"], warm=spec["warm"], alloc=spec["alloc"])
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["source"] == "nvml-process"
    assert got["after"] - got["before"] == pytest.approx(ALLOC_MB, rel=0.10)


def test_gpu_smoke_run_has_gpu_columns(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "run",
            "--matrix",
            "smoke",
            "--cells",
            "lstm",
            "--device",
            "cuda",
            "--max-steps",
            "20",
            "--out",
            str(tmp_path),
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    df = pd.read_parquet(run_dir / "results.parquet")
    assert (df["gpu_mem_peak_mb"] > 0).all() and df["gpu_name"].notna().all()
    assert df["kernel_path"].str.startswith("cudnn").all()
