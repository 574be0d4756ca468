"""A short SGEMM calibration at the start of each run: this machine's float32 matmul speed.

Saved in the run's metadata. `compare --normalize` divides step times by it, so runs from
machines of different speed can be compared; it is also the yardstick for achieved FLOP/s. It runs with
the cases' thread count (`--threads`), set on numpy's BLAS through threadpoolctl: a calibration on every
core set against cases on fewer would overstate what a case could reach (`pct_of_sgemm`).
"""

from __future__ import annotations

import time

import numpy as np

SIZE = 1024  # large enough to be BLAS-bound, ~0.2 s in all on 2 cores
REPEATS = 40


def sgemm_calibration(size: int = SIZE, repeats: int = REPEATS, seed: int = 0,
                      threads: int | None = None) -> dict[str, float]:
    """Best time of a size x size float32 matmul (numpy's BLAS) and the GFLOP/s it implies.

    The minimum, not the median: interference only ever adds time, so the best of 40 is the
    steadiest estimate of what the machine can do (measured here: medians moved 13% more between
    processes than minimums did).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        return _calibrate(size, repeats, seed)


def _calibrate(size: int, repeats: int, seed: int) -> dict[str, float]:
    from threadpoolctl import threadpool_info

    rng = np.random.default_rng(seed)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    a @ b  # first call: thread pool start-up, page faults
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    best_s = float(np.min(times))
    return {
        "sgemm_size": size,
        "sgemm_ms": best_s * 1e3,
        "sgemm_median_ms": float(np.median(times)) * 1e3,
        "sgemm_gflops": 2 * size**3 / best_s / 1e9,
        "sgemm_cv": float(np.std(times) / np.mean(times)),
        # what the BLAS ran with, read back (None where numpy's BLAS is not one threadpoolctl knows)
        "sgemm_threads": next((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"), None),
    }
