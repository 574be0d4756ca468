"""`bench report` and `run --report`: load the runs, compare two, write the page atomically."""

from __future__ import annotations

from pathlib import Path

from bench.results.store import atomic_write_bytes, load_results


def write_report(runs: list[Path], output: Path) -> tuple[Path, int]:
    """Write the HTML report of `runs` (one, or two: the second compared with the first)."""
    from bench.render.html import render
    from bench.stats import compare

    loaded = [load_results(r) for r in runs]
    comparison = None
    if len(loaded) == 2:
        (b, bm), (c, cm) = loaded
        comparison = compare.compare_runs(b, c, [compare.Threshold.parse(compare.DEFAULT_FAIL)], bm, cm)
    page, charts = render(loaded, comparison)
    atomic_write_bytes(output, page.encode("utf-8"))
    return output, len(charts)
