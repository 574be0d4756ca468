"""The view of a sweep: one table per swept axis and model family (the axis as rows, adapters as
columns), the fitted exponent of each adapter, and the crossovers in words (bench/stats/scaling.py)."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

from bench.core.status import Status
from bench.stats.scaling import FLOP_EXPONENT, LEVEL, TIE, UPPER_POINTS, SweepSeries, sweep_series


def fit_text(series: SweepSeries) -> str:
    """'exponent: keras 1.62 [1.41, 1.83], torch 1.21 [0.98, 1.44] (FLOP model 2)'."""
    parts = []
    upper = series.upper_fits
    for adapter, fit in series.fits.items():
        if fit is None:
            parts.append(f"{adapter} -")
            continue
        text = f"{adapter} {fit.exponent:.2f}" + (f" [{fit.low:.2f}, {fit.high:.2f}]" if fit.low is not None else "")
        if upper.get(adapter) is not None:
            text += f" ({upper[adapter].exponent:.2f} over the largest {UPPER_POINTS})"
        parts.append(text)
    flop = FLOP_EXPONENT.get(series.axis)
    return (f"step time ~ {series.axis}^b, b ({LEVEL:.0%} interval): " + ", ".join(parts)
            + (f"; the FLOP model's b at large sizes: {flop:g}" if flop else ""))


def crossover_text(series: SweepSeries) -> str:
    found = series.crossings
    family = series.family.split(",")[0]
    if not found:
        return (f"no crossover: the same adapter is fastest at every point (or within {TIE:.0%}, a tie)"
                if len(series.times) > 1 else "")
    return "; ".join(c.text(series.axis, family) for c in found)


def sweep_table(series: SweepSeries) -> Table:
    table = Table(header_style="bold", show_edge=False, pad_edge=False)
    table.add_column(series.axis, justify="right", no_wrap=True)
    adapters = list(series.times)
    for a in adapters:
        table.add_column(f"{a}\nms/step", justify="right", no_wrap=True)
    for i, v in enumerate(series.values):
        times = {a: series.times[a][i] for a in adapters}
        best = min((t for t in times.values() if t is not None), default=None)
        row = [f"{v:,}"]
        for a in adapters:
            t = times[a]
            if t is None:
                status = series.statuses.get((a, v))
                row.append(f"[{Status(status).style}]{Status(status).short}[/]" if status else "")
            else:
                text = f"{t:.2f}"
                row.append(f"[bold green]{text}[/]" if t == best and len(adapters) > 1 else text)
        table.add_row(*row)
    return table


def print_sweeps(df: pd.DataFrame, console: Console) -> bool:
    """The sweep tables of a run, with fits and crossovers; False when the run swept nothing."""
    found = sweep_series(df)
    for series in found:
        console.print(f"[bold]{series.axis} sweep: {series.family}[/]")  # above the table: a title would wrap
        console.print(sweep_table(series))
        console.print(f"  {fit_text(series)}")
        crossing = crossover_text(series)
        if crossing:
            console.print(f"  {crossing}")
    if found:
        console.print("[dim]ms/step: median step time (median over processes); bold green = fastest at that point; "
                      "b: least-squares slope of log step time on log axis value[/]")
    return bool(found)
