"""A result column, declared once beside the measurement that fills it.

Each measurement module lists its columns (`COLUMNS`); bench/results/columns.py gathers them into
the registry that the Record, `compare`'s gate fields, the tables, the HTML report and
docs/columns.md all derive from. A new metric is its measurement plus its declarations here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KINDS = ("str", "int", "float", "bool", "list[int]", "list[float]")
_ANNOTATIONS = {"str": "str", "int": "int", "float": "float", "bool": "bool",
                "list[int]": "tuple[int, ...]", "list[float]": "tuple[float, ...]"}
# What a missing figure reads as in pandas: NaN for floats, <NA> for integers, None for text and flags.
_DTYPES = {"float": "float64", "int": "Int64"}


@dataclass(frozen=True)
class Column:
    """One column of results.parquet.

    `required` columns come from the case itself and every record has them; the others are
    measurements, None (NaN) where not measured, with the reason in a `*_reason` column. `gate`
    marks the figures `compare --fail FIELD:PCT` may judge, in the direction `better` says.
    """

    name: str
    kind: str
    group: str
    doc: str
    unit: str = ""
    better: str | None = None  # "lower" or "higher": which way is an improvement
    fmt: str = ""  # format spec for tables ("" = the value as it is)
    required: bool = False
    default: Any = None
    gate: bool = False
    table: bool = False  # one of the HTML report's per-case table columns

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if self.better not in (None, "lower", "higher"):
            raise ValueError(f"column {self.name!r}: better must be 'lower', 'higher' or None")
        if self.gate and self.better is None:
            raise ValueError(f"column {self.name!r}: a gate field needs a better direction")

    @property
    def is_list(self) -> bool:
        return self.kind.startswith("list")

    @property
    def annotation(self) -> str:
        """The Record field's type, as text (the module uses postponed annotations)."""
        base = _ANNOTATIONS[self.kind]
        return base if self.required or self.is_list or self.default is not None else f"{base} | None"

    @property
    def dtype(self) -> str | None:
        """The pandas dtype of the column (None: object, as pandas infers it)."""
        return None if self.is_list else _DTYPES.get(self.kind)

    @property
    def direction(self) -> int:
        """+1 when a larger value is worse (times, memory), -1 when it is better (accuracy, throughput)."""
        return {"lower": +1, "higher": -1}.get(self.better or "", 0)


def columns(group: str, *specs: tuple, **common: Any) -> tuple[Column, ...]:
    """Declare a group of columns: each spec is (name, kind, doc) or (name, kind, doc, {options})."""
    out = []
    for spec in specs:
        name, kind, doc, *rest = spec
        out.append(Column(name, kind, group, doc, **{**common, **(rest[0] if rest else {})}))
    return tuple(out)
