"""What a matrix is (a grid of models x adapters, or a list of complete cases) and the checks every case
passes before any work: built-in matrices (bench/planning/matrices.py) and user files
(bench/planning/matrix_file.py) are both made of these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import adapters
from bench import data
from bench.core.errors import BenchInputError
from bench.core.specs import Case, ModelSpec, TrainSpec
from bench.planning.sweep import Sweep

DEFAULT_ADAPTERS = ("keras", "torch")


@dataclass(frozen=True)
class MatrixDef:
    """A grid (`models` x adapters, with one `train`) or an explicit list (`cases`, each complete)."""

    name: str
    description: str
    timeout_s: float  # per case
    dataset: str = "mnist-5k"
    models: Callable[[], list[ModelSpec]] | None = None
    train: TrainSpec | None = None
    cases: Callable[[], list[Case]] | None = None
    # used, with a notice, when `dataset` cannot be had without a download and none was asked for
    dataset_fallback: str | None = None
    origin: str = "built-in"
    sweeps: tuple[Sweep, ...] = ()  # one axis at a time around the cases' own values (bench/planning/sweep.py)
    sequence: str | None = None  # how the dataset's images are read (None: rows)

    def base_cases(self, adapter_names: tuple[str, ...] | None = None) -> list[Case]:
        """The matrix's own cases, before overrides (a grid uses `adapter_names` or the defaults)."""
        if self.cases is not None:
            return self.cases()
        assert self.models is not None and self.train is not None
        return [
            Case(adapter=a, model=m, train=self.train, dataset=self.dataset, sequence=self.base_sequence(m))
            for m in self.models()
            for a in (adapter_names or DEFAULT_ADAPTERS)
        ]

    def base_sequence(self, model: ModelSpec) -> str:
        """rows for an image dataset (or the matrix's sequence), random for synthetic data."""
        return (self.sequence or "rows") if data.get_info(self.dataset).has_labels else "random"


def check_case(case: Case, where: str) -> None:
    """Whether the case's adapter can express its model (and load its init), before any work."""
    info = adapters.get_info(case.adapter)
    reason = (info.unsupported_reason(case.model) or info.precision_reason(case.train.precision)
              or info.jit_reason(case.train.jit_compile))
    if reason is None and case.init != "framework":
        why = info.noncanonical_reason(case.model)
        reason = f"--init {case.init} cannot load weights: {why}" if why else None
    if reason:
        name = f"{case.label}: " if case.label else ""
        raise BenchInputError(f"{where}, case {name}adapter {case.adapter!r}, model {case.model.key!r}: {reason}")


def check_unique(cases: list[Case], where: str) -> None:
    seen: dict[str, int] = {}
    for i, c in enumerate(cases, 1):
        if c.case_id in seen:
            raise BenchInputError(
                f"{where}: cases {seen[c.case_id]} and {i} are both {c.case_id!r} (same adapter, model, batch, "
                "dataset and seed); give them distinct labels"
            )
        seen[c.case_id] = i
