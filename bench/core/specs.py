"""What to benchmark: frozen, validated specs of a model, its training and a case.

The specs are framework-agnostic; every adapter translates the same `ModelSpec` into its own
layers, which is what makes a cross-framework comparison fair. Each spec validates itself on
construction, so a bad value fails before any process is spawned.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.core.errors import BenchInputError, choices_text

CELLS = ("rnn", "gru", "lstm")
GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # gate blocks per cell, in every framework
ACTIVATIONS = ("tanh", "relu")
OPTIMIZERS = ("adam", "sgd")  # sgd: plain, no momentum (used by the parity check)
# Learning rate at step k (k = 0 for the first update), with lr0 = learning_rate, r = lr_decay and
# s = lr_decay_steps:
#   constant       lr0
#   inverse-time   lr0 / (1 + r * k / s)   Keras 2's Adam(decay=r) with s = 1 (reference case D)
#   exponential    lr0 * r ** (k / s)      tf.compat.v1.train.exponential_decay (reference case C)
LR_SCHEDULES = ("constant", "inverse-time", "exponential")
DEVICES = ("auto", "cpu", "cuda")
INIT_SCHEMES = ("framework", "keras", "torch")
PHASE_ROUNDS = 8  # the forward/backward/optimizer split's interleaved rounds, where asked for (about 18 steps' time)
# fp32: float32 everywhere with TF32 off in every framework; tf32: TF32 on everywhere (GPUs from
# Ampere on; no effect on CPUs); bf16 / fp16: mixed precision (16-bit compute, float32 weights).
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
# Keras' compile(jit_compile=...): auto (Keras' own choice: XLA on JAX, on TF only where a GPU is; never on
# torch), on (XLA on TF and JAX, torch.compile on torch), off (tf.function on TF, eager JAX and torch).
# Adapters without such a switch accept only auto (adapters.AdapterInfo.jit_modes).
JIT_MODES = ("auto", "on", "off")
# How a 28x28 image becomes a sequence: rows (28 timesteps of 28 features, the tutorials' task), pixels
# (784 timesteps of 1: sequential MNIST as the research literature means it), permuted-pixels (784 x 1 in
# one fixed order, PERMUTATION_SEED: psMNIST). Synthetic data is random at any --timesteps x --features.
SEQUENCES = ("rows", "pixels", "permuted-pixels", "random")
IMAGE_SEQUENCES = {"rows": (28, 28), "pixels": (784, 1), "permuted-pixels": (784, 1)}  # (timesteps, features)
PERMUTATION_SEED = 1701  # the one permutation of psMNIST, recorded in every permuted row


def _fail(owner: str, name: str, value: Any, allowed: str) -> None:
    raise BenchInputError(f"{owner}.{name}: invalid value {value!r}; allowed: {allowed}")


def _check_choice(owner: str, name: str, value: Any, valid: tuple[str, ...]) -> None:
    if value not in valid:
        _fail(owner, name, value, choices_text(valid))


def _check_positive_int(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        _fail(owner, name, value, "a positive integer")


@dataclass(frozen=True)
class ModelSpec:
    """A stack of recurrent layers with a Dense head on the last timestep (logits, no softmax).

    `units` holds one entry per layer (they may differ). `dropout` holds one rate per layer,
    applied after that layer's output (0 = no Dropout layer), as reference case D does; a single
    number is broadcast to every layer.
    """

    cell: str
    units: tuple[int, ...]
    bidirectional: bool = False
    activation: str = "tanh"
    dropout: tuple[float, ...] | float = 0.0
    input_size: int = 28
    timesteps: int = 28
    num_classes: int = 10

    def __post_init__(self) -> None:
        owner = "ModelSpec"
        _check_choice(owner, "cell", self.cell, CELLS)
        _check_choice(owner, "activation", self.activation, ACTIVATIONS)
        units = (self.units,) if isinstance(self.units, int) else tuple(self.units)
        if not units:
            _fail(owner, "units", self.units, "one positive integer per layer, at least one layer")
        for u in units:
            _check_positive_int(owner, "units", u)
        object.__setattr__(self, "units", units)
        if not isinstance(self.bidirectional, bool):
            _fail(owner, "bidirectional", self.bidirectional, "True or False")
        dropout = self.dropout
        if isinstance(dropout, (int, float)) and not isinstance(dropout, bool):
            dropout = (float(dropout),) * len(units)
        dropout = tuple(float(d) for d in dropout)
        if len(dropout) != len(units):
            _fail(owner, "dropout", self.dropout, f"one rate per layer ({len(units)} layers) or one number")
        for d in dropout:
            if not (0.0 <= d < 1.0):
                _fail(owner, "dropout", self.dropout, "rates in [0, 1)")
        object.__setattr__(self, "dropout", dropout)
        for name in ("input_size", "timesteps", "num_classes"):
            _check_positive_int(owner, name, getattr(self, name))

    @property
    def layers(self) -> int:
        return len(self.units)

    @property
    def key(self) -> str:
        """A short, unique, human-readable name of the architecture, e.g. 'lstm-bi-128x2'."""
        u = self.units
        sizes = f"{u[0]}x{len(u)}" if len(set(u)) == 1 else "-".join(map(str, u))
        parts = [self.cell, "bi" if self.bidirectional else "uni", sizes]
        if self.activation != "tanh":
            parts.append(self.activation)
        if any(self.dropout):
            parts.append("do" + "-".join(f"{d:g}" for d in self.dropout))
        return "-".join(parts)


@dataclass(frozen=True)
class TrainSpec:
    """How to train: Adam (or plain SGD) on full mini-batches, for `epochs` or until `max_steps`.

    Every epoch trains on floor(N / batch_size) full batches in an order the harness draws from
    `seed` (the same order for every adapter); the partial last batch is dropped so that every
    timed step has the same shape in every framework.
    """

    batch_size: int = 64
    epochs: int = 1
    max_steps: int | None = None
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    adam_epsilon: float = 1e-7  # Keras' default; PyTorch's is 1e-8, so it is set in both
    seed: int = 0
    warmup_steps: int = 5
    eval_batch_size: int = 1000
    # rounds of the forward/backward/optimizer split after training (0 = skip, the default: it cost 2.3 s of
    # a `full` case's ~10 s outside its steps; matrices and --phases ask for it, PHASE_ROUNDS then)
    phase_rounds: int = 0
    lr_schedule: str = "constant"  # see LR_SCHEDULES
    lr_decay: float = 0.0
    lr_decay_steps: int = 1
    eval_every: int | None = None  # test-set evaluations for the accuracy curve: every N steps (None: each epoch)
    precision: str = "fp32"  # see PRECISIONS
    jit_compile: str = "auto"  # see JIT_MODES
    inference: bool = True  # time inference after training (bench/measure/inference.py); --no-inference skips

    def __post_init__(self) -> None:
        owner = "TrainSpec"
        _check_choice(owner, "precision", self.precision, PRECISIONS)
        _check_choice(owner, "jit_compile", self.jit_compile, JIT_MODES)
        if not isinstance(self.inference, bool):
            _fail(owner, "inference", self.inference, "true or false")
        _check_positive_int(owner, "batch_size", self.batch_size)
        _check_positive_int(owner, "epochs", self.epochs)
        _check_positive_int(owner, "eval_batch_size", self.eval_batch_size)
        if self.max_steps is not None:
            _check_positive_int(owner, "max_steps", self.max_steps)
        if self.eval_every is not None:
            _check_positive_int(owner, "eval_every", self.eval_every)
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            _fail(owner, "learning_rate", lr, "a finite number > 0")
        object.__setattr__(self, "learning_rate", float(lr))
        _check_choice(owner, "optimizer", self.optimizer, OPTIMIZERS)
        eps = self.adam_epsilon
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
            _fail(owner, "adam_epsilon", eps, "a finite number > 0")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            _fail(owner, "seed", self.seed, "an integer >= 0")
        if isinstance(self.phase_rounds, bool) or not isinstance(self.phase_rounds, int) or self.phase_rounds < 0:
            _fail(owner, "phase_rounds", self.phase_rounds, "an integer >= 0")
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            _fail(owner, "warmup_steps", self.warmup_steps, "an integer >= 0")
        _check_choice(owner, "lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _check_positive_int(owner, "lr_decay_steps", self.lr_decay_steps)
        rate = self.lr_decay
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate):
            _fail(owner, "lr_decay", rate, "a finite number")
        object.__setattr__(self, "lr_decay", float(rate))
        if self.lr_schedule == "constant" and rate != 0:
            _fail(owner, "lr_decay", rate, "0 with lr_schedule 'constant' (choose 'inverse-time' or 'exponential')")
        if self.lr_schedule == "inverse-time" and rate < 0:
            _fail(owner, "lr_decay", rate, "a number >= 0 for 'inverse-time'")
        if self.lr_schedule == "exponential" and not 0 < rate <= 1:
            _fail(owner, "lr_decay", rate, "a rate in (0, 1] for 'exponential'")

    def lr_factor(self, step: int) -> float:
        """learning rate at `step` / learning_rate (the schedule, framework-free; see LR_SCHEDULES)."""
        k = step / self.lr_decay_steps
        if self.lr_schedule == "inverse-time":
            return 1.0 / (1.0 + self.lr_decay * k)
        if self.lr_schedule == "exponential":
            return self.lr_decay**k
        return 1.0

    def learning_rate_at(self, step: int) -> float:
        return self.learning_rate * self.lr_factor(step)

    def planned_steps(self, train_size: int) -> int:
        """Steps this spec trains for on `train_size` examples (full batches only)."""
        per_epoch = train_size // self.batch_size
        total = per_epoch * self.epochs
        return total if self.max_steps is None else min(total, self.max_steps)


@dataclass(frozen=True)
class Case:
    """One benchmark cell: which adapter trains which model, how, on what data, where."""

    adapter: str
    model: ModelSpec
    train: TrainSpec = field(default_factory=TrainSpec)
    dataset: str = "mnist-5k"
    device: str = "auto"
    threads: int | None = None
    init: str = "framework"  # framework: each its own defaults; keras / torch: one scheme in every adapter
    label: str = ""  # a name for the case, e.g. reference case "A1"; part of case_id when set
    sequence: str = "rows"  # see SEQUENCES; the model's timesteps x input_size follow it for images
    sweep_axes: tuple[str, ...] = ()  # the sweeps this case is a point of (its centre belongs to several)

    def __post_init__(self) -> None:
        if not isinstance(self.adapter, str) or not self.adapter:
            _fail("Case", "adapter", self.adapter, "an adapter name")
        if not isinstance(self.label, str) or not all(c.isalnum() or c in "-_." for c in self.label):
            _fail("Case", "label", self.label, "letters, digits, '-', '_' or '.'")
        _check_choice("Case", "device", self.device, DEVICES)
        _check_choice("Case", "init", self.init, INIT_SCHEMES)
        if self.threads is not None:
            _check_positive_int("Case", "threads", self.threads)
        _check_choice("Case", "sequence", self.sequence, SEQUENCES)
        shape = IMAGE_SEQUENCES.get(self.sequence)
        if shape is not None and (self.model.timesteps, self.model.input_size) != shape:
            _fail("Case", "model", f"{self.model.timesteps}x{self.model.input_size}",
                  f"{shape[0]} timesteps x {shape[1]} features for sequence {self.sequence!r}")
        object.__setattr__(self, "sweep_axes", tuple(self.sweep_axes))

    @property
    def case_id(self) -> str:
        """Stable identity used to match cases across runs (resume, compare)."""
        t = self.train
        init = "" if self.init == "framework" else f"/init-{self.init}"
        init += "" if t.precision == "fp32" else f"/{t.precision}"
        init += "" if t.jit_compile == "auto" else f"/jit-{t.jit_compile}"
        label = f"{self.label}:" if self.label else ""
        return f"{label}{self.adapter}/{self.model.key}/b{t.batch_size}/{self.dataset}{self.shape_part}/s{t.seed}{init}"

    @property
    def shape_part(self) -> str:
        """The case id's sequence part: '' for the 28x28 default, '/pixels', '/t112x28' (synthetic)."""
        if self.sequence in ("pixels", "permuted-pixels"):
            return f"/{self.sequence}"
        m = self.model
        return "" if (m.timesteps, m.input_size) == (28, 28) else f"/t{m.timesteps}x{m.input_size}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Case:
        d = dict(d)
        raw_model = dict(d.pop("model"))
        raw_model["units"] = tuple(raw_model["units"])
        raw_model["dropout"] = tuple(raw_model["dropout"])
        d["sweep_axes"] = tuple(d.get("sweep_axes", ()))
        return cls(model=ModelSpec(**raw_model), train=TrainSpec(**d.pop("train")), **d)
