"""Adapter registry: name -> where the class lives, imported only inside a case's process.

`bench/` never imports a framework. It asks this registry which adapters exist, whether their
packages are installed (without importing them), and whether a model spec is expressible in
that framework, so bad input fails before any process starts.

Extra adapters (plugins, test doubles) can be registered with the environment variable
RNNBENCH_ADAPTERS="name=package.module:Class[,name2=...]"; child processes inherit it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.core.errors import BenchInputError, choices_text
from bench.core.specs import PRECISIONS, ModelSpec


def _torch_check(model: ModelSpec) -> str | None:
    if model.cell in ("gru", "lstm") and model.activation != "tanh":
        return (
            f"PyTorch's nn.{model.cell.upper()} has a fixed tanh activation; "
            f"activation={model.activation!r} exists only for cell 'rnn' in PyTorch"
        )
    return None


def _tf1_noncanonical(model: ModelSpec) -> str | None:
    if model.cell == "gru":
        return ("TF 1.x GRUCell applies the reset gate before its recurrent matmul (Keras' reset_after=False), "
                "PyTorch and Keras after it: a different function, so it has no canonical weights")
    return None


def _keras_torch_defect() -> str | None:
    from importlib.metadata import version

    v = version("keras")
    major_minor = tuple(int(p) for p in v.split(".")[:2] if p.isdigit())
    if (3, 10) <= major_minor < (3, 14):
        return (f"keras {v} on the torch backend detaches the cuDNN LSTM's outputs, so LSTM weights do not "
                "train on GPUs (fixed in 3.14); the learning check marks such rows not-learning")
    return None


@dataclass(frozen=True)
class AdapterInfo:
    name: str
    target: str  # "module:Class"
    requires: tuple[str, ...]  # import names that must be installed
    description: str
    env: dict[str, str] = field(default_factory=dict)  # set in the case's process before import
    check: Callable[[ModelSpec], str | None] | None = None  # why a spec is not expressible
    defect: Callable[[], str | None] | None = None  # a known defect of the installed version, if any
    # why a spec's weights have no canonical form (bench/core/canonical.py): it is a different function,
    # so parity cannot compare it and --init keras|torch cannot load it
    noncanonical: Callable[[ModelSpec], str | None] | None = None
    precisions: tuple[str, ...] = PRECISIONS  # the TrainSpec.precision values the adapter implements
    # the adapter that trains the same model the same way without compiling it: the baseline of the
    # compile break-even (bench/stats/break_even.py)
    eager: str | None = None
    # the TrainSpec.jit_compile values it implements: Keras' switch, where the adapter has one
    jit_modes: tuple[str, ...] = ("auto",)

    def jit_reason(self, mode: str) -> str | None:
        if mode in self.jit_modes:
            return None
        return f"jit_compile {mode!r}: {self.name} has no such switch; it supports: {', '.join(self.jit_modes)}"

    def precision_reason(self, precision: str) -> str | None:
        if precision in self.precisions:
            return None
        return f"precision {precision!r} is not supported by {self.name}; it supports: {', '.join(self.precisions)}"

    def unsupported_reason(self, model: ModelSpec) -> str | None:
        return self.check(model) if self.check else None

    def noncanonical_reason(self, model: ModelSpec) -> str | None:
        return self.noncanonical(model) if self.noncanonical else None


BUILTIN: dict[str, AdapterInfo] = {
    "keras": AdapterInfo(
        "keras",
        "adapters.keras_adapter:KerasAdapter",
        ("keras", "tensorflow"),
        "Keras 3 on the TensorFlow backend, trained with model.fit",
        env={"KERAS_BACKEND": "tensorflow"},
        jit_modes=("auto", "on", "off"),
    ),
    "torch": AdapterInfo(
        "torch",
        "adapters.torch_adapter:TorchAdapter",
        ("torch",),
        "PyTorch eager: nn.RNN / nn.GRU / nn.LSTM, hand-written training loop",
        check=_torch_check,
    ),
    "keras-jax": AdapterInfo(
        "keras-jax",
        "adapters.keras_adapter:KerasAdapter",
        ("keras", "jax"),
        "Keras 3 on the JAX backend (same adapter code, KERAS_BACKEND=jax in its process)",
        env={"KERAS_BACKEND": "jax", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"},  # no whole-card reservation
        jit_modes=("auto", "on", "off"),
    ),
    "keras-torch": AdapterInfo(
        "keras-torch",
        "adapters.keras_adapter:KerasAdapter",
        ("keras", "torch"),
        "Keras 3 on the PyTorch backend (same adapter code, KERAS_BACKEND=torch in its process)",
        env={"KERAS_BACKEND": "torch"},
        defect=_keras_torch_defect,
        jit_modes=("auto", "on", "off"),
    ),
    "torch-compile": AdapterInfo(
        "torch-compile",
        "adapters.torch_adapter:TorchCompileAdapter",
        ("torch",),
        "PyTorch with torch.compile (inductor); Dynamo's default leaves RNN modules eager",
        check=_torch_check,
        eager="torch",
    ),
    "torch-compile-rnn": AdapterInfo(
        "torch-compile-rnn",
        "adapters.torch_adapter:TorchCompileRnnAdapter",
        ("torch",),
        "PyTorch with torch.compile and torch._dynamo.config.allow_rnn=True (RNN modules traced)",
        check=_torch_check,
        eager="torch",
    ),
    "tf1-graph": AdapterInfo(
        "tf1-graph",
        "adapters.tf1_adapter:Tf1GraphAdapter",
        ("tensorflow", "tf_keras"),
        "TensorFlow 1.x graph mode (tf.compat.v1): placeholders, v1 cells unrolled by static_rnn, Session.run",
        env={"TF_USE_LEGACY_KERAS": "1"},  # the v1 cells live in tf-keras; this case's process only
        noncanonical=_tf1_noncanonical,
        precisions=("fp32", "tf32"),  # TF 1.x graphs have no mixed-precision policy
    ),
}


def _extra_adapters() -> dict[str, AdapterInfo]:
    raw = os.environ.get("RNNBENCH_ADAPTERS", "").strip()
    extra = {}
    for item in filter(None, (s.strip() for s in raw.split(","))):
        name, sep, target = item.partition("=")
        if not sep or ":" not in target:
            raise BenchInputError(f"RNNBENCH_ADAPTERS entry {item!r} is not of the form name=module:Class")
        extra[name] = AdapterInfo(name, target, (), f"extra adapter {target}", precisions=("fp32", "tf32"))
    return extra


def registry() -> dict[str, AdapterInfo]:
    return {**BUILTIN, **_extra_adapters()}


def names() -> list[str]:
    return list(registry())


def get_info(name: str) -> AdapterInfo:
    reg = registry()
    if name not in reg:
        raise BenchInputError(f"unknown adapter {name!r}; valid adapters: {choices_text(reg)}")
    return reg[name]


def availability(name: str) -> tuple[bool, str]:
    """Whether the adapter's packages are installed here, checked without importing them."""
    info = get_info(name)
    missing = [pkg for pkg in info.requires if importlib.util.find_spec(pkg) is None]
    if missing:
        return False, f"not installed: {', '.join(missing)} (pip install 'rnnbench[{name}]')"
    defect = info.defect() if info.defect else None
    return True, f"installed; warning: {defect}" if defect else "installed"


def load(name: str):
    """Import the adapter's module and return an instance; raises ImportError if not installed."""
    info = get_info(name)
    for key, value in info.env.items():
        os.environ.setdefault(key, value)
    module_name, _, class_name = info.target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)()
