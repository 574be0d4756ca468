"""The harness, not the frameworks, decides the data order: a seeded permutation per epoch.

Every adapter receives the same batches in the same order for the same seed, and the row
records a hash of that order so the claim can be checked from the results alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The training order of epoch `epoch` (0-based): a permutation of range(n)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


class BatchPlan:
    """Index arrays of the full batches to train on, epoch by epoch, up to `total_steps`."""

    def __init__(self, n: int, batch_size: int, epochs: int, max_steps: int | None, seed: int) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.steps_per_epoch = n // batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"batch_size {batch_size} is larger than the training set ({n} examples)")
        total = self.steps_per_epoch * epochs
        self.total_steps = total if max_steps is None else min(total, max_steps)
        self.epochs = -(-self.total_steps // self.steps_per_epoch)  # ceil
        self._hash = hashlib.sha256()

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """Example indices of epoch `epoch`, truncated to whole batches and to `total_steps`."""
        steps = min(self.steps_per_epoch, self.total_steps - epoch * self.steps_per_epoch)
        idx = epoch_permutation(self.seed, epoch, self.n)[: steps * self.batch_size]
        self._hash.update(idx.astype(np.int64).tobytes())
        return idx

    def epochs_indices(self) -> Iterator[np.ndarray]:
        for epoch in range(self.epochs):
            yield self.epoch_indices(epoch)

    def order_hash(self) -> str:
        """SHA-256 (first 16 hex digits) of every index handed out so far, in order."""
        return self._hash.hexdigest()[:16]
