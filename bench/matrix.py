"""Named matrices: a name -> the list of Cases it runs, with command-line overrides applied."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import adapters
from bench.errors import BenchInputError, choices_text
from bench.specs import CELLS, Case, ModelSpec, TrainSpec

DEFAULT_ADAPTERS = ("keras", "torch")


@dataclass(frozen=True)
class Overrides:
    """Command-line options that replace a matrix's own settings (None = keep the matrix's)."""

    adapters: tuple[str, ...] | None = None
    cells: tuple[str, ...] | None = None
    dataset: str | None = None
    epochs: int | None = None
    max_steps: int | None = None
    batch_size: int | None = None
    device: str | None = None
    seed: int | None = None
    init: str | None = None


@dataclass(frozen=True)
class MatrixDef:
    name: str
    description: str
    models: Callable[[], list[ModelSpec]]
    train: TrainSpec
    timeout_s: float  # per case
    dataset: str = "mnist-5k"


def _grid(unit_sizes: tuple[tuple[int, ...], ...]) -> Callable[[], list[ModelSpec]]:
    def models() -> list[ModelSpec]:
        return [
            ModelSpec(cell=cell, units=units, bidirectional=bi)
            for units, cell, bi in itertools.product(unit_sizes, CELLS, (False, True))
        ]

    return models


def _ci_models() -> list[ModelSpec]:
    return [ModelSpec(cell=cell, units=(64, 64)) for cell in CELLS]


MATRICES: dict[str, MatrixDef] = {
    "smoke": MatrixDef(
        "smoke",
        "keras+torch x rnn/gru/lstm x uni/bi, 2x32 units, 30 steps: checks every path quickly",
        _grid(((32, 32),)),
        TrainSpec(batch_size=64, epochs=1, max_steps=30, warmup_steps=5),
        timeout_s=300,
    ),
    "full": MatrixDef(
        "full",
        "keras+torch x rnn/gru/lstm x uni/bi x 2x128 / 2x256 units, 5 epochs of batch 64",
        _grid(((128, 128), (256, 256))),
        TrainSpec(batch_size=64, epochs=5, warmup_steps=10),
        timeout_s=3600,
    ),
    "ci": MatrixDef(
        "ci",
        "keras+torch x rnn/gru/lstm, 2x64 units, 80 steps on synthetic data: the CI step-time gate",
        _ci_models,
        TrainSpec(batch_size=64, epochs=1, max_steps=80, warmup_steps=10),
        timeout_s=300,
        dataset="synthetic",
    ),
}


def build_cases(name: str, overrides: Overrides = Overrides()) -> tuple[list[Case], MatrixDef]:
    """Expand matrix `name` into cases; bad names and unexpressible specs raise BenchInputError."""
    if name not in MATRICES:
        raise BenchInputError(f"unknown matrix {name!r}; valid matrices: {choices_text(MATRICES)}")
    mdef = MATRICES[name]
    adapter_names = overrides.adapters or DEFAULT_ADAPTERS
    for a in adapter_names:
        adapters.get_info(a)  # raises with the valid names
    train_changes = {
        k: v
        for k, v in (("epochs", overrides.epochs), ("batch_size", overrides.batch_size), ("seed", overrides.seed))
        if v is not None
    }
    if overrides.max_steps is not None:
        train_changes["max_steps"] = overrides.max_steps
    elif overrides.epochs is not None:
        train_changes["max_steps"] = None  # --epochs alone means whole epochs
    train = dataclasses.replace(mdef.train, **train_changes)
    cases = []
    if overrides.cells is not None:
        bad = [c for c in overrides.cells if c not in CELLS]
        if bad:
            raise BenchInputError(f"unknown cell {bad[0]!r}; valid cells: {choices_text(CELLS)}")
    models = [m for m in mdef.models() if overrides.cells is None or m.cell in overrides.cells]
    for model in models:
        for a in adapter_names:
            reason = adapters.get_info(a).unsupported_reason(model)
            if reason:
                raise BenchInputError(f"matrix {name!r}, adapter {a!r}, model {model.key!r}: {reason}")
            cases.append(
                Case(
                    adapter=a,
                    model=model,
                    train=train,
                    dataset=overrides.dataset or mdef.dataset,
                    device=overrides.device or "auto",
                    init=overrides.init or "framework",
                )
            )
    return cases, mdef
