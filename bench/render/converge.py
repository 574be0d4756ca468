"""The convergence-agreement table of `bench converge` (bench/stats/converge.py)."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table

VERDICT_STYLE = {"agree": "green", "differ": "bold red", "inconclusive": "yellow"}


def _gap(m, scale: float, unit: str) -> str:
    ratio = "inf" if math.isinf(m.ratio) else f"{m.ratio:.2f}"
    return f"{scale * m.largest:.3g}{unit} / {scale * m.spread:.3g}{unit} = {ratio}"


def agreement_table(found: list, alpha: float) -> Table:
    """One row per model and adapter pair: the largest gap of each curve against the between-seed spread,
    the test's p, where the curves part, and the verdict."""
    table = Table(title=f"convergence agreement: the same weights and batches; curves compared with the spread "
                  f"between seeds (p: t-test over seeds, Holm over the two curves; alpha {alpha:g})",
                  header_style="bold", show_edge=False, pad_edge=False)
    for col in ("model", "vs", "seeds", "loss: largest gap / seed spread", "acc (pts): gap / spread", "p",
                "part at step", "verdict"):
        table.add_column(col, justify="left" if col in ("model", "vs", "verdict") else "right", no_wrap=col != "verdict")
    for a in found:
        metrics = {m.metric: m for m in a.metrics}
        loss, acc = metrics.get("test loss"), metrics.get("test accuracy")
        table.add_row(
            a.model, f"{a.other} vs {a.reference}", str(a.seeds),
            _gap(loss, 1.0, "") if loss else "", _gap(acc, 100.0, "") if acc else "",
            "" if a.p_value is None else f"{a.p_value:.2g}",
            "" if a.parted_at is None else str(a.parted_at),
            f"[{VERDICT_STYLE[a.verdict]}]{a.verdict}[/]" + (f" ({a.reason})" if a.reason else ""),
        )
    return table


def agreement_rows(found: list) -> list[dict[str, Any]]:
    """The verdicts as plain data (converge --format json)."""
    return [{"model": a.model, "reference": a.reference, "other": a.other, "seeds": a.seeds,
             "evaluations": a.evaluations, "p_value": a.p_value, "parted_at": a.parted_at, "verdict": a.verdict,
             "reason": a.reason,
             "metrics": [{"metric": m.metric, "largest_gap": m.largest, "seed_spread": m.spread, "at_step": m.at_step,
                          "parted_at": m.parted_at, "p_value": m.p_value} for m in a.metrics]} for a in found]
