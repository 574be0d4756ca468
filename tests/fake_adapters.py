"""Framework-free adapters for testing the harness's failure paths in real child processes.

Registered through RNNBENCH_ADAPTERS (see tests/conftest.py), so the worker loads them by name
exactly as it loads the real ones.
"""

from __future__ import annotations

import os
import time

from adapters.base import Adapter, EvalResult, FitResult, RuntimeInfo


class OkAdapter(Adapter):
    """Trains nothing, but drives the timer through every planned step like a real adapter."""

    name = "fake-ok"
    loss = 1.0

    def setup(self, device, threads, seed):
        self.threads = threads

    def build(self, model, train):
        return {"spec": model}

    def fit(self, model, data, train, plan, timer):
        epochs = 0
        for idx in plan.epochs_indices():
            epochs += 1
            for _ in range(len(idx) // train.batch_size):
                timer.start()
                time.sleep(0.001)
                timer.stop()
        diverged = self.loss != self.loss
        return FitResult(steps=timer.steps, epochs=epochs, train_loss=self.loss, train_accuracy=0.5, diverged=diverged)

    def train_step(self, model, train):
        return lambda x, y: self.loss

    def evaluate(self, model, data, train):
        return EvalResult(loss=self.loss, accuracy=0.25)

    def count_params(self, model):
        return 42

    def runtime_info(self, model):
        return RuntimeInfo("fake", "0.0", "none", "eager", "cpu", {"threads": self.threads})


class NanAdapter(OkAdapter):
    name = "fake-nan"
    loss = float("nan")


class CrashAdapter(OkAdapter):
    """Dies the way a segfaulting extension does: no Python exception, no result file."""

    name = "fake-crash"

    def fit(self, model, data, train, plan, timer):
        print("about to crash hard", flush=True)
        os._exit(3)


class HangAdapter(OkAdapter):
    name = "fake-hang"

    def fit(self, model, data, train, plan, timer):
        time.sleep(600)


class RaiseAdapter(OkAdapter):
    name = "fake-raise"

    def build(self, model, train):
        raise ValueError("shape mismatch in layer 2")


class OomAdapter(OkAdapter):
    name = "fake-oom"

    def fit(self, model, data, train, plan, timer):
        raise MemoryError("could not allocate 40 GiB")


FAKES = {
    "fake-ok": "OkAdapter",
    "fake-nan": "NanAdapter",
    "fake-crash": "CrashAdapter",
    "fake-hang": "HangAdapter",
    "fake-raise": "RaiseAdapter",
    "fake-oom": "OomAdapter",
}
ENV_VALUE = ",".join(f"{name}=tests.fake_adapters:{cls}" for name, cls in FAKES.items()) + (
    ",fake-missing=tests.no_such_module:Nothing"
)
