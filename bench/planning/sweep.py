"""Sweeps: one axis of a matrix (units, timesteps, batch size, layers) over a list or a geometric range.

`--sweep units=32..1024` (or `[sweep]` in a matrix file) makes each case of the matrix once per value of
the axis, everything else as the case has it: a cost curve instead of a point. Several sweeps are taken
one axis at a time around the matrix's own values (its centre), as DeepBench's grids vary one size at a
time; a case at the centre is one case, a point of every axis (`sweep_axes`).

Values: a list (`32,64,128`), a doubling range (`32..1024`: 32, 64, ..., 1024) or N geometrically spaced
integers (`32..1024/6`: 32, 64, 128, 256, 512, 1024, each rounded). A range must hold two points or more.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from bench.core.errors import BenchInputError, choices_text
from bench.core.specs import Case

AXES = ("units", "timesteps", "batch_size", "layers")
ALIASES = {"batch": "batch_size", "batch-size": "batch_size", "width": "units", "seq": "timesteps"}
# More cases than this need --yes: a sweep multiplies a matrix, and a typo (units=1..4096) should not
# start hours of work. 200 cases of the `ci` shape take about 40 minutes on 2 cores.
MAX_CASES = 200
MAX_POINTS = 64


@dataclass(frozen=True)
class Sweep:
    axis: str
    values: tuple[int, ...]

    def text(self) -> str:
        return f"{self.axis}={','.join(map(str, self.values))}"


def _positive(text: str, value: str) -> int:
    try:
        v = int(value)
    except ValueError:
        raise BenchInputError(f"--sweep {text!r}: {value!r} is not an integer") from None
    if v <= 0:
        raise BenchInputError(f"--sweep {text!r}: {v} is not a positive integer")
    return v


def geometric(low: int, high: int, points: int | None) -> tuple[int, ...]:
    """Doubling from low up to high (points None), or `points` geometrically spaced integers low..high."""
    if points is None:
        out, v = [], low
        while v <= high:
            out.append(v)
            v *= 2
        return tuple(out)
    ratio = (high / low) ** (1 / (points - 1)) if points > 1 else 1.0
    return tuple(dict.fromkeys(int(round(low * ratio**i)) for i in range(points)))


def parse_sweep(text: str) -> Sweep:
    """'AXIS=VALUES' -> a Sweep; a bad axis, value or range names what is allowed."""
    name, sep, spec = text.partition("=")
    axis = ALIASES.get(name.strip(), name.strip())
    if not sep or axis not in AXES:
        raise BenchInputError(f"--sweep {text!r}: unknown axis {name.strip()!r}; valid axes: {choices_text(AXES)} "
                              "(e.g. --sweep units=32..1024)")
    spec = spec.strip()
    m = re.fullmatch(r"(\d+)\s*\.\.\s*(\d+)(?:\s*/\s*(\d+))?", spec)
    if m:
        low, high = _positive(text, m.group(1)), _positive(text, m.group(2))
        points = _positive(text, m.group(3)) if m.group(3) else None
        if high <= low:
            raise BenchInputError(f"--sweep {text!r}: the range {low}..{high} has no points; give LOW..HIGH with "
                                  "LOW < HIGH, e.g. 32..1024")
        values = geometric(low, high, points)
    else:
        values = tuple(_positive(text, v.strip()) for v in spec.split(",") if v.strip())
    if len(values) < 2:
        raise BenchInputError(f"--sweep {text!r}: {len(values)} point(s); a sweep needs two or more (a list a,b,... "
                              "or a range LOW..HIGH, LOW..HIGH/N)")
    if len(set(values)) != len(values):
        raise BenchInputError(f"--sweep {text!r}: a value is given twice")
    if len(values) > MAX_POINTS:
        raise BenchInputError(f"--sweep {text!r}: {len(values)} points; at most {MAX_POINTS}")
    return Sweep(axis, tuple(sorted(values)))


def with_value(case: Case, axis: str, value: int) -> Case:
    """The case with one axis set to `value` (units: every layer; layers: the first layer's width repeated)."""
    m, t = case.model, case.train
    if axis == "units":
        return dataclasses.replace(case, model=dataclasses.replace(m, units=(value,) * m.layers))
    if axis == "layers":
        return dataclasses.replace(case, model=dataclasses.replace(m, units=(m.units[0],) * value,
                                                                   dropout=(m.dropout[0],) * value))
    if axis == "timesteps":
        return dataclasses.replace(case, model=dataclasses.replace(m, timesteps=value))
    return dataclasses.replace(case, train=dataclasses.replace(t, batch_size=value))


def expand(cases: list[Case], sweeps: tuple[Sweep, ...]) -> list[Case]:
    """Each case once per value of each sweep (one axis at a time); a case at the centre of several
    sweeps is one case whose `sweep_axes` names them all. Order: case by case, axis by axis."""
    axes = [s.axis for s in sweeps]
    twice = sorted({a for a in axes if axes.count(a) > 1})
    if twice:
        raise BenchInputError(f"--sweep: axis {twice[0]!r} is swept twice; give each axis once")
    out: dict[str, Case] = {}
    for case in cases:
        for sweep in sweeps:
            for value in sweep.values:
                point = with_value(case, sweep.axis, value)
                known = out.get(point.case_id)
                tags = (known.sweep_axes if known else ()) + (sweep.axis,)
                out[point.case_id] = dataclasses.replace(point, sweep_axes=tuple(dict.fromkeys(tags)))
    return list(out.values())


def check_size(cases: list[Case], confirmed: bool) -> None:
    if len(cases) > MAX_CASES and not confirmed:
        raise BenchInputError(f"this plan makes {len(cases)} cases, more than {MAX_CASES}: run fewer points or "
                              "adapters, or confirm with --yes")

