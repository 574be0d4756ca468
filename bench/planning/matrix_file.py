"""User matrices: `python -m bench run --matrix my.toml`. The format is documented in
examples/matrix.toml; every error names the file, the key (and the line, for TOML syntax errors)
and the valid values, before any work starts.

    description = "..."          # optional
    dataset = "mnist-5k"         # one dataset per run (default mnist-5k)
    timeout_s = 600              # per case (default 3600)

    [train]                      # defaults for every case: any TrainSpec field
    batch_size = 64

    [grid]                       # cases = the product of these lists
    adapters = ["keras", "torch"]
    cells = ["gru", "lstm"]
    units = [64, 128]            # one width per model ...
    layers = [1, 2]              # ... times these depths; or units = [[256, 128], [64]] (a list per model)
    bidirectional = [false, true]
    activation = ["tanh"]        # optional, as are dropout and batch_size
    dropout = [0.0]

    sequence = "rows"            # images: rows (default), pixels or permuted-pixels

    [sweep]                      # optional: each case once per value, one axis at a time
    units = "32..512"            # a doubling range, "32..512/5" (5 points), or a list [32, 64, 128]

    [[case]]                     # and/or explicit cases, each complete
    label = "wide-lstm"          # optional; needed when two cases share adapter/model/batch/seed
    adapter = "torch"
    model = { cell = "lstm", units = [256, 256], bidirectional = true }
    train = { learning_rate = 2e-3 }   # over [train]
    init = "keras"               # optional: framework (default), keras or torch
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import adapters
from bench import data
from bench.core.errors import BenchInputError, choices_text
from bench.core.specs import IMAGE_SEQUENCES, Case, ModelSpec, TrainSpec
from bench.planning.matrix_def import MatrixDef, check_case, check_unique
from bench.planning.sweep import AXES, Sweep, parse_sweep

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TOP_KEYS = ("description", "dataset", "timeout_s", "train", "grid", "case", "sequence", "sweep")
GRID_KEYS = ("adapters", "cells", "units", "layers", "bidirectional", "activation", "dropout", "batch_size")
CASE_KEYS = ("label", "adapter", "model", "train", "init")
MODEL_KEYS = tuple(f.name for f in fields(ModelSpec))
TRAIN_KEYS = tuple(f.name for f in fields(TrainSpec))
DEFAULT_TIMEOUT_S = 3600.0


class _File:
    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, where: str, message: str) -> BenchInputError:
        return BenchInputError(f"{self.path}: {where}: {message}")

    def check_keys(self, table: Any, valid: tuple[str, ...], where: str) -> dict:
        if not isinstance(table, dict):
            raise self.error(where, f"expected a table, got {type(table).__name__} {table!r}")
        for key in table:
            if key not in valid:
                raise self.error(where, f"unknown key {key!r}; valid keys: {choices_text(valid)}")
        return table

    def spec(self, cls, values: dict, where: str):
        try:
            return cls(**values)
        except BenchInputError as exc:
            raise self.error(where, str(exc)) from None
        except TypeError as exc:  # e.g. a list where a number belongs
            raise self.error(where, f"{exc}") from None


def load_matrix_file(path: Path) -> MatrixDef:
    f = _File(path)
    if not path.is_file():
        raise BenchInputError(f"--matrix {str(path)!r}: no such file (a matrix file is a .toml path; see examples/matrix.toml)")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:  # its message carries the line and column
        raise BenchInputError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise BenchInputError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    f.check_keys(doc, TOP_KEYS, "top level")
    dataset = doc.get("dataset", data.DEFAULT_DATASET)
    if dataset not in data.DATASETS:
        raise f.error("dataset", f"invalid value {dataset!r}; valid datasets: {choices_text(data.DATASETS)}")
    timeout = doc.get("timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
        raise f.error("timeout_s", f"invalid value {timeout!r}; allowed: a positive number of seconds")
    description = doc.get("description", f"user matrix {path.name}")
    if not isinstance(description, str):
        raise f.error("description", f"invalid value {description!r}; allowed: a string")
    train_defaults = f.check_keys(doc.get("train", {}), TRAIN_KEYS, "[train]")
    base_train = f.spec(TrainSpec, train_defaults, "[train]")
    images = data.get_info(dataset).has_labels
    sequence = doc.get("sequence", "rows" if images else "random")
    if images and sequence not in IMAGE_SEQUENCES:
        raise f.error("sequence", f"invalid value {sequence!r}; valid sequences: {choices_text(IMAGE_SEQUENCES)}")
    if not images and sequence != "random":
        raise f.error("sequence", f"dataset {dataset!r} is random data: shape it with each model's timesteps and "
                      "input_size instead")
    sweeps = _sweeps(f, f.check_keys(doc.get("sweep", {}), AXES, "[sweep]"))

    cases: list[Case] = []
    if "grid" in doc:
        cases += _grid_cases(f, f.check_keys(doc["grid"], GRID_KEYS, "[grid]"), base_train, dataset)
    raw_cases = doc.get("case", [])
    if not isinstance(raw_cases, list):
        raise f.error("case", "declare cases as [[case]] tables")
    for i, raw in enumerate(raw_cases, 1):
        cases.append(_explicit_case(f, raw, i, train_defaults, dataset))
    if not cases:
        raise f.error("top level", "declares no cases: add a [grid] table or [[case]] tables")
    cases = [_sequenced(f, c, sequence, i) for i, c in enumerate(cases, 1)]
    for i, case in enumerate(cases, 1):
        check_case(case, f"{path}: case {i}")
    check_unique(cases, str(path))
    frozen = tuple(cases)
    return MatrixDef(path.stem, description, float(timeout), dataset=dataset, cases=lambda: list(frozen),
                     origin=str(path), sweeps=sweeps, sequence=sequence if images else None)


def _sequenced(f: _File, case: Case, sequence: str, i: int) -> Case:
    """The case read as the file's sequence (images: the sequence's shape; random data: the model's own)."""
    from dataclasses import replace

    shape = IMAGE_SEQUENCES.get(sequence)
    model = replace(case.model, timesteps=shape[0], input_size=shape[1]) if shape else case.model
    try:
        return replace(case, model=model, sequence=sequence)
    except BenchInputError as exc:
        raise f.error(f"case {i}", str(exc)) from None


