"""The benchmarks' data: random images of MNIST's shape, `steps` batches of `batch` examples."""

import numpy as np

from bench.core.dataset import Dataset


def random_dataset(batch: int, steps: int) -> Dataset:
    rng = np.random.default_rng(0)
    n = batch * steps
    x = rng.random((n, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, n)
    return Dataset("bench", x, y, x[:batch], y[:batch], "bench", "0")
