"""The adapter contract: one agnostic spec in, one native model trained and measured out.

Every framework implements the same five abstract methods; the worker drives them in the same
order for every case, so adding a framework is one module and one registry line.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from bench.core.batching import BatchPlan
from bench.core.canonical import CanonicalWeights
from bench.core.dataset import Dataset
from bench.core.specs import ModelSpec, TrainSpec
from bench.core.timer import StepTimer


@dataclass(frozen=True)
class FitResult:
    """What `fit` reports; per-step times go through the harness's StepTimer, not here."""

    steps: int
    epochs: int
    train_loss: float  # mean training loss over the last epoch's batches
    train_accuracy: float  # mean training accuracy over the last epoch's batches
    diverged: bool = False  # a non-finite loss was seen; training stopped there
    first_loss: float = float("nan")  # loss of the first batch, before any update


@dataclass(frozen=True)
class EvalResult:
    loss: float  # mean cross-entropy over the whole test set
    accuracy: float


@dataclass(frozen=True)
class RuntimeInfo:
    """Facts about how the framework ran this case, recorded as columns."""

    framework: str
    framework_version: str
    backend: str  # e.g. "tensorflow 2.21.0" for Keras, "eager" for PyTorch
    compile_mode: str  # e.g. "tf.function", "xla", "eager"
    device_name: str  # e.g. "cpu", "cuda:0 (NVIDIA H100)"
    extra: dict[str, Any] = field(default_factory=dict)


def timed_loop(
    plan: BatchPlan,
    batch_size: int,
    timer: StepTimer,
    prepare: Callable[[np.ndarray], Any],
    step: Callable[[Any], Any],
    read: Callable[[Any], tuple[float, int, int]],
) -> FitResult:
    """The training loop of adapters that drive their own steps, with the same bookkeeping for all.

    For each batch of the plan's indices: `prepare(indices)` builds the batch (untimed), `step(batch)`
    trains on it between timer.start() and timer.stop() (the timer synchronizes the device), and
    `read(result)` turns the step's result into (loss, correct predictions, examples), untimed.
    """
    epochs, loss_sum, correct, seen, diverged, first_loss = 0, 0.0, 0, 0, False, math.nan
    for idx in plan.epochs_indices():
        epochs += 1
        loss_sum, correct, seen = 0.0, 0, 0
        for start in range(0, len(idx), batch_size):
            batch = prepare(idx[start : start + batch_size])
            timer.start()
            result = step(batch)
            timer.stop()
            loss, right, n = read(result)
            timer.after_step(loss)
            if timer.steps == 1:
                first_loss = loss
            loss_sum += loss * n
            correct += right
            seen += n
            if not math.isfinite(loss):
                diverged = True
                break
        if diverged:
            break
    return FitResult(
        steps=timer.steps,
        epochs=epochs,
        train_loss=loss_sum / seen if seen else math.nan,
        train_accuracy=correct / seen if seen else math.nan,
        diverged=diverged,
        first_loss=first_loss,
    )


class CaseUnavailable(RuntimeError):
    """The case cannot run on this machine with the installed framework (a kernel this CPU lacks, a
    framework defect a probe confirmed); recorded as `unavailable` with the reason, like a framework
    that is not installed."""


class PrecisionUnavailable(CaseUnavailable):
    """The case's precision cannot run here."""


