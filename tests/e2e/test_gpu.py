"""Real-GPU checks (marker `gpu`, deselected by default): python -m pytest -m gpu.

A known allocation of 512 MB, made in a fresh process per framework, must show up in the NVML
per-process figure within +-10%, and a tiny smoke run on the GPU must finish with GPU columns.
"""

import json
import subprocess
import sys

import pandas as pd
import pytest

import adapters
from tests.conftest import ROOT, installed


def _no_gpu() -> bool:
    from bench.measure.memory import device_used_mb

    return device_used_mb() is None


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(_no_gpu(), reason="no NVIDIA GPU visible through NVML")]
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
    "jax": dict(
        setup="import os; os.environ['XLA_PYTHON_CLIENT_PREALLOCATE'] = 'false'\nimport jax, jax.numpy as jnp",
        warm="jnp.zeros(1).block_until_ready()",
        alloc=f"t = jnp.ones(({ALLOC_MB} * 2**18,), dtype=jnp.float32); t.block_until_ready()",
        requires=("jax",),
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


# The GPU adapters whose frameworks are installed here (the lent GPU image has torch and JAX, no TF).
GPU_ADAPTERS = [n for n in ("torch", "torch-compile", "keras-jax", "keras-torch", "keras")
                if installed(*adapters.BUILTIN[n].requires)]


def test_gpu_smoke_run_has_gpu_columns(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--matrix", "smoke", "--adapters", ",".join(GPU_ADAPTERS),
         "--cells", "lstm", "--device", "cuda", "--max-steps", "20", "--out", str(tmp_path), "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    df = pd.read_parquet(run_dir / "results.parquet")
    assert set(df["adapter"]) == set(GPU_ADAPTERS) and (df["status"] == "ok").all()
    assert (df["gpu_mem_peak_mb"] > 0).all() and df["gpu_name"].notna().all()
    assert (df["gpu_allocator_peak_mb"] > 0).all()  # every framework's own allocator, keras-jax's and keras-torch's too
    assert df["kernel_path"].str.startswith("cudnn").all(), df[["case_id", "kernel_path"]].to_string()
    assert df["energy_source"].str.contains("steps after step 0").all()
    assert df["pct_of_sgemm"].isna().all() and df["compile_cache"].str.startswith("cold").all()
