"""Each case's process gets an empty compile cache by default.

Inductor's and Triton's on-disk caches survive between processes, so a torch-compile case's
first_step_ms would depend on which cases ran before it on the machine. The job names the policy in
its environment (RNNBENCH_COMPILE_CACHE: cold or warm); the worker points the caches at a fresh
directory for a cold process before any framework is imported, and removes it at the end. JAX keeps
its compilations in memory unless a persistent cache is configured, so every process starts cold there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

COMPILE_CACHE_VAR = "RNNBENCH_COMPILE_CACHE"
CACHE_DIR_VARS = ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")


def policy_text(warm: bool) -> str:
    return ("warm: the machine's compile caches, shared with earlier processes" if warm
            else "cold: an empty Inductor/Triton cache for this process")


@contextlib.contextmanager
def compile_cache_for_this_process() -> Iterator[str | None]:
    """For a cold job: the cache variables point at a new empty directory until the block ends."""
    if not os.environ.get(COMPILE_CACHE_VAR, "").startswith("cold"):
        yield None
        return
    root = tempfile.mkdtemp(prefix="rnnbench-compile-")
    saved = {v: os.environ.get(v) for v in CACHE_DIR_VARS}
    for var in CACHE_DIR_VARS:
        os.environ[var] = os.path.join(root, var.split("_")[0].lower())
    try:
        yield root
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        shutil.rmtree(root, ignore_errors=True)
