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
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from bench.core.spread import cv
from bench.core.status import Status, is_timed
from bench.measure.learning import ALPHA as LEARNING_ALPHA
from bench.measure.steps import UNSTABLE_CV
from bench.stats.break_even import break_evens, describe, variant
from bench.stats.compare import mixed_machines
from bench.stats.seeds import (
    ALPHA,
    LEVEL,
    Interval,
    Reached,
    accuracy_gaps,
    format_accuracy,
    is_seed_part,
    per_seed,
    t_interval,
    time_to_target,
)

CELL_ORDER = {"rnn": 0, "gru": 1, "lstm": 2}
# Column kinds in the order they are dropped when the view is too wide (ms/step is never dropped).
DROP_ORDER = ("tta", "factor", "acc")
FASTEST = "*"
UNSTABLE = "~"
THROTTLED = "!"
LOWER = "↓"  # accuracy significantly below the row's best (Welch over seeds)
UNSHOWN = "?"  # status inconclusive: the accuracy does not show learning (bench/measure/learning.py)
LOOP_LEAD = 0.05  # the loop's fastest adapter is named only when it leads the step's fastest by this much
BUSY = "#"  # disturbed: other processes used the machine while the steps were timed (bench/measure/disturbance.py)


@dataclass(frozen=True)
class Cell:
    """One adapter's figures for one model (over all of that case's processes)."""

    status: str
    ms: float | None
    unstable: bool
    accuracy: Interval | None  # mean over seeds, with its t-interval from two seeds on
    tta: Reached
    processes: int
    throttled: bool = False  # the GPU slowed its clocks (power, thermal) while steps were timed
    lower: bool = False  # accuracy significantly below the row's best adapter's (two seeds or more a side)
    inconclusive: bool = False  # a process of it did not show learning (status inconclusive)
    disturbed: bool = False  # a process of it ran while other processes used the machine (or its GPU)
    tta_unsteady: bool = False  # its raw time to target differs from the robust one (steps off the median pace)

    @property
    def tta_s(self) -> float | None:
        return self.tta.median_s


def model_labels(df: pd.DataFrame) -> pd.Series:
    """The row label of each case: its model, plus the case-id parts that vary within the run
    (batch, dataset, init, precision), and the case's own label where it has one. Never the seed: a
    seed is a sample of the same setup, so a model's seeds are one row (bench/stats/seeds.py)."""
    parts = df["case_id"].str.split("/").map(lambda p: [x for x in p if not is_seed_part(x) and not x.startswith("jit-")])
    model_part = parts.map(lambda p: next(i for i, x in enumerate(p) if x.startswith(("rnn-", "gru-", "lstm-"))))
    rest = parts.combine(model_part, lambda p, i: p[i + 1:])
    width = rest.map(len).max() if len(rest) else 0
    varying = [j for j in range(width) if rest.map(lambda r, j=j: r[j] if j < len(r) else "").nunique() > 1]
    labels = [p[i] + "".join(" " + r[j] for j in varying if j < len(r)) for p, i, r in zip(parts, model_part, rest, strict=True)]
    if "label" in df:
        labels = [f"{n}: {m}" if isinstance(n, str) and n else m for n, m in zip(df["label"], labels, strict=True)]
    return pd.Series(labels, index=df.index)


def with_variants(df: pd.DataFrame) -> pd.DataFrame:
    """The rows with each adapter named with its compile switch ('keras jit-on'), so that the two modes of
    one adapter are two column groups of the view, as two adapters are."""
    if "jit_compile" not in df or df["jit_compile"].fillna("auto").eq("auto").all():
        return df
    return df.assign(adapter=[variant(a, j) for a, j in zip(df["adapter"], df["jit_compile"], strict=True)])


def _sort_key(row: pd.Series) -> tuple:
    units = [int(u) for u in str(row["units"]).split(",") if u]
    return (CELL_ORDER.get(row["cell"], 9), bool(row["bidirectional"]), sum(units), row["_model"])


