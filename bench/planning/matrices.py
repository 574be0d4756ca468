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
from bench import data
from bench.core.errors import BenchInputError, choices_text
from bench.core.specs import CELLS, IMAGE_SEQUENCES, PHASE_ROUNDS, Case, ModelSpec, TrainSpec
from bench.planning.matrix_def import MatrixDef, check_case, check_unique
from bench.planning.matrix_file import load_matrix_file
from bench.planning.references import REFERENCE_DATASET, seeds_cases
from bench.planning.sweep import Sweep, check_size, expand


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
    seeds: tuple[int, ...] | None = None  # run every case once per seed (seeds outermost)
    init: str | None = None
    eval_every: int | None = None
    precision: str | None = None
    jit_compile: tuple[str, ...] | None = None  # one case per mode (Keras' compile switch)
    sequence: str | None = None  # images: rows, pixels or permuted-pixels
    timesteps: int | None = None  # synthetic data's shape
    features: int | None = None
    sweeps: tuple[Sweep, ...] | None = None  # replace the matrix's own sweeps
    confirmed: bool = False  # --yes: a plan of more than sweep.MAX_CASES cases may run
    phases: bool | None = None  # True: the forward/backward/optimizer split after training
    inference: bool | None = None  # False: no inference phase


def _grid(unit_sizes: tuple[tuple[int, ...], ...]) -> Callable[[], list[ModelSpec]]:
    def models() -> list[ModelSpec]:
        return [
            ModelSpec(cell=cell, units=units, bidirectional=bi)
            for units, cell, bi in itertools.product(unit_sizes, CELLS, (False, True))
        ]

    return models


def _ci_models() -> list[ModelSpec]:
    return [ModelSpec(cell=cell, units=(64, 64)) for cell in CELLS]


_converge_models = _ci_models  # the same three 2x64 models, trained on real labels


def _scaling_models() -> list[ModelSpec]:
    return [ModelSpec(cell=cell, units=(64,)) for cell in CELLS]


MATRICES: dict[str, MatrixDef] = {
    "smoke": MatrixDef(
        "smoke",
        "keras+torch x rnn/gru/lstm x uni/bi, 2x32 units, 30 steps: checks every path quickly",
        timeout_s=300,
        models=_grid(((32, 32),)),
        # the quick check of every path: the phase split and inference included
        train=TrainSpec(batch_size=64, epochs=1, max_steps=30, warmup_steps=5, phase_rounds=PHASE_ROUNDS),
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
        # 2 epochs: the synthetic set holds 64 batches of 64, and the gate times 80 steps. No phase split
        # and no inference: the gate judges step time, and either would cost each process seconds.
        train=TrainSpec(batch_size=64, epochs=2, max_steps=80, warmup_steps=10, inference=False),
    ),
    "converge": MatrixDef(
        "converge",
        "keras+torch x rnn/gru/lstm, 2x64 units, 2 epochs of batch 64 with a curve point every 12 steps: the "
        "models `bench converge` compares (with --init keras and 3 seeds)",
        timeout_s=900,
        # 124 steps: the curves leave chance and flatten (2x64 models reach 70-90% on mnist-5k); 11 points
        # each; no phase split (the check is about learning, not a step's parts)
        models=_converge_models,
        train=TrainSpec(batch_size=64, epochs=2, eval_every=12, warmup_steps=5, inference=False),
    ),
    "scaling": MatrixDef(
        "scaling",
        "keras+torch x rnn/gru/lstm, one layer, swept one axis at a time around 64 units, 28 timesteps, batch 64: "
        "units 32..1024, timesteps 7..224, batch 16..512; 30 steps each on synthetic data: cost curves and crossovers",
        timeout_s=600,
        dataset="synthetic",
        models=_scaling_models,
        # 30 steps: 5 warm-up and 25 timed, enough for a median; 4 epochs hold 30 steps at batch 512
        train=TrainSpec(batch_size=64, epochs=4, max_steps=30, warmup_steps=5, inference=False),
        # six points a side: the largest three are where the FLOP model's exponents are compared
        sweeps=(Sweep("units", (32, 64, 128, 256, 512, 1024)), Sweep("timesteps", (7, 14, 28, 56, 112, 224)),
                Sweep("batch_size", (16, 32, 64, 128, 256, 512))),
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
                                 ("eval_every", o.eval_every), ("precision", o.precision),
                                 ("inference", o.inference)) if v is not None}
    if o.phases:
        changes["phase_rounds"] = PHASE_ROUNDS
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
        dataset = overrides.dataset or c.dataset
        sequence, model = _shape(c, dataset, overrides, mdef)
        case = dataclasses.replace(
            c,
            model=model,
            sequence=sequence,
            train=_override_train(c.train, overrides),
            dataset=dataset,
            device=overrides.device or c.device,
            init=overrides.init or c.init,
        )
        check_case(case, f"matrix {mdef.name!r}")
        cases.append(case)
    sweeps = mdef.sweeps if overrides.sweeps is None else overrides.sweeps
    if sweeps:
        if any(s.axis == "timesteps" for s in sweeps) and any(c.sequence != "random" for c in cases):
            raise BenchInputError("--sweep timesteps: images have a fixed length (rows 28, pixels 784); sweep "
                                  "timesteps on --dataset synthetic, or compare --sequence rows and pixels")
        cases = expand(cases, sweeps)
        for case in cases:
            check_case(case, f"matrix {mdef.name!r}")
    if overrides.jit_compile:  # each case once per mode, side by side: what the compile break-even pairs
        cases = _per_jit_mode(cases, overrides.jit_compile, mdef.name)
    if overrides.seeds:
        # seeds outermost: an interrupted run holds whole seeds of every case, not every seed of a few
        cases = [dataclasses.replace(c, train=dataclasses.replace(c.train, seed=s)) for s in overrides.seeds
                 for c in cases]
    check_unique(cases, f"matrix {mdef.name!r}")
    check_size(cases, overrides.confirmed)
    return cases


