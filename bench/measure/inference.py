"""Inference: forward passes only, after training, outside every training clock.

The function timed is the adapter's inference call (`Adapter.logits`): a numpy batch in, the model in
inference mode (dropout off, no gradients: torch's `eval()` and `no_grad`, Keras' compiled predict, a
TF 1.x `Session.run` of the logits), the logits back as numpy. It returns a host array, so each call has
finished when the clock is read (the same synchronization rule as training), and it includes moving the
batch to the device and the logits back, as serving from host memory does.

- **The first call** (`infer_first_call_ms`, `infer_first_call_batch`): the case's first inference call,
  wherever it ran (the first curve evaluation, the final evaluation, or this phase), timed by `FirstCall`
  around the adapter's inference function for the whole case: that is where a framework traces or compiles
  its inference function (Keras' predict function, torch.compile's inference graph), so its cost is seen
  whichever comes first. A shape met later may trace again; that is in the warm-up below.
- **Latency at batch 1**: one call at batch 1 and WARMUP_CALLS more are discarded, then up
  to LATENCY_CALLS calls are timed, within LATENCY_BUDGET_S. The median, and the p99 where at least
  MIN_P99_CALLS calls were timed (below that, the 99th percentile is the maximum of a handful of calls).
- **Throughput at a large batch** (`infer_batch_size`: the case's eval batch size, at most the test
  split): the first call at that shape is discarded (a compiled adapter traces it again), then up to
  THROUGHPUT_CALLS calls within THROUGHPUT_BUDGET_S; samples per second at the median call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.core.columns import columns

# A case's inference phase took 1-6 s (median 2.4 s) of the `full` matrix with 300 calls / 3 s and 20 large
# calls / 3 s (docs/measurements.md); the large calls were most of it, and their medians move little
# after the third call (a batch of 1,000 is long enough to average a step's jitter).
WARMUP_CALLS = 10
LATENCY_CALLS = 300
LATENCY_BUDGET_S = 1.0
MIN_P99_CALLS = 100  # below this a 99th percentile is the largest of a few samples: not reported
THROUGHPUT_WARMUP = 1
THROUGHPUT_CALLS = 10
THROUGHPUT_BUDGET_S = 1.0

INFER = {"unit": "ms", "fmt": ".3f", "better": "lower"}
COLUMNS = columns(
    "inference",
    ("infer_first_call_ms", "float", "the case's first inference call, wherever it ran (a curve evaluation, the final evaluation, the inference phase): tracing / compiling the inference function", INFER),
    ("infer_first_call_batch", "int", "the batch of that first call"),
    ("infer_latency_ms_b1_median", "float", "median latency of one inference call at batch 1 (numpy in, logits out)", {**INFER, "table": True}),
    ("infer_latency_ms_b1_p99", "float", "99th percentile of the batch-1 latency (from 100 calls or more)", INFER),
    ("infer_latency_calls", "int", "batch-1 calls timed"),
    ("infer_throughput_samples_per_s", "float", "inference samples per second at infer_batch_size (median call)",
     {"fmt": ",.0f", "better": "higher"}),
    ("infer_batch_size", "int", "the batch of the throughput measurement"),
    ("infer_path", "str", "what the inference call ran: eager, a compiled function (and what compiled it, read back from the compiler where it can be)"),
    ("infer_reason", "str", "why an inference figure is missing (skipped with --no-inference, too few calls for a p99)"),
    ("inference_s", "float", "the inference phase's wall time, after training", {"unit": "s", "fmt": ".2f"}),
)


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t0) / 1e6


def _calls(fn: Callable[[], Any], most: int, budget_s: float) -> list[float]:
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < most and (len(times) < 3 or time.perf_counter() < deadline):
        times.append(_timed(fn))
    return times


class FirstCall:
    """The adapter's inference call for the whole case, timing its first call (any batch, anywhere)."""

    def __init__(self, logits: Callable[[np.ndarray], Any]) -> None:
        self.logits = logits
        self.first_ms: float | None = None
        self.first_batch: int | None = None

    def __call__(self, x: np.ndarray) -> Any:
        if self.first_ms is not None:
            return self.logits(x)
        t0 = time.perf_counter_ns()
        out = self.logits(x)
        self.first_ms, self.first_batch = (time.perf_counter_ns() - t0) / 1e6, len(x)
        return out

    def columns(self) -> dict[str, Any]:
        return {"infer_first_call_ms": self.first_ms, "infer_first_call_batch": self.first_batch}


def measure_inference(logits: Callable[[np.ndarray], Any], x: np.ndarray, batch_size: int) -> dict[str, Any]:
    """Batch-1 latency and large-batch throughput of an inference function on the examples `x`."""
    t0 = time.perf_counter()
    one = x[:1]
    logits(one)  # the first call at this shape: tracing again where the function is shape-specialised
    for _ in range(WARMUP_CALLS):
        logits(one)
    latency = _calls(lambda: logits(one), LATENCY_CALLS, LATENCY_BUDGET_S)
    batch = x[: min(batch_size, len(x))]
    for _ in range(THROUGHPUT_WARMUP):
        logits(batch)
    per_call = _calls(lambda: logits(batch), THROUGHPUT_CALLS, THROUGHPUT_BUDGET_S)
    enough = len(latency) >= MIN_P99_CALLS
    return {
        "infer_latency_ms_b1_median": float(np.median(latency)),
        "infer_latency_ms_b1_p99": float(np.percentile(latency, 99)) if enough else None,
        "infer_latency_calls": len(latency),
        "infer_throughput_samples_per_s": len(batch) / (float(np.median(per_call)) / 1e3),
        "infer_batch_size": len(batch),
        "infer_reason": None if enough else f"{len(latency)} batch-1 calls in {LATENCY_BUDGET_S:g} s: too few for a p99 "
                                            f"(needs {MIN_P99_CALLS})",
        "inference_s": time.perf_counter() - t0,
    }
