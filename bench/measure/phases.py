"""Forward / backward / optimizer split, measured in a short phase after the main timing.

Each phase function is a synchronized call doing progressively more of a step (forward;
forward + backward; forward + backward + optimizer). Calls are interleaved round by round so
slow drift affects all three alike, and the split is the difference of their medians, so no
extra synchronization is ever inserted inside a step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.core.columns import columns

PHASES = ("forward", "forward_backward", "step")
PHASE = dict(unit="ms", fmt=".2f", better="lower")
COLUMNS = columns(
    "what ran",
    ("forward_ms", "float", "median forward pass, measured after training (docs/methodology.md)", PHASE),
    ("backward_ms", "float", "median backward pass: forward+backward minus forward", PHASE),
    ("optimizer_ms", "float", "median optimizer update: the whole step minus forward+backward", PHASE),
)


def measure_phases(fns: dict[str, Callable[[], Any]], rounds: int, warmup: int = 1) -> dict[str, float]:
    """Median ms of forward, backward (derived) and optimizer (derived). One warm-up call of each function
    compiles or traces it (what a compiled adapter needs); the training before it warmed everything else."""
    for _ in range(warmup):
        for name in PHASES:
            fns[name]()
    times: dict[str, list[int]] = {name: [] for name in PHASES}
    for _ in range(rounds):
        for name in PHASES:
            t0 = time.perf_counter_ns()
            fns[name]()
            times[name].append(time.perf_counter_ns() - t0)
    med = {name: float(np.median(v)) / 1e6 for name, v in times.items()}
    return {
        "forward_ms": med["forward"],
        "backward_ms": med["forward_backward"] - med["forward"],
        "optimizer_ms": med["step"] - med["forward_backward"],
    }
