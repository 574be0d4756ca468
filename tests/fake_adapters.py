"""Framework-free adapters for testing the harness's failure paths in real child processes.

Registered through RNNBENCH_ADAPTERS (see tests/conftest.py), so the worker loads them by name
exactly as it loads the real ones.
"""

from __future__ import annotations

import os
import time

import numpy as np

from adapters.base import Adapter, EvalResult, FitResult, RuntimeInfo
from bench.core.canonical import CanonicalWeights, torch_scheme


class OkAdapter(Adapter):
    """Trains nothing, but drives the timer through every planned step like a real adapter."""

    name = "fake-ok"
    loss = 1.0
    step_s = 0.001
    cold_steps = 0  # steps left that pay for the last evaluation (ColdAfterEvalAdapter)
    cold_s = 0.02  # how long each of those steps takes

    def setup(self, device, threads, seed):
        self.threads = threads

    moves_weights = True

    def build(self, model, train):
        return {"spec": model, "weights": torch_scheme(model, 0)}

    def fit(self, model, data, train, plan, timer):
        if self.moves_weights:
            w = model["weights"]
            model["weights"] = CanonicalWeights.from_arrays(model["spec"], {k: v + 0.01 for k, v in w.arrays().items()})
        epochs = 0
        for idx in plan.epochs_indices():
            epochs += 1
            for _ in range(len(idx) // train.batch_size):
                timer.start()
                time.sleep(self.step_s if self.cold_steps <= 0 else self.cold_s)
                self.during_step(timer.steps)
                timer.stop()
                self.cold_steps -= 1
                timer.after_step(self.loss)
        diverged = self.loss != self.loss
        return FitResult(steps=timer.steps, epochs=epochs, train_loss=self.loss, train_accuracy=0.5, diverged=diverged)

    def during_step(self, index):
        """Called inside each timed step (index from 0): where a double spends what a step would."""

    def train_step(self, model, train):
        return lambda x, y: self.loss

    def evaluate(self, model, data, train):
        return EvalResult(loss=self.loss, accuracy=0.25)

    def logits(self, model, x):
        return np.zeros((len(x), 10), dtype=np.float32)

    def get_weights(self, model):
        return CanonicalWeights.from_arrays(model["spec"], {k: v.copy() for k, v in model["weights"].arrays().items()})

    def set_weights(self, model, weights):
        model["weights"] = weights

    def count_params(self, model):
        return 42

    def runtime_info(self, model):
        return RuntimeInfo("fake", "0.0", "none", "eager", "cpu", {"threads": self.threads})


class ColdAfterEvalAdapter(OkAdapter):
    """Each evaluation (a `logits` call) leaves the next two steps slow, as a real framework's
    caches and thread pools would: at least 20 ms each, against 1 ms."""

    name = "fake-cold"

    def logits(self, model, x):
        self.cold_steps = 2
        return super().logits(model, x)


class GpuAdapter(OkAdapter):
    """Pretends to train on a GPU, so the NVML meters run (against a fake NVML in the tests)."""

    name = "fake-gpu"

    def uses_gpu(self):
        return True


class EnergyGpuAdapter(GpuAdapter):
    """A GPU case whose every joule is known: step 0 (compilation) costs 100 J, each later step 1 J and
    each curve evaluation 50 J, on the fake NVML a test hands it (`nvml`)."""

    name = "fake-gpu-energy"
    nvml = None

    def during_step(self, index):
        self.nvml.energy_mj += 100_000 if index == 0 else 1_000

    def logits(self, model, x):
        self.nvml.energy_mj += 50_000
        return super().logits(model, x)


class NanAdapter(OkAdapter):
    name = "fake-nan"
    loss = float("nan")


class FrozenAdapter(OkAdapter):
    """Trains without ever changing a weight: the detached-output bug in miniature."""

    name = "fake-frozen"
    moves_weights = False


class CrashAdapter(OkAdapter):
    """Dies the way a segfaulting extension does: no Python exception, no result file."""

    name = "fake-crash"

    def fit(self, model, data, train, plan, timer):
        print("about to crash hard", flush=True)
        os._exit(3)


class SlowAdapter(OkAdapter):
    """Half a second a step: long enough to watch its progress, or to kill something mid-case."""

    name = "fake-slow"
    step_s = 0.5


class HangAdapter(OkAdapter):
    name = "fake-hang"

    def build(self, model, train):  # every path (a case, parity) builds first
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
    "fake-frozen": "FrozenAdapter",
    "fake-crash": "CrashAdapter",
    "fake-hang": "HangAdapter",
    "fake-slow": "SlowAdapter",
    "fake-raise": "RaiseAdapter",
    "fake-oom": "OomAdapter",
    "fake-gpu": "GpuAdapter",
    "fake-gpu-energy": "EnergyGpuAdapter",
    "fake-cold": "ColdAfterEvalAdapter",
}
ENV_VALUE = ",".join(f"{name}=tests.fake_adapters:{cls}" for name, cls in FAKES.items()) + (
    ",fake-missing=tests.no_such_module:Nothing"
)