def cells(df: pd.DataFrame) -> tuple[list[str], list[str], dict[tuple[str, str], Cell]]:
    """(models in display order, adapters in first-seen order, (model, adapter) -> Cell)."""
    df = with_variants(df).assign(_model=model_labels(df))
    firsts = df.drop_duplicates("_model")
    models = [r["_model"] for _, r in sorted(firsts.iterrows(), key=lambda kv: _sort_key(kv[1]))]
    adapters = list(dict.fromkeys(df["adapter"]))
    out = {}
    for (model, adapter), g in df.groupby(["_model", "adapter"], sort=False):
        bad = [s for s in g["status"] if not is_timed(s)]
        ms = g["step_time_ms_median"].dropna()
        within = g["step_time_cv"].dropna()
        between = cv(ms) if len(ms) > 1 else 0.0  # one process: no spread between processes
        accuracies = per_seed(g, "test_accuracy")
        out[(model, adapter)] = Cell(
            status=bad[0] if bad else Status.OK.value,
            ms=float(np.median(ms)) if len(ms) and not bad else None,
            unstable=bool((within > UNSTABLE_CV).any() or between > UNSTABLE_CV),
            accuracy=t_interval(accuracies) if accuracies else None,
            tta=time_to_target(g),
            processes=len(g),
            throttled=bool(g["gpu_throttled"].eq(True).any()) if "gpu_throttled" in g else False,
            inconclusive=bool(g["status"].eq(Status.INCONCLUSIVE).any()),
            disturbed=bool(g["disturbed"].eq(True).any()) if "disturbed" in g else False,
            tta_unsteady=bool(g["time_to_target_unsteady"].eq(True).any()) if "time_to_target_unsteady" in g else False,
        )
    lower = {(gap.model, gap.other) for gap in accuracy_gaps(df) if gap.significant}
    return models, adapters, {k: replace(c, lower=True) if k in lower else c for k, c in out.items()}


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
        return f"[{Status(c.status).style}]{Status(c.status).short}[/]"
    text = f"{c.ms:.2f}" + (UNSTABLE if c.unstable else "")
    text = f"[bold green]{text}[/]" if best is not None and c.ms == best else text
    return text + (f"[bold yellow]{THROTTLED}[/]" if c.throttled else "") + (f"[bold yellow]{BUSY}[/]" if c.disturbed else "")


def _factor_text(c: Cell | None, best: float | None) -> str:
    if c is None or c.ms is None or not best:
        return ""
    factor = c.ms / best
    return f"[bold green]{FASTEST}[/]" if factor == 1.0 else f"{factor:.2f}x"


def _acc_text(c: Cell | None) -> str:
    if c is None or c.accuracy is None:
        return ""
    return (format_accuracy(c.accuracy) + (f"[bold red]{LOWER}[/]" if c.lower else "")
            + (f"[bold yellow]{UNSHOWN}[/]" if c.inconclusive else ""))


def _tta_text(c: Cell | None) -> str:
    if c is None or (c.tta_s is None and c.accuracy is None):
        return ""
    return c.tta.text() + (UNSTABLE if c.tta_unsteady and c.tta_s is not None else "")


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


def legend(kinds: tuple[str, ...], processes: int, seeds: int = 1, unshown: bool = False, busy: bool = False) -> str:
    parts = ["ms/step: median step time (the same work in every adapter's clock: the step on a batch already "
             "where it is needed, with the accuracy metric; docs/methodology.md)"
             + (f" (median of {processes} processes)" if processes > 1 else "")
             + f"; bold green = fastest of the row; {UNSTABLE} = unstable (CV > {UNSTABLE_CV:g})"
             + (f"; {BUSY} = the machine was busy while it ran (notes below)" if busy else "")]
    if "factor" in kinds:
        parts.append(f"x: factor to the fastest ({FASTEST})")
    if "acc" in kinds:
        parts.append("acc: test accuracy" + (
            f", mean ± {LEVEL:.0%} t-interval over {seeds} seeds; {LOWER} = significantly below the row's best "
            f"(Welch's t-test over seeds, Holm over the run's pairs, alpha {ALPHA:g})" if seeds > 1 else "")
            + (f"; {UNSHOWN} = learning not shown (status inconclusive, notes below)" if unshown else ""))
    if "tta" in kinds:
        parts.append("to tgt: training seconds to the target accuracy at the case's median pace: step 0 + the "
                     f"steps to the target x the median step ('-': never reached; {UNSTABLE}: the steps as they "
                     "came sum to more than 10% off it)"
                     + (f"; median over the seeds that reached it, k/{seeds} = how many did" if seeds > 1 else ""))
    return "; ".join(parts)


