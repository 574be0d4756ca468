"""The comparison view: one row per model, one column group per adapter, sized to the terminal.

It answers "which framework is faster on this model, by how much, and does it learn as well?" at a
glance: per adapter the median step time (the median of process medians with --repeat), its factor
to the fastest adapter of the row (the fastest marked), test accuracy and, where the run has one, the
time to the target accuracy. A case that did not finish ok shows its status in place of its step
time; an unstable timing (CV above the limit) is marked. Rows are sorted by cell, direction and width.

No number is ever cut: the view is measured before it is printed, and columns are dropped in a
fixed order until it fits the console (time to target first, then the factor columns, then
accuracy); if the step times of all adapters still do not fit, the adapters are split over several
tables. `show --long` prints every column of every case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from bench.core.spread import cv
from bench.core.status import Status
from bench.measure.steps import UNSTABLE_CV
from bench.stats.break_even import break_evens, describe
from bench.stats.compare import mixed_machines

CELL_ORDER = {"rnn": 0, "gru": 1, "lstm": 2}
SHORT_STATUS = {
    Status.FAILED: "FAILED", Status.TIMEOUT: "TIMEOUT", Status.OOM: "OOM", Status.DIVERGED: "diverged",
    Status.NOT_LEARNING: "no-learn", Status.UNAVAILABLE: "n/a",
}
# Column kinds in the order they are dropped when the view is too wide (ms/step is never dropped).
DROP_ORDER = ("tta", "factor", "acc")
FASTEST = "*"
UNSTABLE = "~"
THROTTLED = "!"


@dataclass(frozen=True)
class Cell:
    """One adapter's figures for one model (over all of that case's processes)."""

    status: str
    ms: float | None
    unstable: bool
    accuracy: float | None
    tta_s: float | None
    processes: int
    throttled: bool = False  # the GPU slowed its clocks (power, thermal) while steps were timed


def model_labels(df: pd.DataFrame) -> pd.Series:
    """The row label of each case: its model, plus the case-id parts that vary within the run
    (batch, dataset, seed, init), and the case's own label where it has one."""
    parts = df["case_id"].str.split("/")
    model_part = parts.map(lambda p: next(i for i, x in enumerate(p) if x.startswith(("rnn-", "gru-", "lstm-"))))
    rest = parts.combine(model_part, lambda p, i: p[i + 1:])
    width = rest.map(len).max() if len(rest) else 0
    varying = [j for j in range(width) if rest.map(lambda r, j=j: r[j] if j < len(r) else "").nunique() > 1]
    labels = [p[i] + "".join(" " + r[j] for j in varying if j < len(r)) for p, i, r in zip(parts, model_part, rest, strict=True)]
    if "label" in df:
        labels = [f"{n}: {m}" if isinstance(n, str) and n else m for n, m in zip(df["label"], labels, strict=True)]
    return pd.Series(labels, index=df.index)


def _sort_key(row: pd.Series) -> tuple:
    units = [int(u) for u in str(row["units"]).split(",") if u]
    return (CELL_ORDER.get(row["cell"], 9), bool(row["bidirectional"]), sum(units), row["_model"])


def cells(df: pd.DataFrame) -> tuple[list[str], list[str], dict[tuple[str, str], Cell]]:
    """(models in display order, adapters in first-seen order, (model, adapter) -> Cell)."""
    df = df.assign(_model=model_labels(df))
    firsts = df.drop_duplicates("_model")
    models = [r["_model"] for _, r in sorted(firsts.iterrows(), key=lambda kv: _sort_key(kv[1]))]
    adapters = list(dict.fromkeys(df["adapter"]))
    out = {}
    for (model, adapter), g in df.groupby(["_model", "adapter"], sort=False):
        bad = [s for s in g["status"] if s != Status.OK]
        ms = g["step_time_ms_median"].dropna()
        within = g["step_time_cv"].dropna()
        between = cv(ms) if len(ms) > 1 else 0.0  # one process: no spread between processes
        out[(model, adapter)] = Cell(
            status=bad[0] if bad else Status.OK.value,
            ms=float(np.median(ms)) if len(ms) and not bad else None,
            unstable=bool((within > UNSTABLE_CV).any() or between > UNSTABLE_CV),
            accuracy=float(g["test_accuracy"].median()) if g["test_accuracy"].notna().any() else None,
            tta_s=float(g["time_to_target_s"].median()) if g["time_to_target_s"].notna().any() else None,
            processes=len(g),
            throttled=bool(g["gpu_throttled"].eq(True).any()) if "gpu_throttled" in g else False,
        )
    return models, adapters, out


