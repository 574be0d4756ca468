"""The environment a run measured: versions, hardware, thread settings, git commit.

Read without importing any framework (package versions come from installed metadata), so it is
cheap and safe to call in the parent process.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.core.columns import columns

COLUMNS = columns(
    "environment",
    ("threads_intra", "int", "the framework's intra-op threads, read back"),
    ("threads_inter", "int", "the framework's inter-op threads, read back"),
    ("cuda_version", "str", "the CUDA the framework was built with"),
    ("cudnn_version", "str", "the cuDNN the framework loaded"),
    ("python_version", "str", "the Python that ran the case"),
    ("cpu_model", "str", "the processor"),
    ("cpu_cores", "int", "usable cores"),
    ("git_commit", "str", "the commit of this repository that ran the case"),
    ("git_dirty", "bool", "whether the checkout had uncommitted changes"),
)
PACKAGES = ("tensorflow", "keras", "tf-keras", "torch", "jax", "numpy", "pandas", "pyarrow", "mlxtend", "nvidia-ml-py", "rich")
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def git_info(repo: Path | None = None) -> dict[str, Any]:
    repo = repo or Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=repo,
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
        )
        date = subprocess.run(
            ["git", "show", "-s", "--format=%cI", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        return {"commit": commit, "dirty": dirty, "commit_date": date or None}  # the date orders a history
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None, "commit_date": None}


def gpu_info() -> dict[str, Any]:
    """NVIDIA driver and GPUs via NVML, or the reason there are none."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:
        return {"available": False, "reason": f"{type(exc).__name__}: {exc}"}
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            gpus.append(
                {"index": i, "name": _str(pynvml.nvmlDeviceGetName(h)), "uuid": _str(pynvml.nvmlDeviceGetUUID(h))}
            )
        return {"available": True, "driver": _str(pynvml.nvmlSystemGetDriverVersion()), "gpus": gpus}
    finally:
        pynvml.nvmlShutdown()


def _str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def collect() -> dict[str, Any]:
    """Everything about this machine and checkout that a reader of the results needs."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": platform.node(),
        "cpu_model": cpu_model(),
        "cpu_cores": usable_cores(),
        "packages": package_versions(),
        "thread_env": {k: os.environ.get(k) for k in THREAD_VARS},
        "git": git_info(),
        "gpu": gpu_info(),
    }


def environment_columns(env: dict[str, Any]) -> dict[str, Any]:
    """The key environment facts as columns (the whole record stays in meta.json)."""
    git = env.get("git") or {}
    return {
        "python_version": env.get("python"),
        "cpu_model": env.get("cpu_model"),
        "cpu_cores": env.get("cpu_cores"),
        "git_commit": git.get("commit"),
        "git_dirty": git.get("dirty"),
    }
