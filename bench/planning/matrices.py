"""Matrices: a name (or a user's .toml file) -> the list of Cases it runs, with command-line overrides.

Two kinds: a grid (models x adapters, the built-in speed matrices) and an explicit case list
(the `seeds` reference cases, user files), where each case carries its own adapter and training.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import adapters
from bench.core.errors import BenchInputError, choices_text
from bench.core.specs import CELLS, Case, ModelSpec, TrainSpec
from bench.planning.matrix_def import MatrixDef, check_case, check_unique
from bench.planning.matrix_file import load_matrix_file
from bench.planning.references import REFERENCE_DATASET, seeds_cases


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
    eval_every: int | None = None
    precision: str | None = None


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
        timeout_s=300,
        models=_grid(((32, 32),)),
        train=TrainSpec(batch_size=64, epochs=1, max_steps=30, warmup_steps=5),
    ),
    "full": MatrixDef(
        "full",
        "keras+torch x rnn/gru/lstm x uni/bi x 2x128 / 2x256 units, 5 epochs of batch 64",
        timeout_s=3600,
        models=_grid(((128, 128), (256, 256))),
        train=TrainSpec(batch_size=64, epochs=5, warmup_steps=10),
    ),
    "ci": MatrixDef(
        "ci",
        "keras+torch x rnn/gru/lstm, 2x64 units, 80 steps on synthetic data: the CI step-time gate",
        timeout_s=300,
        dataset="synthetic",
        models=_ci_models,
        # 2 epochs: the synthetic set holds 64 batches of 64, and the gate times 80 steps. No phase
        # split: the gate judges step time, and the split would cost each process another second.
        train=TrainSpec(batch_size=64, epochs=2, max_steps=80, warmup_steps=10, phase_rounds=0),
    ),
    "seeds": MatrixDef(
        "seeds",
        "the 11 reference cases A1-D3 of the Keras, PyTorch and TF 1.x tutorials, each exactly as published, "
        "reported figures beside ours; full MNIST if it is here, else mnist-5k",
        timeout_s=4 * 3600,  # A4 trains 9,370 BiLSTM steps on full MNIST
        dataset=REFERENCE_DATASET,
        cases=seeds_cases,
        dataset_fallback="mnist-5k",
    ),
}


def is_matrix_file(name: str) -> bool:
    return name.endswith(".toml") or ("/" in name and Path(name).is_file())


def get_matrix(name: str) -> MatrixDef:
    if is_matrix_file(name):
        return load_matrix_file(Path(name))
    if name not in MATRICES:
        raise BenchInputError(
            f"unknown matrix {name!r}; valid matrices: {choices_text(MATRICES)}, or the path of a .toml matrix file"
        )
    return MATRICES[name]


def _override_train(train: TrainSpec, o: Overrides) -> TrainSpec:
    changes = {k: v for k, v in (("epochs", o.epochs), ("batch_size", o.batch_size), ("seed", o.seed),
                                 ("eval_every", o.eval_every), ("precision", o.precision)) if v is not None}
    if o.max_steps is not None:
        changes["max_steps"] = o.max_steps
    elif o.epochs is not None:
        changes["max_steps"] = None  # --epochs alone means whole epochs
    return dataclasses.replace(train, **changes) if changes else train


def apply_overrides(mdef: MatrixDef, overrides: Overrides) -> list[Case]:
    """The matrix's cases with the command line applied; raises BenchInputError on what cannot run."""
    if overrides.adapters:
        for a in overrides.adapters:
            adapters.get_info(a)  # raises with the valid names
    if overrides.cells is not None:
        bad = [c for c in overrides.cells if c not in CELLS]
        if bad:
            raise BenchInputError(f"unknown cell {bad[0]!r}; valid cells: {choices_text(CELLS)}")
    base = mdef.base_cases(overrides.adapters)
    if mdef.cases is not None and overrides.adapters:  # a case list keeps its adapters: --adapters selects
        base = [c for c in base if c.adapter in overrides.adapters]
    if overrides.cells is not None:
        base = [c for c in base if c.model.cell in overrides.cells]
    if not base:
        have = sorted({(c.adapter, c.model.cell) for c in mdef.base_cases()})
        raise BenchInputError(
            f"matrix {mdef.name!r} has no case for the --adapters/--cells given; it has (adapter, cell): "
            + ", ".join(f"{a}/{c}" for a, c in have)
        )
    cases = []
    for c in base:
        case = dataclasses.replace(
            c,
            train=_override_train(c.train, overrides),
            dataset=overrides.dataset or c.dataset,
            device=overrides.device or c.device,
            init=overrides.init or c.init,
        )
        check_case(case, f"matrix {mdef.name!r}")
        cases.append(case)
    check_unique(cases, f"matrix {mdef.name!r}")
    return cases


def build_cases(name: str, overrides: Overrides = Overrides()) -> tuple[list[Case], MatrixDef]:
    """Expand matrix `name` into cases; bad names and unexpressible specs raise BenchInputError."""
    mdef = get_matrix(name)
    return apply_overrides(mdef, overrides), mdef