def differences(df: pd.DataFrame) -> list[str]:
    """What differs between the adapters of the run besides the framework, and where it can explain
    an accuracy gap, with the option that removes it."""
    df = df.assign(_model=model_labels(df))
    variants = with_variants(df)
    out = _adapter_differences(variants) if variants["adapter"].nunique() > 1 else []
    out += inconclusive_notes(df)
    out += disturbed_notes(df)
    out += loop_notes(variants.assign(_model=df["_model"]))
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


def inconclusive_notes(df: pd.DataFrame) -> list[str]:
    """The cases whose run was too short (or too slow to learn) to show learning: their step times stand,
    their accuracy says nothing yet."""
    rows = df[df["status"] == Status.INCONCLUSIVE]
    if rows.empty:
        return []
    names = list(dict.fromkeys(f"{m} {a}" for m, a in zip(rows["_model"], rows["adapter"], strict=True)))
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return [f"[bold yellow]{UNSHOWN} learning not shown[/] ({len(rows)} process(es): {shown}): test accuracy not "
            f"significantly above chance or test loss not below the uniform prediction's ln(classes) (each at "
            f"alpha {LEARNING_ALPHA:g}; accuracy_reason has the figures); their step times stand, their accuracy "
            "does not yet compare: train longer (--max-steps, --epochs) to tell"]


def loop_notes(df: pd.DataFrame) -> list[str]:
    """Where the training loop as users get it (its wall time per sample, the work between steps included)
    ranks the adapters otherwise than the step times the view shows."""
    if "loop_samples_per_s" not in df or df["adapter"].nunique() < 2:
        return []
    timed = df[df["status"].map(is_timed)]
    flips = []
    for model, g in timed.groupby("_model", sort=False):
        per = g.groupby("adapter", sort=False).agg(ms=("step_time_ms_median", "median"),
                                                   loop=("loop_samples_per_s", "median"),
                                                   outside=("loop_outside_steps_share", "median")).dropna()
        if len(per) < 2:
            continue
        by_step, by_loop = per["ms"].idxmin(), per["loop"].idxmax()
        # a clear lead only: one process per case moves by several percent (the sweeps' crossovers ask 10%)
        if by_step != by_loop and per.loc[by_loop, "loop"] >= (1 + LOOP_LEAD) * per.loc[by_step, "loop"]:
            flips.append(f"{model} ({by_loop} {per.loc[by_loop, 'loop']:,.0f}/s vs {by_step} "
                         f"{per.loc[by_step, 'loop']:,.0f}/s, {by_step} {100 * per.loc[by_step, 'outside']:.0f}% "
                         "outside its steps)")
    if not flips:
        return []
    return [f"the training loop as users get it (wall time per sample with the work between steps: drawing "
            f"batches, a framework's loop and callbacks; loop_samples_per_s) has another fastest adapter than the "
            f"step times on {', '.join(flips[:4])}" + (f" and {len(flips) - 4} more" if len(flips) > 4 else "")]


