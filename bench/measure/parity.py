"""The case-process side of `bench parity`: one adapter's logits, loss and SGD update for every spec,
from the same canonical weights and the same batch (the parent compares them: bench/stats/parity.py).
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

import adapters
from bench.core.canonical import torch_scheme
from bench.core.specs import CELLS, ModelSpec, TrainSpec

DEPTHS = ((8,), (8, 6), (6, 8, 5))
SGD_LR = 0.1
BATCH = 6


# besides 28 rows of 28 pixels: a pixel-like sequence (many timesteps of one feature), so the canonical
# weights and every adapter's input handling are proven for any shape
SHAPES = ((28, 28), (11, 1))


def parity_specs() -> list[ModelSpec]:
    return [ModelSpec(cell, units, bi, timesteps=t, input_size=f) for t, f in SHAPES for cell in CELLS
            for bi in (False, True) for units in (DEPTHS if (t, f) == (28, 28) else DEPTHS[:1])]


def _batch(seed: int, spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((BATCH, spec.timesteps, spec.input_size), dtype=np.float32), rng.integers(0, 10, BATCH)


def worker_run(job: dict[str, Any]) -> dict[str, Any]:
    """In the adapter's own process (a `parity` job): every spec, same weights, same batch; the
    arrays travel back as one base64 npz."""
    adapter = adapters.load(job["adapter"])
    adapter.setup("cpu", threads=job["threads"], seed=0)
    info = adapters.get_info(job["adapter"])
    out: dict[str, Any] = {}
    for i, raw in enumerate(job["specs"]):
        spec = ModelSpec(**{**raw, "units": tuple(raw["units"]), "dropout": tuple(raw["dropout"])})
        if info.noncanonical_reason(spec):
            continue  # a different function: nothing to compare (compare() says why)
        for key, value in measure_spec(adapter, spec, job["seed"] + i).items():
            out[f"{i}/{key}"] = value
    buffer = io.BytesIO()
    np.savez(buffer, **out)
    return {"npz": base64.b64encode(buffer.getvalue()).decode("ascii")}


def measure_spec(adapter: Any, spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """Load the canonical weights for `seed`, then logits, the loss of one SGD step and its update."""
    x, y = _batch(seed, spec)
    train = TrainSpec(optimizer="sgd", learning_rate=SGD_LR, batch_size=BATCH)
    model = adapter.build(spec, train)
    adapter.set_weights(model, torch_scheme(spec, seed))
    out = {"params": np.array(adapter.count_params(model)), "logits": adapter.logits(model, x)}
    before = adapter.get_weights(model).arrays()
    out["loss"] = np.array(adapter.train_step(model, train)(x, y))
    for name, new in adapter.get_weights(model).arrays().items():
        out[f"delta/{name}"] = new - before[name]
    out["two_biases"] = np.array(adapter.keeps_recurrent_bias(spec.cell))
    return out