def _fastest(models: list[str], adapters: list[str], grid: dict) -> dict[str, float]:
    best = {}
    for m in models:
        times = [grid[(m, a)].ms for a in adapters if (m, a) in grid and grid[(m, a)].ms is not None]
        if times:
            best[m] = min(times)
    return best


def _ms_text(c: Cell | None, best: float | None) -> str:
    if c is None:
        return ""
    if c.ms is None:
        return f"[{Status(c.status).style}]{SHORT_STATUS.get(Status(c.status), c.status)}[/]"
    text = f"{c.ms:.2f}" + (UNSTABLE if c.unstable else "")
    text = f"[bold green]{text}[/]" if best is not None and c.ms == best else text
    return text + (f"[bold yellow]{THROTTLED}[/]" if c.throttled else "")


def _factor_text(c: Cell | None, best: float | None) -> str:
    if c is None or c.ms is None or not best:
        return ""
    factor = c.ms / best
    return f"[bold green]{FASTEST}[/]" if factor == 1.0 else f"{factor:.2f}x"


def _acc_text(c: Cell | None) -> str:
    return "" if c is None or c.accuracy is None else f"{100 * c.accuracy:.1f}%"


def _tta_text(c: Cell | None) -> str:
    if c is None or c.tta_s is None:
        return "-" if c is not None and c.accuracy is not None else ""
    return f"{c.tta_s:.1f}s"


def build(models: list[str], adapters: list[str], grid: dict, kinds: tuple[str, ...], title: str | None) -> Table:
    """The view with the given column kinds per adapter ('ms' always first)."""
    best = _fastest(models, adapters, grid)
    table = Table(title=title, header_style="bold", show_edge=False, pad_edge=False)
    table.add_column("model", no_wrap=True)
    header = {"ms": "ms/step", "factor": "x", "acc": "acc", "tta": "to tgt"}
    for a in adapters:
        for k in ("ms",) + kinds:
            table.add_column(f"{a}\n{header[k]}" if k == "ms" else f"\n{header[k]}", justify="right", no_wrap=True)
    for m in models:
        row = [m]
        for a in adapters:
            c = grid.get((m, a))
            row.append(_ms_text(c, best.get(m)))
            for k in kinds:
                row.append({"factor": _factor_text, "acc": lambda c, _: _acc_text(c),
                            "tta": lambda c, _: _tta_text(c)}[k](c, best.get(m)))
        table.add_row(*row)
    return table


def fits(console: Console, table: Table, width: int) -> bool:
    """Whether the table's natural width (every cell on one line) is within `width`."""
    natural = Measurement.get(console, console.options.update_width(100_000), table).maximum
    return natural <= width


def comparison_tables(df: pd.DataFrame, width: int, title: str | None = None) -> tuple[list[Table], tuple[str, ...]]:
    """Tables that fit `width` columns without cutting anything, and the column kinds they show."""
    console = Console(width=width, record=False)
    models, adapters, grid = cells(df)
    kinds = ["factor", "acc"] + (["tta"] if any(c.tta_s is not None for c in grid.values()) else [])
    if not any(c.accuracy is not None for c in grid.values()):
        kinds.remove("acc")
    if len(adapters) < 2:
        kinds.remove("factor")
    kinds = [k for k in ("factor", "acc", "tta") if k in kinds]
    while True:
        table = build(models, adapters, grid, tuple(kinds), title)
        if fits(console, table, width) or not kinds:
            break
        drop = next(k for k in DROP_ORDER if k in kinds)
        kinds.remove(drop)
    if fits(console, table, width):
        return [table], tuple(kinds)
    # Still too wide with step times alone: split the adapters over several tables.
    tables, group = [], []
    for a in adapters:
        trial = build(models, group + [a], grid, (), None)
        if group and not fits(console, trial, width):
            tables.append(build(models, group, grid, (), title if not tables else None))
            group = []
        group.append(a)
    tables.append(build(models, group, grid, (), title if not tables else None))
    return tables, ()