def disturbed_notes(df: pd.DataFrame) -> list[str]:
    """The cases that ran on a busy machine: named, with what disturbed them, to be rerun."""
    if "disturbed" not in df:
        return []
    rows = df[df["disturbed"].eq(True)]
    if rows.empty:
        return []
    parts = []
    for (model, adapter), g in rows.groupby(["_model", "adapter"], sort=False):
        total = int(((df["_model"] == model) & (df["adapter"] == adapter)).sum())
        cores = g["other_cpu_cores"].max() if "other_cpu_cores" in g else None
        load = f"up to {cores:.2f} cores of other processes" if cores is not None and pd.notna(cores) else \
            "; ".join(sorted(set(g["disturbed_reason"].dropna())))
        parts.append(f"{model} {adapter} ({len(g)} of {total} process(es); {load})")
    return [f"[bold yellow]{BUSY} the machine was busy while these cases were timed[/]: {'; '.join(parts)}; their step times "
            "and times to target measure the sharing as well as the code: rerun them on a quiet machine"]


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
    gaps = accuracy_gaps(df)
    tested = [g for g in gaps if g.p_value is not None]
    same_init = not (df["init"] == "framework").all()
    if tested:  # two seeds or more a side: say which gaps are real
        seeds = seed_count(df)
        real = [g for g in tested if g.significant]
        noise = [g for g in tested if not g.significant]
        test = f"Welch's t-test over {seeds} seeds, Holm over the run's pairs of adapters, alpha {ALPHA:g}"
        if real:
            shown = _first(real)
            if not same_init:
                out.append(f"significant accuracy gaps ({test}): {shown}; starting weights differ (each adapter uses "
                           "its framework's default initializers), which can explain them: --init keras (or torch) "
                           "starts every adapter from the same weights")
            else:
                out.append(f"significant accuracy gaps with identical starting weights ({test}): {shown}")
        elif not same_init:
            out.append("starting weights differ: each adapter uses its framework's default initializers")
        if noise:
            out.append(f"accuracy gaps not significant with {seeds} seeds ({test}; neither shown real nor shown "
                       f"absent): {_first(noise)}")
        return out + _setting_differences(df)
    wide = [g for g in gaps if g.best_acc.mean - g.other_acc.mean >= 0.02]
    if not same_init:
        line = "starting weights differ: each adapter uses its framework's default initializers"
        if wide:
            line += f"; the accuracy gaps on {_first(wide)} can come from that: --init keras (or torch) starts every " \
                    "adapter from the same weights"
        out.append(line)
    elif wide:
        out.append("accuracy gaps of 2 points or more with identical starting weights: " + _first(wide))
    if wide:
        out.append("one seed per case: --seeds 3 tells which accuracy gaps are larger than the spread between seeds")
    return out + _setting_differences(df)


def _first(gaps: list, shown: int = 3) -> str:
    text = ", ".join(g.text() for g in gaps[:shown])
    return text + (f" and {len(gaps) - shown} more" if len(gaps) > shown else "")


def _setting_differences(df: pd.DataFrame) -> list[str]:
    out = []
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


def seed_count(df: pd.DataFrame) -> int:
    """The most seeds any one row of the view holds."""
    labelled = with_variants(df).assign(_model=model_labels(df))
    return int(labelled.groupby(["_model", "adapter"])["seed"].nunique().max()) if len(df) else 0


def processes_per_cell(df: pd.DataFrame) -> int:
    """The most processes (seeds x repeats) behind one step time of the view."""
    labelled = with_variants(df).assign(_model=model_labels(df))
    return int(labelled.groupby(["_model", "adapter"]).size().max()) if len(df) else 0


def print_view(df: pd.DataFrame, console: Console, title: str | None = None) -> None:
    """The comparison view at the console's width, its legend, and what differs between adapters."""
    if df.empty:
        console.print("no cases")
        return
    from bench.render.sweeps import print_sweeps

    swept = "sweep_axes" in df and df["sweep_axes"].fillna("").astype(bool).all()
    if swept and title:
        console.print(f"[bold]{title}[/]")
    if print_sweeps(df, console) and swept:  # a sweep's answer is its curves; a mixed run gets both views
        for line in differences(df):
            console.print(f"note: {line}")
        return
    tables, kinds = comparison_tables(df, console.width, title)
    for table in tables:
        console.print(table)
    unshown = bool(df["status"].eq(Status.INCONCLUSIVE).any())
    busy = bool(df["disturbed"].eq(True).any()) if "disturbed" in df else False
    console.print(f"[dim]{legend(kinds, processes_per_cell(df), seed_count(df), unshown, busy)}[/]")
    for line in differences(df):
        console.print(f"note: {line}")
