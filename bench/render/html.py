"""`python -m bench report RUN [RUN] -o report.html`: one self-contained HTML page with the charts.

Charts are drawn with matplotlib and inlined as SVG: the page needs no script library, no font
and no network to be read, weighs tens of kB per chart instead of the 3.5 MB of plotly's bundled
JavaScript, renders the same in every browser, and stays readable when archived as a CI artifact.
The only script on the page sorts the case table when a header is clicked.

Every chart is built by a function that returns the figure and the data it plots (a DataFrame),
so the tests check the numbers each chart carries without reading pixels.
"""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench.core.status import Status, is_timed
from bench.measure.curve import paced_s
from bench.render.view import differences, model_labels, with_variants
from bench.results.columns import table_columns
from bench.stats.seeds import LEVEL, per_seed, t_interval

CHART_WIDTH_IN, CHART_ROW_IN = 9.0, 0.32


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    caption: str
    svg: str
    data: pd.DataFrame


def _matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
    except ImportError as exc:
        from bench.core.errors import BenchInputError

        raise BenchInputError("the HTML report needs matplotlib: pip install 'rnnbench[report]'") from exc
    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "rnnbench", "font.size": 9,
                         "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    _matplotlib().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: the SVG is inline


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"].map(is_timed)]


def per_case(df: pd.DataFrame) -> pd.DataFrame:
    """One row per model and adapter: the processes of every seed and repeat combined (medians), test
    accuracy as the mean over seeds with its t-interval (bench/stats/seeds.py)."""
    df = with_variants(df).assign(model=model_labels(df))
    agg = {c: "median" for c in ("step_time_ms_median", "step_time_ms_p10", "step_time_ms_p90", "first_step_ms",
                                 "throughput_samples_per_s", "cpu_rss_peak_mb", "gpu_mem_peak_mb",
                                 "gpu_allocator_peak_mb", "forward_ms", "backward_ms", "optimizer_ms",
                                 "time_to_target_s")}
    groups = df.groupby(["model", "adapter"], sort=False)
    out = groups.agg(agg).reset_index()
    accuracy = [t_interval(per_seed(g, "test_accuracy")) for _, g in groups]
    out["test_accuracy"] = [a.mean if a.n else math.nan for a in accuracy]
    out["test_accuracy_half"] = [a.half if a.half is not None else math.nan for a in accuracy]
    out["seeds"] = groups["seed"].nunique().values
    out["processes"] = groups.size().values
    return out

def _colors(adapters: list[str]) -> dict[str, str]:
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    return {a: palette[i % len(palette)] for i, a in enumerate(adapters)}