class Adapter(ABC):
    """Translate specs into one framework's model and train it under the harness's timer."""

    name: ClassVar[str]

    @abstractmethod
    def setup(self, device: str, threads: int, seed: int) -> None:
        """Configure device, thread pools and seeds before anything is built."""

    def set_precision(self, precision: str) -> None:
        """Apply TrainSpec.precision before anything is built: fp32 (TF32 off), tf32 (TF32 on), bf16 /
        fp16 (mixed precision the framework's documented way, float32 weights). The setting in force is
        read back in runtime_info's extra["matmul_precision"]. Which precisions an adapter accepts is
        declared in its registry entry (adapters/__init__.py), so bad combinations fail before any work.
        """
        if precision not in ("fp32", "tf32"):
            raise PrecisionUnavailable(f"{self.name} runs in float32 only, not {precision}")

    @abstractmethod
    def build(self, model: ModelSpec, train: TrainSpec) -> Any:
        """Return a native model (compiled with Adam and cross-entropy on logits where applicable)."""

    @abstractmethod
    def fit(self, model: Any, data: Dataset, train: TrainSpec, plan: BatchPlan, timer: StepTimer) -> FitResult:
        """Train on the batches `plan` hands out, calling timer.start()/stop() around each step."""

    @abstractmethod
    def train_step(self, model: Any, train: TrainSpec) -> Callable[[np.ndarray, np.ndarray], float]:
        """A function that runs one synchronized training step on a numpy batch and returns its loss.

        Used by the micro-benchmarks and checks that need a single step outside `fit`.
        """

    @abstractmethod
    def evaluate(self, model: Any, data: Dataset, train: TrainSpec) -> EvalResult:
        """Loss and accuracy on the test split."""

    @abstractmethod
    def count_params(self, model: Any) -> int:
        """Total number of weights (trainable and not)."""

    @abstractmethod
    def runtime_info(self, model: Any) -> RuntimeInfo:
        """Framework, version, backend, compile mode and device actually used."""

    def sync(self) -> None:  # noqa: B027 (an optional hook, deliberately not abstract)
        """Wait for queued device work; the timer calls it before each clock read.

        The default does nothing: right for frameworks whose step returns a materialized
        result (the Keras adapter forces its loss to a Python float inside the step).
        """

    @abstractmethod
    def logits(self, model: Any, x: np.ndarray) -> np.ndarray:
        """Inference-mode logits for a numpy batch (dropout off)."""

    @abstractmethod
    def get_weights(self, model: Any) -> CanonicalWeights:
        """The model's weights in the canonical layout (bench/core/canonical.py)."""

    @abstractmethod
    def set_weights(self, model: Any, weights: CanonicalWeights) -> None:
        """Load canonical weights into the model (the same function in every framework)."""

    def weight_arrays(self, model: Any) -> dict[str, np.ndarray]:
        """Every weight array by name, for the learning check: the canonical arrays, unless the
        adapter's model has no canonical form (then its own names)."""
        return self.get_weights(model).arrays()

    def learning_rate_now(self, model: Any) -> float | None:
        """The learning rate the optimizer of the last `fit` would use for its next step (None if
        unknown); lets the contract tests check that TrainSpec's schedule is applied."""
        return None

    def keeps_recurrent_bias(self, cell: str) -> bool:
        """Whether the framework keeps a separate recurrent bias (b_hh) for this cell."""
        return True

    def phase_functions(
        self, model: Any, train: TrainSpec, x: np.ndarray, y: np.ndarray
    ) -> dict[str, Callable[[], Any]]:
        """Synchronized zero-argument callables on the batch (x, y) for the forward/backward/optimizer
        split, run after the main timing; the batch is moved to the device once, before any call.

        Keys: "forward" (forward pass and loss), "forward_backward" (plus gradients) and "step"
        (plus the optimizer update). The split is derived from differences of their medians, so
        no extra synchronization is inserted inside a step. Adapters that cannot split return {}.
        """
        return {}

    def inference_path(self, model: Any) -> str:
        """What `logits` runs: eager code or a compiled function (read back from the compiler where it can be),
        asked after the inference timing."""
        return "eager"

    def kernel_path(self, model: Any, x: np.ndarray, y: np.ndarray) -> str:
        """Which recurrent implementation runs (e.g. cuDNN, oneDNN, a generic step loop)."""
        return "unknown"

    def uses_gpu(self) -> bool:
        """Whether this case runs on a GPU (decided by `setup`); GPU meters run only then."""
        return False

    def allocator_peak_mb(self) -> float | None:
        """The framework allocator's own GPU peak in MB, or None where it has none (CPU)."""
        return None
