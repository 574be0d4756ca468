"""The convergence-agreement table of `bench converge` (bench/stats/converge.py)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

VERDICT_STYLE = {"agree": "green", "differ": "bold red", "inconclusive": "yellow"}


def _metric(m, scale: float) -> str:
    """'-0.004 (agree)': the mean gap over seeds, in the metric's unit (accuracy in points), with its verdict."""
    return f"{scale * m.mean_gap:+.3g} [{VERDICT_STYLE[m.verdict]}]{m.verdict}[/]"


def agreement_table(found: list, alpha: float, margins: dict[str, float]) -> Table:
    """One row per model and adapter pair: each curve's mean gap with its verdict, the tests' p, where the
    curves part, and the verdict."""
    table = Table(title=f"convergence agreement: the same weights and batches (agree: the mean gap shown within "
                  f"the margin, TOST; differ: a t-test over seeds, Holm over the two curves; alpha {alpha:g}; "
                  f"margins: loss {margins['test loss']:g}, accuracy {100 * margins['test accuracy']:g} pts)",
                  header_style="bold", show_edge=False, pad_edge=False)
    for col in ("model", "vs", "seeds", "loss gap", "acc gap (pts)", "p differ", "p equal", "part at step", "verdict"):
        table.add_column(col, justify="left" if col in ("model", "vs", "verdict") else "right", no_wrap=col != "verdict")
    for a in found:
        metrics = {m.metric: m for m in a.metrics}
        loss, acc = metrics.get("test loss"), metrics.get("test accuracy")
        p_equal = max((m.p_equivalent for m in a.metrics), default=None)  # agreement needs every metric
        dropped = "; ".join(f"{name} seed(s) {', '.join(map(str, seeds))} not in both" for name, seeds in a.dropped.items())
        why = "; ".join(r for r in (a.reason, dropped) if r)
        table.add_row(
            a.model, f"{a.other} vs {a.reference}", str(a.seeds),
            _metric(loss, 1.0) if loss else "", _metric(acc, 100.0) if acc else "",
            "" if a.p_value is None else f"{a.p_value:.2g}",
            "" if p_equal is None else f"{p_equal:.2g}",
            "" if a.parted_at is None else str(a.parted_at),
            f"[{VERDICT_STYLE[a.verdict]}]{a.verdict}[/]" + (f" ({why})" if why else ""),
        )
    return table


def agreement_rows(found: list) -> list[dict[str, Any]]:
    """The verdicts as plain data (converge --format json)."""
    return [{"model": a.model, "reference": a.reference, "other": a.other, "seeds": a.seeds,
             "evaluations": a.evaluations, "p_value": a.p_value, "parted_at": a.parted_at, "verdict": a.verdict,
             "reason": a.reason, "dropped_seeds": a.dropped,
             "metrics": [{"metric": m.metric, "mean_gap": m.mean_gap, "margin": m.margin, "verdict": m.verdict,
                          "p_equivalent": m.p_equivalent, "largest_gap": m.largest, "seed_spread": m.spread,
                          "at_step": m.at_step, "parted_at": m.parted_at, "p_value": m.p_value}
                         for m in a.metrics]} for a in found]