def _sweeps(f: _File, table: dict) -> tuple[Sweep, ...]:
    out = []
    for axis, value in table.items():
        text = f"{axis}={value}" if isinstance(value, str) else f"{axis}=" + ",".join(map(str, value if isinstance(value, list) else [value]))
        try:
            out.append(parse_sweep(text))
        except BenchInputError as exc:
            raise f.error(f"[sweep] {axis}", str(exc).removeprefix(f"--sweep {text!r}: ")) from None
    return tuple(out)


def _as_list(f: _File, grid: dict, key: str, default: list | None) -> list:
    if key not in grid:
        if default is None:
            raise f.error("[grid]", f"missing key {key!r} (required: adapters, cells, units)")
        return default
    value = grid[key]
    values = value if isinstance(value, list) else [value]
    if not values:
        raise f.error(f"[grid] {key}", "empty list: give at least one value")
    return values


def _known_adapter(f: _File, name: Any, where: str) -> None:
    try:
        adapters.get_info(name)  # its error names the valid adapters
    except BenchInputError as exc:
        raise f.error(where, str(exc)) from None


def _grid_cases(f: _File, grid: dict, train: TrainSpec, dataset: str) -> list[Case]:
    adapter_names = _as_list(f, grid, "adapters", None)
    for a in adapter_names:
        _known_adapter(f, a, "[grid] adapters")
    units = _as_list(f, grid, "units", None)
    per_model = all(isinstance(u, list) for u in units)
    if per_model and "layers" in grid:
        raise f.error("[grid] layers", "give either units as one list per model, or units as widths with layers")
    if not per_model and any(isinstance(u, list) for u in units):
        raise f.error("[grid] units", f"invalid value {units!r}; allowed: widths ([64, 128]) or one list per model ([[64], [128, 128]])")
    layers = _as_list(f, grid, "layers", [1])
    shapes = [tuple(u) for u in units] if per_model else [(u,) * n for u in units for n in layers]
    axes = [
        _as_list(f, grid, "cells", None),
        shapes,
        _as_list(f, grid, "bidirectional", [False]),
        _as_list(f, grid, "activation", ["tanh"]),
        _as_list(f, grid, "dropout", [0.0]),
        _as_list(f, grid, "batch_size", [train.batch_size]),
    ]
    cases = []
    for cell, shape, bi, act, drop, batch in itertools.product(*axes):
        where = f"[grid] cell={cell!r} units={list(shape)} bidirectional={bi!r} activation={act!r} dropout={drop!r}"
        model = f.spec(ModelSpec, {"cell": cell, "units": shape, "bidirectional": bi, "activation": act,
                                   "dropout": drop}, where)
        case_train = f.spec(TrainSpec, {**asdict(train), "batch_size": batch}, f"[grid] batch_size={batch!r}")
        cases += [Case(adapter=a, model=model, train=case_train, dataset=dataset) for a in adapter_names]
    return cases


def _explicit_case(f: _File, raw: Any, i: int, train_defaults: dict, dataset: str) -> Case:
    where = f"[[case]] {i}"
    f.check_keys(raw, CASE_KEYS, where)
    label = raw.get("label", "")
    if label:
        where += f" ({label!r})"
    for key in ("adapter", "model"):
        if key not in raw:
            raise f.error(where, f"missing key {key!r} (required: adapter, model)")
    _known_adapter(f, raw["adapter"], f"{where} adapter")
    model_raw = f.check_keys(raw["model"], MODEL_KEYS, f"{where} model")
    model = f.spec(ModelSpec, model_raw, f"{where} model")
    train_raw = f.check_keys(raw.get("train", {}), TRAIN_KEYS, f"{where} train")
    train = f.spec(TrainSpec, {**train_defaults, **train_raw}, f"{where} train")
    try:
        case = Case(adapter=raw["adapter"], model=model, train=train, dataset=dataset, label=label,
                    init=raw.get("init", "framework"))
    except BenchInputError as exc:
        raise f.error(where, str(exc)) from None
    return case