def _shape(case: Case, dataset: str, o: Overrides, mdef: MatrixDef) -> tuple[str, ModelSpec]:
    """The case's sequence and its model's timesteps x features on `dataset`: an image dataset is read as
    its sequence (rows, pixels, permuted-pixels: fixed shapes); synthetic data is random at any shape."""
    images = data.get_info(dataset).has_labels
    if images:
        if o.timesteps is not None or o.features is not None:
            raise BenchInputError(f"--timesteps/--features shape synthetic data; dataset {dataset!r} holds 28x28 images, "
                                  f"read as --sequence {' | '.join(IMAGE_SEQUENCES)} "
                                  f"({', '.join(f'{s}: {t}x{f}' for s, (t, f) in IMAGE_SEQUENCES.items())})")
        sequence = o.sequence or mdef.sequence or (case.sequence if case.sequence in IMAGE_SEQUENCES else "rows")
        timesteps, features = IMAGE_SEQUENCES[sequence]
    else:
        if o.sequence not in (None, "random"):
            raise BenchInputError(f"--sequence {o.sequence!r} reads images; dataset {dataset!r} is random data: "
                                  "shape it with --timesteps T --features F (default 28 x 28)")
        sequence = "random"
        timesteps = o.timesteps or case.model.timesteps
        features = o.features or case.model.input_size
    return sequence, dataclasses.replace(case.model, timesteps=timesteps, input_size=features)


def _per_jit_mode(cases: list[Case], modes: tuple[str, ...], matrix: str) -> list[Case]:
    """Each case of an adapter with Keras' compile switch once per mode; the others once, as they are."""
    switchable = [c for c in cases if set(modes) <= set(adapters.get_info(c.adapter).jit_modes)]
    if not switchable:
        names = ", ".join(dict.fromkeys(c.adapter for c in cases))
        with_switch = ", ".join(n for n, i in adapters.registry().items() if len(i.jit_modes) > 1)
        raise BenchInputError(f"--jit-compile {','.join(modes)}: none of the adapters of matrix {matrix!r} ({names}) has "
                              f"that compile switch; adapters that do: {with_switch}")
    out = []
    for c in cases:
        if c in switchable:
            out += [dataclasses.replace(c, train=dataclasses.replace(c.train, jit_compile=m)) for m in modes]
        else:
            out.append(c)
    return out


def build_cases(name: str, overrides: Overrides = Overrides()) -> tuple[list[Case], MatrixDef]:
    """Expand matrix `name` into cases; bad names and unexpressible specs raise BenchInputError."""
    mdef = get_matrix(name)
    return apply_overrides(mdef, overrides), mdef
