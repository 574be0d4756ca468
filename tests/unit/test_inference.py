"""The inference phase (bench/measure/inference.py): which calls are timed, at which batch, and when a
p99 is not reported. No timing targets here (they live in benchmarks)."""

import time

import numpy as np

from bench.measure import inference as I


def test_latency_is_batch_one_and_throughput_the_large_batch_with_first_calls_apart():
    shapes = []

    def logits(x):
        shapes.append(len(x))
        return np.zeros((len(x), 10))

    out = I.measure_inference(logits, np.zeros((50, 28, 28), np.float32), batch_size=1000)
    calls = 1 + I.WARMUP_CALLS + I.LATENCY_CALLS
    assert shapes[:calls] == [1] * calls  # first call, warm-up, then the timed batch-1 calls
    assert set(shapes[calls:]) == {50}  # the batch is capped at the examples there are
    assert len(shapes) == calls + I.THROUGHPUT_WARMUP + I.THROUGHPUT_CALLS
    assert out["infer_latency_calls"] == I.LATENCY_CALLS and out["infer_batch_size"] == 50
    assert out["infer_latency_ms_b1_p99"] >= out["infer_latency_ms_b1_median"] > 0
    assert out["infer_reason"] is None and out["infer_throughput_samples_per_s"] > 0


def test_too_few_calls_for_a_p99_leave_it_empty_with_the_reason(monkeypatch):
    monkeypatch.setattr(I, "LATENCY_BUDGET_S", 0.05)
    monkeypatch.setattr(I, "THROUGHPUT_BUDGET_S", 0.05)
    out = I.measure_inference(lambda x: time.sleep(0.01), np.zeros((8, 2, 2)), batch_size=4)
    assert 3 <= out["infer_latency_calls"] < I.MIN_P99_CALLS
    assert out["infer_latency_ms_b1_p99"] is None
    assert out["infer_reason"].endswith(f"too few for a p99 (needs {I.MIN_P99_CALLS})")


def test_the_first_call_is_the_cases_first_wherever_it_ran():
    """A compiled adapter compiles its inference function on its first call, which may be a curve evaluation
    at the eval batch: FirstCall times that one, and no later call."""
    calls = []

    def logits(x):
        calls.append(len(x))
        time.sleep(0.02 if len(calls) == 1 else 0.0)  # the first call compiles
        return np.zeros((len(x), 10))

    first = I.FirstCall(logits)
    first(np.zeros((1000, 2)))  # e.g. the final evaluation
    I.measure_inference(first, np.zeros((50, 2)), batch_size=1000)
    cols = first.columns()
    assert cols["infer_first_call_batch"] == 1000 and cols["infer_first_call_ms"] >= 20.0
    assert I.FirstCall(logits).columns() == {"infer_first_call_ms": None, "infer_first_call_batch": None}