def _grouped_hbar(data: pd.DataFrame, value: str, xlabel: str, log: bool = False,
                  err: tuple[str, str] | None = None):
    """Horizontal markers per model (rows) and adapter (colour), with optional p10-p90 whiskers."""
    plt = _matplotlib()
    models = list(dict.fromkeys(data["model"]))
    adapters = list(dict.fromkeys(data["adapter"]))
    colors = _colors(adapters)
    fig, ax = plt.subplots(figsize=(CHART_WIDTH_IN, 0.6 + CHART_ROW_IN * len(models) * max(1, len(adapters)) / 1.5))
    height = 0.8 / max(1, len(adapters))
    for j, a in enumerate(adapters):
        rows = data[data["adapter"] == a].set_index("model")
        ys = [i + (j - (len(adapters) - 1) / 2) * height for i, m in enumerate(models) if m in rows.index]
        vals = [rows.loc[m, value] for m in models if m in rows.index]
        if err:
            lo = [rows.loc[m, value] - rows.loc[m, err[0]] for m in models if m in rows.index]
            hi = [rows.loc[m, err[1]] - rows.loc[m, value] for m in models if m in rows.index]
            ax.errorbar(vals, ys, xerr=[lo, hi], fmt="o", color=colors[a], label=a, capsize=2, markersize=4)
        else:
            ax.barh(ys, vals, height=height * 0.9, color=colors[a], label=a)
    ax.set_yticks(range(len(models)), models)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    if log:
        ax.set_xscale("log")
    ax.grid(axis="x", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # none when no case has this value
        ax.legend(loc="best", fontsize=8, frameon=False)
    return fig


def chart_step_time(df: pd.DataFrame) -> Chart:
    data = per_case(_ok(df))[["model", "adapter", "step_time_ms_median", "step_time_ms_p10", "step_time_ms_p90"]]
    fig = _grouped_hbar(data, "step_time_ms_median", "ms per training step (median; whiskers p10-p90)",
                        err=("step_time_ms_p10", "step_time_ms_p90"))
    return Chart("step_time", "Step time", "Median training-step time per model and adapter, p10 to p90 as whiskers "
                 "(lower is better).", _svg(fig), data)


def chart_first_step(df: pd.DataFrame) -> Chart:
    data = per_case(_ok(df))[["model", "adapter", "first_step_ms"]].dropna()
    fig = _grouped_hbar(data, "first_step_ms", "ms (log scale)", log=True)
    return Chart("first_step", "First step (trace / compile)", "The first training step, which includes tracing, "
                 "compilation and kernel selection, kept out of the step time.", _svg(fig), data)


def chart_throughput(df: pd.DataFrame) -> Chart:
    data = per_case(_ok(df))[["model", "adapter", "throughput_samples_per_s"]].dropna()
    fig = _grouped_hbar(data, "throughput_samples_per_s", "training samples per second (higher is better)")
    return Chart("throughput", "Throughput", "Samples per second at the median step time.", _svg(fig), data)


def pareto_front(points: pd.DataFrame) -> pd.Series:
    """True for the points no other point beats on both step time (lower) and accuracy (higher)."""
    t, a = points["step_time_ms_median"].to_numpy(), points["test_accuracy"].to_numpy()
    return pd.Series([not any((t[j] <= t[i] and a[j] >= a[i]) and (t[j] < t[i] or a[j] > a[i])
                              for j in range(len(t))) for i in range(len(t))], index=points.index)


def place_labels(ax, points: list[tuple[float, float]], texts: list[str], fontsize: float = 7.5) -> list:
    """Put one short label beside each point where it overlaps no label placed before it: the first of
    eight positions around the point that is free (in display coordinates), else the least crowded."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    offsets = [(4, 4), (4, -10), (-10, 4), (-10, -10), (6, -3), (-14, -3), (-3, 6), (-3, -13)]
    placed_boxes, labels = [], []
    for (x, y), text in zip(points, texts, strict=True):
        best, best_overlap = None, None
        for dx, dy in offsets:
            label = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize)
            box = label.get_window_extent(renderer)
            overlap = sum(max(0, min(box.x1, b.x1) - max(box.x0, b.x0)) * max(0, min(box.y1, b.y1) - max(box.y0, b.y0))
                          for b in placed_boxes)
            if best_overlap is None or overlap < best_overlap:
                if best is not None:
                    best.remove()
                best, best_overlap = label, overlap
            else:
                label.remove()
            if overlap == 0:
                break
        placed_boxes.append(best.get_window_extent(renderer))
        labels.append(best)
    return labels


def chart_accuracy_vs_time(df: pd.DataFrame) -> Chart:
    """Accuracy against step time: a number beside each point, placed where it overlaps no other, and
    the key of the numbers beside the chart (24 model names on the points overlapped each other)."""
    plt = _matplotlib()
    data = per_case(_ok(df))[["model", "adapter", "step_time_ms_median", "test_accuracy", "test_accuracy_half",
                               "seeds"]].dropna(subset=["step_time_ms_median", "test_accuracy"])
    data = data.sort_values(["model", "adapter"], kind="stable").reset_index(drop=True)
    data = data.assign(pareto=pareto_front(data), number=range(1, len(data) + 1)) if len(data) else \
        data.assign(pareto=[], number=[])
    fig, (ax, key) = plt.subplots(1, 2, figsize=(CHART_WIDTH_IN, 4.6), gridspec_kw={"width_ratios": [3, 1.25]})
    colors = _colors(list(dict.fromkeys(data["adapter"])))
    for a, g in data.groupby("adapter", sort=False):
        half = 100 * g["test_accuracy_half"].fillna(0)
        ax.errorbar(g["step_time_ms_median"], 100 * g["test_accuracy"], yerr=half if half.any() else None, fmt="o",
                    color=colors[a], label=a, markersize=5, capsize=2, zorder=3)
    front = data[data["pareto"].astype(bool)].sort_values("step_time_ms_median")
    if len(front):
        ax.step(front["step_time_ms_median"], 100 * front["test_accuracy"], where="post", color="#444", lw=1,
                ls="--", label="Pareto front", zorder=2)
    ax.set_xlabel("ms per training step (median)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    if len(data):
        ax.legend(fontsize=8, frameon=False)
    place_labels(ax, list(zip(data["step_time_ms_median"], 100 * data["test_accuracy"], strict=True)),
                 [str(n) for n in data["number"]])
    key.axis("off")
    lines = [f"{n:>2}  {m} · {a}" for n, m, a in zip(data["number"], data["model"], data["adapter"], strict=True)]
    key.text(0, 1, "\n".join(lines), va="top", ha="left", fontsize=7, family="monospace", transform=key.transAxes)
    seeds = int(data["seeds"].max()) if len(data) else 1
    caption = "Accuracy against cost; the dashed line joins the setups no other setup beats on both (the Pareto front)."
    if seeds > 1:
        caption += f" Accuracy is the mean over {seeds} seeds, the bars its {LEVEL:.0%} t-interval."
    if data.empty:
        caption = "No case of this run has a test accuracy (synthetic data, or no case ok)."
    return Chart("pareto", "Accuracy vs step time", caption, _svg(fig), data)


def curve_points(df: pd.DataFrame) -> pd.DataFrame:
    """Every evaluation of every ok case's process: (model, adapter, seed, repeat, step, train_s, accuracy)."""
    ok = with_variants(_ok(df)).assign(model=model_labels(_ok(df)))
    rows = []
    for _, r in ok.iterrows():
        paced = pd.notna(r.get("first_step_ms")) and pd.notna(r.get("step_time_ms_median"))
        for step, raw, acc in zip(r["curve_steps"], r["curve_train_s"], r["curve_test_accuracy"], strict=True):
            # at the case's median pace, as time_to_target_s counts it: a few disturbed steps do not bend it
            seconds = paced_s(step, r["first_step_ms"], r["step_time_ms_median"]) if paced else raw
            rows.append({"case_id": r["case_id"], "repeat": r["repeat"], "seed": r["seed"], "model": r["model"],
                         "adapter": r["adapter"], "step": step, "train_s": seconds, "test_accuracy": acc})
    return pd.DataFrame(rows, columns=["case_id", "repeat", "seed", "model", "adapter", "step", "train_s",
                                       "test_accuracy"])


def curve_bands(points: pd.DataFrame) -> pd.DataFrame:
    """Per model, adapter and evaluation step: the median training seconds, the mean accuracy over seeds
    and its spread (lowest and highest seed), each seed's processes first reduced to their median."""
    per_seed_points = points.groupby(["model", "adapter", "step", "seed"], sort=False).median(numeric_only=True)
    grouped = per_seed_points.reset_index().groupby(["model", "adapter", "step"], sort=False)
    out = grouped.agg(train_s=("train_s", "median"), accuracy=("test_accuracy", "mean"),
                      low=("test_accuracy", "min"), high=("test_accuracy", "max"), seeds=("seed", "nunique"))
    return out.reset_index()


def chart_time_to_accuracy(df: pd.DataFrame) -> Chart:
    """Small multiples: one panel per model, one line per adapter (the mean over seeds, its band the
    lowest to the highest seed), so 24 cases no longer share one panel and a 24-entry legend."""
    plt = _matplotlib()
    data = curve_points(df)
    bands = curve_bands(data) if len(data) else data
    models = list(dict.fromkeys(data["model"]))
    cols = min(3, max(1, len(models)))
    rows = max(1, math.ceil(len(models) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(CHART_WIDTH_IN, 0.6 + 2.3 * rows), squeeze=False, sharey=True)
    adapters = list(dict.fromkeys(data["adapter"]))
    colors = _colors(adapters)
    targets = _ok(df)["target_accuracy"].dropna().unique()
    for ax, model in zip(axes.flat, models, strict=False):
        for a in adapters:
            g = bands[(bands["model"] == model) & (bands["adapter"] == a)]
            if g.empty:
                continue
            ax.plot(g["train_s"], 100 * g["accuracy"], marker="o", markersize=2.5, color=colors[a], label=a)
            if (g["seeds"] > 1).any():
                ax.fill_between(g["train_s"], 100 * g["low"], 100 * g["high"], color=colors[a], alpha=0.18, lw=0)
        for t in targets:
            ax.axhline(100 * t, color="#888", lw=0.8, ls=":")
        ax.set_title(model, fontsize=8.5)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(models):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("test accuracy (%)")
    for ax in axes[-1, :]:
        ax.set_xlabel("training seconds")
    if adapters:  # below the panels: above them it ran into the panel titles
        fig.legend(handles=[plt.Line2D([], [], color=colors[a], marker="o", markersize=3, label=a) for a in adapters],
                   loc="lower center", ncol=len(adapters), frameon=False, fontsize=8, bbox_to_anchor=(0.5, 0.0))
        fig.tight_layout(rect=(0, 0.5 / (0.6 + 2.3 * rows), 1, 1))
    seeds = int(bands["seeds"].max()) if len(bands) else 1
    caption = ("Test accuracy over training time at each case's median pace (step 0, then the median step per step, "
               "as time_to_target_s counts it), one panel per model, evaluated every --eval-every steps outside the "
               "training clock; the dotted line is the target accuracy.")
    if seeds > 1:
        caption += f" Lines are the mean over {seeds} seeds, bands the lowest to the highest seed."
    if data.empty:
        caption = "No accuracy curve in this run (synthetic data)."
    return Chart("time_to_accuracy", "Time to accuracy", caption, _svg(fig), data)


def chart_memory(df: pd.DataFrame) -> Chart:
    plt = _matplotlib()
    data = per_case(_ok(df))[["model", "adapter", "cpu_rss_peak_mb", "gpu_mem_peak_mb", "gpu_allocator_peak_mb"]]
    gpu = data["gpu_mem_peak_mb"].notna().any()
    panels = [("cpu_rss_peak_mb", "CPU peak RSS (MB)")] + ([("gpu_mem_peak_mb", "GPU memory, NVML (MB)")] if gpu else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(CHART_WIDTH_IN, 0.8 + CHART_ROW_IN * len(data)), squeeze=False)
    colors = _colors(list(dict.fromkeys(data["adapter"])))
    labels = [f"{m} · {a}" for m, a in zip(data["model"], data["adapter"], strict=True)]
    for ax, (col, label) in zip(axes[0], panels, strict=True):
        ax.barh(range(len(data)), data[col].fillna(0), color=[colors[a] for a in data["adapter"]])
        ax.set_yticks(range(len(data)), labels if ax is axes[0][0] else [""] * len(data))
        ax.invert_yaxis()
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    caption = "Peak resident memory of each case's process (framework import included)" + (
        "; GPU: the process's own memory from NVML." if gpu else "; no GPU memory was measured in this run.")
    return Chart("memory", "Memory", caption, _svg(fig), data)


def chart_phases(df: pd.DataFrame) -> Chart:
    plt = _matplotlib()
    data = per_case(_ok(df))[["model", "adapter", "forward_ms", "backward_ms", "optimizer_ms"]].dropna()
    if data.empty:  # the split runs only where asked for: say so instead of drawing empty axes
        fig, ax = plt.subplots(figsize=(CHART_WIDTH_IN, 0.6))
        ax.axis("off")
        ax.text(0, 0.5, "not measured in this run", fontsize=9, va="center")
        return Chart("phases", "Forward / backward / optimizer", "The split of a step is measured only where asked "
                     "for (run --phases; on in the smoke matrix): it costs about 18 steps' time per case.", _svg(fig), data)
    fig, ax = plt.subplots(figsize=(CHART_WIDTH_IN, 0.8 + CHART_ROW_IN * max(1, len(data))))
    left = np.zeros(len(data))
    for col, color in (("forward_ms", "#4c72b0"), ("backward_ms", "#dd8452"), ("optimizer_ms", "#55a868")):
        vals = data[col].clip(lower=0).to_numpy()
        ax.barh(range(len(data)), vals, left=left, color=color, label=col.replace("_ms", ""))
        left += vals
    ax.set_yticks(range(len(data)), [f"{m} · {a}" for m, a in zip(data["model"], data["adapter"], strict=True)])
    ax.invert_yaxis()
    ax.set_xlabel("ms per step")
    ax.legend(fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return Chart("phases", "Forward / backward / optimizer", "Split of a step, from interleaved synchronized calls "
                 "measured after training (differences of medians).", _svg(fig), data)


def chart_sweeps(df: pd.DataFrame) -> Chart | None:
    """One row per swept axis and model family: step time against the axis on log-log axes, one line per
    adapter with its fitted exponent, the crossovers marked; beside it, memory against the axis."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    from bench.stats.scaling import FLOP_EXPONENT, sweep_series

    found = sweep_series(df)
    if not found:
        return None
    plt = _matplotlib()
    fig, axes = plt.subplots(len(found), 2, figsize=(CHART_WIDTH_IN, 0.4 + 2.8 * len(found)), squeeze=False,
                             gridspec_kw={"width_ratios": [2, 1]})
    colors = _colors(list(dict.fromkeys(a for s in found for a in s.times)))
    rows = []
    for (ax, mem_ax), s in zip(axes, found, strict=True):
        fits = s.fits  # a property that fits every adapter: once per series
        for a, times in s.times.items():
            fit = fits[a]
            label = a if fit is None else f"{a}: b = {fit.exponent:.2f}" + (
                f" [{fit.low:.2f}, {fit.high:.2f}]" if fit.low is not None else "")
            ax.plot(s.values, [t if t is not None else np.nan for t in times], marker="o", markersize=3.5,
                    color=colors[a], label=label)
            mem_ax.plot(s.values, [m if m is not None else np.nan for m in s.memory[a]], marker="o", markersize=3,
                        color=colors[a])
            rows += [{"axis": s.axis, "family": s.family, "adapter": a, "value": v, "step_time_ms": t,
                      "memory_mb": m} for v, t, m in zip(s.values, times, s.memory[a], strict=True)]
        for c in s.crossings:
            ax.axvline(c.at, color="#888", lw=0.8, ls=":")
            ax.annotate(f"{c.below} | {c.above}\n~{c.at:,.0f}", (c.at, ax.get_ylim()[1]), fontsize=7, ha="center",
                        va="top", xytext=(0, -2), textcoords="offset points")
        for a_ in (ax, mem_ax):
            a_.set_xscale("log", base=2)
            a_.set_xticks(s.values, [f"{v:,}" for v in s.values])  # the swept values, not powers of two
            a_.xaxis.set_minor_formatter(NullFormatter())
            a_.set_xlabel(s.axis)
            a_.grid(alpha=0.3, which="both")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else ""))
        ax.set_ylabel("ms per step")
        ax.set_title(f"{s.family}", fontsize=8.5)
        ax.legend(fontsize=7, frameon=False, title=f"b: fitted exponent (FLOP model {FLOP_EXPONENT.get(s.axis, 0):g})",
                  title_fontsize=7)
        mem_ax.set_ylabel(s.memory_label, fontsize=8)
    fig.tight_layout()
    caption = ("Step time against each swept axis (log-log), one line per adapter with the least-squares exponent b "
               "and its 95% interval; dotted lines mark where the fastest adapter changes (interpolated). Right: "
               "peak memory against the same axis.")
    return Chart("sweeps", "Sweeps: cost curves", caption, _svg(fig), pd.DataFrame(rows))


def chart_compare(results) -> Chart:
    plt = _matplotlib()
    rows = [r for r in results if r.field == "step_time_ms_median" and r.ratio is not None]
    data = pd.DataFrame([{"case_id": r.case_id, "ratio": r.ratio, "ci_low": r.ci_low, "ci_high": r.ci_high,
                          "verdict": r.verdict} for r in rows], columns=["case_id", "ratio", "ci_low", "ci_high", "verdict"])
    fig, ax = plt.subplots(figsize=(CHART_WIDTH_IN, 0.8 + CHART_ROW_IN * max(1, len(data))))
    colors = {"regression": "#d62728", "improvement": "#2ca02c"}
    for i, r in data.iterrows():
        lo = r["ratio"] - (r["ci_low"] if pd.notna(r["ci_low"]) else r["ratio"])
        hi = (r["ci_high"] if pd.notna(r["ci_high"]) else r["ratio"]) - r["ratio"]
        ax.errorbar([r["ratio"]], [i], xerr=[[lo], [hi]], fmt="o", color=colors.get(r["verdict"], "#555"), capsize=2)
    ax.axvline(1.0, color="#888", lw=0.8)
    ax.set_yticks(range(len(data)), data["case_id"])
    ax.invert_yaxis()
    ax.set_xlabel("step time, second run / first run (95% interval)")
    ax.grid(axis="x", alpha=0.3)
    return Chart("compare", "Second run against the first", "`bench compare` of the second run against the first: "
                 "ratio of step times with its interval; red = regression, green = improvement.", _svg(fig), data)


CHARTS: tuple[Callable[[pd.DataFrame], Chart], ...] = (
    chart_step_time, chart_first_step, chart_throughput, chart_accuracy_vs_time, chart_time_to_accuracy,
    chart_memory, chart_phases,
)

TABLE_COLUMNS = table_columns()  # the columns declared with table=True (bench/results/columns.py)

SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0], rows = Array.from(body.rows);
    var asc = th.dataset.order !== 'asc'; th.dataset.order = asc ? 'asc' : 'desc';
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
document.body.dataset.chartsRendered = Array.from(document.querySelectorAll('figure.chart svg'))
  .filter(function (s) { var b = s.getBoundingClientRect(); return b.width > 0 && b.height > 0; }).length;
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ddd; }
figure.chart { margin: 1em 0 2em; } figure.chart svg { max-width: 100%; height: auto; }
figcaption { font-size: .85em; color: #555; }
table { border-collapse: collapse; font-size: .8em; } td, th { padding: 2px 6px; border-bottom: 1px solid #eee; }
th { cursor: pointer; background: #f5f5f5; position: sticky; top: 0; } td.num { text-align: right; }
.note { background: #fff8e1; padding: .4em .8em; border-left: 3px solid #f0b400; margin: .4em 0; font-size: .9em; }
.bad { color: #c00; font-weight: bold; } dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }
dt { font-weight: bold; }
"""


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return '<td data-v=""></td>'
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        text = f"{value:,.4g}" if isinstance(value, (float, np.floating)) else f"{value:,}"
        return f'<td class="num" data-v="{float(value)}">{text}</td>'
    text = html.escape(str(value))
    return f'<td data-v="{text}">{text}</td>'


def cases_table(df: pd.DataFrame) -> str:
    cols = [c for c in TABLE_COLUMNS if c in df]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(_cell(r[c]) for c in cols) + "</tr>" for _, r in df.iterrows())
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def environment_html(meta: dict[str, Any]) -> str:
    env = meta.get("environment") or {}
    items = {
        "run": meta.get("run_id"), "matrix": meta.get("matrix"), "command": " ".join(map(str, meta.get("command") or [])),
        "dataset": (meta.get("dataset") or {}).get("origin"), "threads": meta.get("threads"),
        "executor": meta.get("executor"), "python": env.get("python"), "cpu": f"{env.get('cpu_model')} ({env.get('cpu_cores')} cores)",
        "gpu": json.dumps((env.get("gpu") or {}).get("gpus") or (env.get("gpu") or {}).get("reason")),
        "git": f"{(env.get('git') or {}).get('commit')} (dirty: {(env.get('git') or {}).get('dirty')})",
        "packages": ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items() if v),
        "SGEMM": f"{(meta.get('calibration') or {}).get('sgemm_gflops', float('nan')):.0f} GFLOP/s",
    }
    return "<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in items.items()) + "</dl>"


def render(runs: list[tuple[pd.DataFrame, dict[str, Any]]], comparison=None,
           history: Chart | None = None) -> tuple[str, list[Chart]]:
    """The page for one run (or two: the second compared with the first) and the charts it holds."""
    df, meta = runs[-1]
    charts = [make(df) for make in CHARTS]
    if history is not None:
        charts.append(history)
    sweeps = chart_sweeps(df)
    if sweeps is not None:
        charts.insert(0, sweeps)
    if comparison is not None:
        charts.append(chart_compare(comparison))
    notes = list(meta.get("notices") or []) + differences(df)
    bad = df[~df["status"].map(is_timed)]
    inconclusive = int((df["status"] == Status.INCONCLUSIVE).sum())
    title = f"rnnbench {meta.get('matrix', '')} on {(meta.get('dataset') or {}).get('name', '')}: {meta.get('run_id', '')}"
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
             f"<p>{len(df)} case processes, {len(bad)} not ok"
             + (f", {inconclusive} inconclusive (learning not shown)" if inconclusive else "")
             + (f"; second run compared with the first ({html.escape(str(runs[0][1].get('run_id')))})" if comparison is not None else "")
             + "</p>"]
    parts += [f'<p class="note">{html.escape(_plain(n))}</p>' for n in notes]
    if len(bad):
        parts.append("<p class='bad'>not ok: " + ", ".join(html.escape(f"{r.case_id} ({r.status})") for r in bad.itertuples())
                     + "</p>")
    for c in charts:
        parts.append(f'<h2 id="{c.key}">{html.escape(c.title)}</h2><figure class="chart" data-chart="{c.key}">'
                     f"{c.svg}<figcaption>{html.escape(c.caption)}</figcaption></figure>")
    parts += ["<h2>Environment</h2>", environment_html(meta), "<h2>All cases</h2>", cases_table(df),
              f"<script>{SORT_SCRIPT}</script></body></html>"]
    return "\n".join(parts), charts


def _plain(text: str) -> str:
    """Rich markup out of a note meant for the terminal."""
    import re

    return re.sub(r"\[/?[a-z ]*\]", "", str(text))
