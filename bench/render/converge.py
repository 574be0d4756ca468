"""The convergence-agreement table of `bench converge` (bench/stats/converge.py).

It fits 80 columns without cutting a number: the parts of the model key that every row shares, the pair of
adapters where there is one, the tests and the margins go to the title and the caption, and each row keeps
its figures and its verdict (the reasons under the table).
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

VERDICT_STYLE = {"agree": "green", "differ": "bold red", "inconclusive": "yellow"}


def _labels(models: list[str]) -> tuple[list[str], str]:
    """Each model key without the '/'-parts every key shares, and those shared parts."""
    parts = [m.split("/") for m in models]
    width = min((len(p) for p in parts), default=0)
    shared = [j for j in range(1, width) if len({p[j] for p in parts}) == 1]
    labels = ["/".join(x for j, x in enumerate(p) if j not in shared) for p in parts]
    return labels, "/".join(parts[0][j] for j in shared) if parts else ""


def _gap(m, scale: float) -> str:
    if m is None:
        return ""
    mark = {"agree": "", "differ": "!", "inconclusive": "?"}[m.verdict]
    return f"{scale * m.mean_gap:+.2g}{mark}"


def agreement_table(found: list, alpha: float, margins: dict[str, float]) -> Table:
    """One row per model and adapter pair: each curve's mean gap, the tests' p, where the curves part, the verdict."""
    labels, shared = _labels([a.model for a in found])
    pairs = {(a.other, a.reference) for a in found}
    one_pair = len(pairs) == 1
    title = "convergence agreement" + (f": {next(iter(pairs))[0]} against {next(iter(pairs))[1]}" if one_pair else "")
    table = Table(title=title + (f" ({shared})" if shared else ""), header_style="bold", show_edge=False,
                  pad_edge=False, collapse_padding=True, caption_justify="left")
    columns = ["model"] + ([] if one_pair else ["vs"]) + ["n", "loss", "acc pt", "p diff", "p eq", "part",
                                                         "verdict"]
    for col in columns:
        table.add_column(col, justify="left" if col in ("model", "vs", "verdict") else "right", no_wrap=True)
    notes = []
    for label, a in zip(labels, found, strict=True):
        metrics = {m.metric: m for m in a.metrics}
        p_equal = max((m.p_equivalent for m in a.metrics), default=None)  # agreement needs every metric
        row = [label] + ([] if one_pair else [f"{a.other} vs {a.reference}"]) + [
            str(a.seeds), _gap(metrics.get("test loss"), 1.0), _gap(metrics.get("test accuracy"), 100.0),
            "" if a.p_value is None else f"{a.p_value:.2g}", "" if p_equal is None else f"{p_equal:.2g}",
            "" if a.parted_at is None else str(a.parted_at), f"[{VERDICT_STYLE[a.verdict]}]{a.verdict}[/]"]
        table.add_row(*row)
        dropped = "; ".join(f"{name} seed(s) {', '.join(map(str, seeds))} not in both" for name, seeds in a.dropped.items())
        why = "; ".join(r for r in (a.reason, dropped) if r)
        if why:
            notes.append(f"{label}: {why}")
    table.caption = (f"n: seeds in both; loss, acc pt: the gap (other - reference), the mean over seeds of each "
                     f"seed's mean along the curve, accuracy in points; agree: the gap shown within the margin (TOST: "
                     f"p eq; loss {margins['test loss']:g}, accuracy {100 * margins['test accuracy']:g} pt), differ: "
                     f"a t-test over seeds (p diff, Holm over the two curves), alpha {alpha:g}; a gap marked ! "
                     "differs, ? neither; part: the first step where the curves part by more than the seed spread"
                     + "".join(f"\n{n}" for n in notes))
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
