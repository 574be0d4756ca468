"""Rendering only: results DataFrames -> rich tables. Nothing here measures or writes files."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from bench.core.status import is_timed, styled
from bench.results.columns import BY_NAME


def _num(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, fmt)


def _pct(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}%"


def run_table(df: pd.DataFrame, title: str = "rnnbench results") -> Table:
    """One row per case, models grouped so the frameworks of one model sit side by side."""
    table = Table(title=title, show_lines=False, header_style="bold")
    cols = [
        ("model", "left"),
        ("adapter", "left"),
        ("params", "right"),
        ("test acc", "right"),
        ("ms/step", "right"),
        ("p10-p90", "right"),
        ("cv", "right"),
        ("1st step ms", "right"),
        ("samples/s", "right"),
        ("RSS MB", "right"),
        ("GPU MB", "right"),
        ("status", "left"),
    ]
    for name, justify in cols:
        table.add_column(name, justify=justify, no_wrap=name in ("model", "adapter"))
    if df.empty:
        return table
    # case_id is adapter/model/batch/dataset/seed: group on everything but the adapter, show the
    # model key, and the rest only where it varies within the run.
    parts = df["case_id"].str.split("/")
    varying = [i for i in (2, 3, 4) if parts.str[i].nunique() > 1]
    label = parts.map(lambda p: "/".join([p[1]] + [p[i] for i in varying]))
    if "label" in df:  # named cases (reference cases, user files) show their name first
        label = [f"{n}: {m}" if isinstance(n, str) and n else m for n, m in zip(df["label"], label, strict=True)]
    order = df.assign(_model=label).sort_values(["_model", "adapter"])
    previous = None
    for _, r in order.iterrows():
        model = r["_model"]
        if previous is not None and model != previous:
            table.add_section()
        previous = model
        status = r["status"]
        table.add_row(
            model,
            r["adapter"],
            _num(r["params"], ",.0f"),
            _pct(r["test_accuracy"]),
            _num(r["step_time_ms_median"], ".2f"),
            f"{_num(r['step_time_ms_p10'], '.2f')}-{_num(r['step_time_ms_p90'], '.2f')}",
            _num(r["step_time_cv"], ".3f"),
            _num(r["first_step_ms"], ".0f"),
            _num(r["throughput_samples_per_s"], ",.0f"),
            _num(r["cpu_rss_peak_mb"], ",.0f"),
            _num(r["gpu_mem_peak_mb"], ",.0f"),
            styled(status),
        )
    return table


def columns_table(df: pd.DataFrame, columns: tuple[str, ...], title: str) -> Table:
    """The per-case table with the columns a user named (`show --columns`)."""
    from bench.core.errors import BenchInputError

    unknown = [c for c in columns if c not in df.columns]
    if unknown:
        raise BenchInputError(f"--columns: unknown column(s) {', '.join(map(repr, unknown))}; the columns are listed "
                              "in docs/columns.md, e.g. case_id, step_time_ms_median, test_accuracy, kernel_path")
    table = Table(title=title, header_style="bold")
    for c in columns:
        table.add_column(c, justify="right" if pd.api.types.is_numeric_dtype(df[c]) else "left", no_wrap=True)
    for _, r in df.iterrows():
        table.add_row(*(styled(r[c]) if c == "status" else _cell_text(r[c], _fmt(c)) for c in columns))
    return table


def _fmt(column: str) -> str:
    declared = BY_NAME.get(column)
    return declared.fmt if declared and declared.fmt else ".4g"


def _cell_text(v: Any, fmt: str = ".4g") -> str:
    if isinstance(v, float):
        return _num(v, fmt)
    if isinstance(v, (tuple, list)):
        return f"[{len(v)} values]"
    return "-" if v is None or v is pd.NA else str(v)


def problems_table(df: pd.DataFrame) -> Table | None:
    """Cases that did not finish ok, with the last line of their error (inconclusive ones finished: the view's
    notes name them)."""
    bad = df[~df["status"].map(is_timed)]
    if bad.empty:
        return None
    table = Table(title="cases that did not finish ok", header_style="bold")
    table.add_column("case")
    table.add_column("status")
    table.add_column("error (last line; full tail in the results)")
    for _, r in bad.iterrows():
        err = (r["error"] or "").strip().splitlines()
        table.add_row(r["case_id"], styled(r["status"]), err[-1] if err else "")
    return table


def notes(df: pd.DataFrame) -> list[str]:
    """Caveats a reader needs next to the table."""
    out = []
    if not df.empty and (df["dataset"] == "synthetic").any():
        out.append("synthetic data: accuracy is not reported (labels are random).")
    gpu_reasons = df["gpu_mem_reason"].dropna().unique() if "gpu_mem_reason" in df else []
    if len(gpu_reasons):
        out.append("gpu memory: " + "; ".join(sorted(set(map(str, gpu_reasons)))[:3]))
    if not df.empty and {"keras", "torch"} <= set(df["adapter"]) and (df["cell"] != "gru").any():
        out.append(
            "params: PyTorch keeps two biases per gate (b_ih, b_hh), Keras one, so PyTorch has +H per "
            "SimpleRNN and +4H per LSTM layer and direction; Keras' GRU (reset_after=True) keeps two, so GRU counts match."
        )
    return out


def print_run(df: pd.DataFrame, console: Console | None = None, title: str = "rnnbench results") -> None:
    console = console or Console()
    console.print(run_table(df, title))
    problems = problems_table(df)
    if problems is not None:
        console.print(problems)
    for line in notes(df):
        console.print(f"[dim]note: {line}[/]")
    from bench.render.view import break_even_notes

    for line in break_even_notes(df):
        console.print(f"note: {line}")


VERDICT_STYLE = {
    "regression": "bold red",
    "missing": "bold red",
    "inconclusive": "yellow",
    "improvement": "green",
    "unchanged": "white",
    "new": "cyan",
}


def _ratio_cells(c) -> tuple[str, str, str]:
    ratio = "-" if c.ratio is None else f"{c.ratio:.3f}"
    interval = "-" if c.ci_low is None else f"[{c.ci_low:.3f}, {c.ci_high:.3f}]"
    p = "-" if c.p_value is None else f"{c.p_value:.2g}"
    return ratio, interval, p


def short_case_ids(ids: list[str]) -> dict[str, str]:
    """Case ids without the parts every id shares (dataset, seed, batch in a typical gate), so tables
    of cases fit the terminal; the full ids stay in the JSON output and the saved files."""
    parts = [i.split("/") for i in ids]
    n = min((len(p) for p in parts), default=0)
    keep = [j for j in range(n) if len({p[j] for p in parts}) > 1 or j < 2]
    return {i: "/".join([p[j] for j in keep] + p[n:]) for i, p in zip(ids, parts, strict=True)}


def _methods_caption(results) -> str | None:
    methods = sorted({c.method for c in results if c.method})
    return "step time: " + "; ".join(methods) if methods else None


# Below this many columns the full table (both sides' medians and a note column) cuts numbers: the verdicts
# then come without the medians (they are in ab.json and --format markdown) and the notes under the table.
AB_FULL_WIDTH = 110


def ab_table(results, title: str, compact: bool = False, rounds: dict[str, int] | None = None,
             width: int | None = None) -> Table:
    """`bench ab`'s verdicts: one row per case (compact: while rounds are still running), with the rounds
    each case took where they differ (adaptive rounds). `width`: the console's; a narrow one gets the
    verdict columns only, with each note under the table, so that no number is cut."""
    narrow = not compact and width is not None and width < AB_FULL_WIDTH
    caption = None if compact else _methods_caption(results)
    short = short_case_ids([c.case_id for c in results])
    if narrow:
        notes = [f"{short[c.case_id]}: {c.note}" for c in results if c.note]
        caption = "\n".join(filter(None, [caption, *notes])) or None
    table = Table(title=title, header_style="bold", caption=caption, caption_justify="left" if narrow else "center",
                  show_edge=not narrow, pad_edge=not narrow)
    names = ("case", "ratio", "95% CI", "p", "verdict") if compact or narrow else \
        ("case", "base ms", "head ms", "ratio", "95% CI", "p", "verdict", "note")
    if rounds and len(set(rounds.values())) > 1:
        names = names[:1] + ("rounds",) + names[1:]
    for name in names:
        table.add_column(name, justify="right" if name in ("base ms", "head ms", "ratio", "p", "rounds") else "left",
                         no_wrap=name != "note")
    for c in results:
        ratio, interval, p = _ratio_cells(c)
        verdict = f"[{VERDICT_STYLE.get(c.verdict, 'white')}]{c.verdict}[/]"
        cells = [short[c.case_id]] + ([str(rounds.get(c.case_id, ""))] if "rounds" in names else [])
        if compact or narrow:
            table.add_row(*cells, ratio, interval, p, verdict)
        else:
            table.add_row(*cells, _num(c.baseline, ".2f"), _num(c.current, ".2f"), ratio, interval, p, verdict, c.note)
    return table


def ab_markdown(results, sides, rounds: str, pct: float, dropped: list[str]) -> str:
    """`bench ab` as a pull-request comment."""
    lines = [
        f"**rnnbench ab**: base `{sides['base'].label}` vs head `{sides['head'].label}`, {rounds}, interleaved; "
        f"a regression is a step-time ratio above {1 + pct / 100:.2f} that is significant.",
        "",
        "| case | base ms | head ms | ratio | 95% CI | p | verdict |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for c in results:
        ratio, interval, p = _ratio_cells(c)
        verdict = f"**{c.verdict}**" if c.verdict in ("regression", "missing") else c.verdict
        note = f" ({c.note})" if c.note else ""
        lines.append(f"| `{c.case_id}` | {_num(c.baseline, '.2f')} | {_num(c.current, '.2f')} | {ratio} | {interval} "
                     f"| {p} | {verdict}{note} |")
    caption = _methods_caption(results)
    if caption:
        lines += ["", caption]
    if dropped:
        lines += ["", "Only in base (not gated): " + ", ".join(f"`{k}`" for k in dropped)]
    return "\n".join(lines)


def compare_table(results, title: str = "baseline vs current") -> Table:
    table = Table(title=title, header_style="bold", caption=_methods_caption(results))
    for name in ("case", "field", "baseline", "current", "ratio", "95% CI", "p", "verdict", "note"):
        table.add_column(name, justify="right" if name in ("baseline", "current", "ratio", "p") else "left")
    for c in results:
        ratio, interval, p = _ratio_cells(c)
        style = VERDICT_STYLE.get(c.verdict, "white")
        table.add_row(
            c.case_id,
            c.field,
            _num(c.baseline, ".3f"),
            _num(c.current, ".3f"),
            ratio,
            interval,
            p,
            f"[{style}]{c.verdict}[/]",
            c.note,
        )
    return table


def compare_markdown(results, env_diffs: list[str]) -> str:
    """A pull-request comment."""
    lines = [
        "| case | field | baseline | current | ratio | 95% CI | p | verdict |",
        "|---|---|---:|---:|---:|---|---:|---|",
    ]
    for c in results:
        ratio, interval, p = _ratio_cells(c)
        verdict = f"**{c.verdict}**" if c.verdict in ("regression", "missing") else c.verdict
        note = f" ({c.note})" if c.note else ""
        lines.append(
            f"| `{c.case_id}` | {c.field} | {_num(c.baseline, '.3f')} | {_num(c.current, '.3f')} | {ratio} "
            f"| {interval} | {p} | {verdict}{note} |"
        )
    caption = _methods_caption(results)
    if caption:
        lines += ["", caption]
    if env_diffs:
        lines += ["", "Environments differ: " + "; ".join(env_diffs)]
    return "\n".join(lines)


def parity_table(rows) -> Table:
    table = Table(title="parity: same weights, same batch -> same logits, loss and SGD update", header_style="bold")
    for name in ("model", "vs", "params", "params note", "max |d logits|", "|d loss|", "max |d update|", "result"):
        table.add_column(name, justify="right" if name.startswith(("max", "|")) else "left")
    for r in rows:
        if not r.compared:
            table.add_row(r.spec_key, f"{r.adapter} vs {r.reference}", "-", "", "-", "-", "-", "[dim]not compared[/]")
            continue
        table.add_row(
            r.spec_key, f"{r.adapter} vs {r.reference}", f"{r.params:,} / {r.reference_params:,}", r.params_note,
            f"{r.logits_diff:.1e}", f"{r.loss_diff:.1e}", f"{r.weights_diff:.1e}",
            "[green]match[/]" if r.ok else "[bold red]MISMATCH[/]",
        )
    notes = sorted({r.note for r in rows if r.note})
    if notes:
        table.caption = "; ".join(notes)
    return table


def reference_table(frame: pd.DataFrame) -> Table:
    """The `seeds` cases: what each tutorial reports beside what this run measured."""
    from bench.planning.references import RATIO_BASE

    table = Table(title="reference cases: measured | reported (docs/reference-cases.md)", header_style="bold")
    for name in ("case", "adapter", "model", "steps", "params", "| reported", "test acc", "| reported",
                 "ms/step", f"x {RATIO_BASE}", "| reported", "status"):
        table.add_column(name, justify="left" if name in ("case", "adapter", "model", "status") else "right",
                         no_wrap=name in ("model", "steps", "status"))
    for r in frame.itertuples():
        steps = _num(r.steps_run, ",.0f")
        if r.shortened:
            steps = f"[yellow]{steps} of {r.reference_steps:,}[/]"
        params = _num(r.params, ",.0f")
        if pd.notna(r.params_match):
            params += " [green]=[/]" if r.params_match else " [bold red]![/]"
        table.add_row(
            r.label, r.adapter, r.model, steps, params, _num(r.reported_params, ",.0f"),
            _pct(r.test_accuracy), r.reported_accuracy_text, _num(r.step_ms, ".2f"), _num(r.ratio_to_base, ".2f"),
            _num(r.reported_ratio_to_base, ".2f"), styled(r.status),
        )
    return table


def print_reference(df: pd.DataFrame, console: Console) -> None:
    """The reference table and its caveats (printed above it), when the run has reference cases."""
    from bench.planning.references import reference_frame, reference_notices

    frame = reference_frame(df)
    if frame.empty:
        return
    for line in reference_notices(frame):
        console.print(f"[bold yellow]note: {line}[/]")
    console.print(reference_table(frame))
