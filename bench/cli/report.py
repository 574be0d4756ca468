"""`bench report` and `run --report`: load the runs, compare two, write the page atomically."""

from __future__ import annotations

from pathlib import Path

from bench.results.store import atomic_write_bytes, load_results


def write_report(runs: list[Path], output: Path, history: list[str] | None = None) -> tuple[Path, int]:
    """Write the HTML report of `runs` (one, or two: the second compared with the first); with `history`
    (directories of earlier runs), the trend of the last run's cases on its machine, change points marked."""
    from bench.render.html import render
    from bench.stats import compare

    loaded = [load_results(r) for r in runs]
    comparison = None
    if len(loaded) == 2:
        (b, bm), (c, cm) = loaded
        comparison = compare.compare_runs(b, c, [compare.Threshold.parse(compare.DEFAULT_FAIL)], bm, cm)
    page, charts = render(loaded, comparison, history_chart(runs[-1], history) if history else None)
    atomic_write_bytes(output, page.encode("utf-8"))
    return output, len(charts)


def history_chart(run: Path, history: list[str]):
    """The history chart of the run's cases on the run's own machine (bench/results/history.py)."""
    from bench.render.history import history_svg
    from bench.render.html import Chart
    from bench.results.history import load_history, points_from_runs
    from bench.stats.changes import analyse

    own = points_from_runs([Path(run)])
    points = load_history([*history, str(run)], cases=list(own["case_id"].unique()))
    points = points[points["fingerprint"].isin(set(own["fingerprint"]))]
    found = analyse(points)
    return Chart("history", "History", f"Step time of this run's cases over {points['run_id'].nunique()} runs on this "
                 "machine, in commit order; dashed lines mark change points (bench history), with the size and the "
                 "first commit after each.", history_svg(found), points)