def legend(kinds: tuple[str, ...], repeats: int) -> str:
    parts = ["ms/step: median step time" + (f" (median of {repeats} processes)" if repeats > 1 else "")
             + f"; bold green = fastest of the row; {UNSTABLE} = unstable (CV > {UNSTABLE_CV:g})"]
    if "factor" in kinds:
        parts.append(f"x: factor to the fastest ({FASTEST})")
    if "acc" in kinds:
        parts.append("acc: test accuracy")
    if "tta" in kinds:
        parts.append("to tgt: training seconds to the target accuracy ('-': never reached)")
    return "; ".join(parts)


def differences(df: pd.DataFrame) -> list[str]:
    """What differs between the adapters of the run besides the framework, and where it can explain
    an accuracy gap, with the option that removes it."""
    df = df.assign(_model=model_labels(df))
    out = _adapter_differences(df) if df["adapter"].nunique() > 1 else []
    if "gpu_throttled" in df and df["gpu_throttled"].eq(True).any():
        hot = df[df["gpu_throttled"].eq(True)]
        shown = ", ".join(f"{m} {a} ({r})" for m, a, r in zip(hot["_model"], hot["adapter"], hot["gpu_throttle_reasons"],
                                                             strict=True))
        out.append(f"[bold yellow]{THROTTLED} GPU throttled while steps were timed[/]: {shown}; those step times "
                   "are slower than the GPU's own speed")
    out += break_even_notes(df)
    machines = mixed_machines(df)
    if machines:
        out.append(f"[bold yellow]this run mixes machines[/] ({machines}): step times of cases from different "
                   "machines are not comparable")
    return out


def break_even_notes(df: pd.DataFrame) -> list[str]:
    """One line per compiled adapter whose eager twin ran the same models: when compiling pays back."""
    found = break_evens(df, labels=df["_model"] if "_model" in df else model_labels(df))
    out = []
    for compiled in dict.fromkeys(b.compiled for b in found):
        mine = [b for b in found if b.compiled == compiled]
        out.append(f"compile break-even of {compiled} against {mine[0].eager} (first step + median steps, "
                   f"docs/methodology.md): " + "; ".join(describe(b) for b in mine))
    return out


def _adapter_differences(df: pd.DataFrame) -> list[str]:
    out = []
    gaps = []
    for model, g in df[df["test_accuracy"].notna()].groupby("_model", sort=False):
        acc = g.groupby("adapter")["test_accuracy"].median()
        if len(acc) > 1 and acc.max() - acc.min() >= 0.02:
            gaps.append(f"{model} ({acc.idxmin()} {100 * acc.min():.1f}% vs {acc.idxmax()} {100 * acc.max():.1f}%)")
    if (df["init"] == "framework").all():
        line = "starting weights differ: each adapter uses its framework's default initializers"
        if gaps:
            shown = ", ".join(gaps[:3]) + (f" and {len(gaps) - 3} more" if len(gaps) > 3 else "")
            line += f"; the accuracy gaps on {shown} can come from that: --init keras (or torch) starts every adapter " \
                    "from the same weights"
        out.append(line)
    elif gaps:
        out.append("accuracy gaps of 2 points or more with identical starting weights: " + ", ".join(gaps[:3]))
    for column, name, option in (("adam_epsilon", "Adam epsilon", "a matrix file's [train] adam_epsilon"),
                                 ("learning_rate", "learning rate", "a matrix file's [train] learning_rate"),
                                 ("batch_size", "batch size", "--batch-size"),
                                 ("lr_schedule", "learning-rate schedule", "a matrix file"),
                                 ("precision", "precision", "--precision")):
        per = df.groupby("adapter")[column].agg(lambda s: tuple(sorted(set(s))))
        if per.nunique() > 1:
            values = ", ".join(f"{a} {'/'.join(map(_fmt, v))}" for a, v in per.items())
            out.append(f"{name} differs between adapters ({values}); the same value everywhere: {option}")
    return out


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) and not math.isnan(v) else str(v)


def print_view(df: pd.DataFrame, console: Console, title: str | None = None) -> None:
    """The comparison view at the console's width, its legend, and what differs between adapters."""
    if df.empty:
        console.print("no cases")
        return
    tables, kinds = comparison_tables(df, console.width, title)
    for table in tables:
        console.print(table)
    repeats = int(df.groupby("case_id").size().max())
    console.print(f"[dim]{legend(kinds, repeats)}[/]")
    for line in differences(df):
        console.print(f"note: {line}")
