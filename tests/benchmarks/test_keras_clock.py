"""What Keras' clock held before 2026-12-07 beyond the step: the batch's fetch and the accuracy metric
(docs/measurements.md, "The same work in every clock").

Three clocks on the same model and batches, in one process, interleaved over rounds:

- `fit span`: `model.fit` with Keras' own train function and a callback timing on_train_batch_begin to
  on_train_batch_end (the harness's clock before): tf.data's get_next (TensorFlow) or the numpy batch's
  `next()` and its conversion inside the jitted call (JAX) happen in it;
- `step`: the adapter's clock now (adapters/keras_adapter.py, _TimedTrainFunction): the batch drawn and
  placed first, Keras' own train function timed alone;
- `step, no metric`: the same on a twin model compiled without the accuracy metric (Keras' loss mean stays:
  `fit` reports it).

fetch = fit span - step; metric = step - step without the metric; each the median over rounds of the
per-round differences of medians. Run per backend:

    RNNBENCH_TEST_ADAPTER=keras python -m pytest -m perf tests/benchmarks/test_keras_clock.py -s
    RNNBENCH_TEST_ADAPTER=keras-jax KERAS_BACKEND=jax python -m pytest -m perf tests/benchmarks/test_keras_clock.py -s
"""

import time

import numpy as np
import pytest

import adapters
from bench.core.batching import BatchPlan
from bench.core.specs import ModelSpec, TrainSpec
from bench.core.timer import StepTimer
from tests.benchmarks.data import random_dataset
from tests.conftest import adapter_under_test

pytestmark = pytest.mark.perf

ADAPTERS = [a for a in [adapter_under_test()] if a and a.startswith("keras")]
BATCH, STEPS, ROUNDS, SKIP = 64, 30, 6, 3
SIZES = {"small": ModelSpec("lstm", (32, 32)), "large": ModelSpec("lstm", (256, 256))}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("adapter_name", ADAPTERS)
def test_what_keras_clock_held_beyond_the_step(adapter_name, size, capsys):
    import keras

    adapter = adapters.load(adapter_name)
    adapter.setup("auto", threads=2, seed=0)
    train = TrainSpec(batch_size=BATCH, max_steps=STEPS)
    data = random_dataset(BATCH, STEPS)
    model = adapter.build(SIZES[size], train)
    bare = adapter.build(SIZES[size], train)
    bare.compile(optimizer=keras.optimizers.Adam(learning_rate=train.learning_rate, epsilon=train.adam_epsilon),
                 loss=bare.loss, metrics=[], jit_compile=model.jit_compile)

    class FitSpan(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_train_batch_begin(self, batch, logs=None):
            self.t0 = time.perf_counter_ns()

        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])  # the old clock read the loss inside (its sync)
            adapter.sync()
            self.times.append(time.perf_counter_ns() - self.t0)

    def fit_span() -> float:
        cb = FitSpan()
        model.fit(data.x_train, data.y_train, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[cb])
        return float(np.median(cb.times[SKIP:])) / 1e6

    def step(m) -> float:
        timer = StepTimer(sync=adapter.sync)
        adapter.fit(m, data, train, BatchPlan(len(data.y_train), BATCH, 1, STEPS, 0), timer)
        return float(np.median(timer.times_ms()[SKIP:]))

    fit_span(), step(model), step(bare)  # compile all three paths
    rows = []
    for r in range(ROUNDS):
        order = [("span", fit_span), ("step", lambda: step(model)), ("bare", lambda: step(bare))]
        got = {name: fn() for name, fn in (order if r % 2 == 0 else order[::-1])}
        rows.append(got)
    span, stp, nom = (np.array([g[k] for g in rows]) for k in ("span", "step", "bare"))
    fetch, metric = float(np.median(span - stp)), float(np.median(stp - nom))
    with capsys.disabled():
        print(f"\n{adapter_name} {keras.backend.backend()} {size} {SIZES[size].key}: fit span {np.median(span):.3f} ms, "
              f"step {np.median(stp):.3f} ms, step without the metric {np.median(nom):.3f} ms; fetch in the old clock "
              f"{fetch:+.3f} ms ({100 * fetch / np.median(span):+.1f}% of it), metric {metric:+.3f} ms "
              f"({100 * metric / np.median(stp):+.1f}% of the step); {ROUNDS} rounds of {STEPS} steps")
    assert np.isfinite(fetch) and np.isfinite(metric)
