"""`python -m bench history [RUNS ...]`: every saved run as one step-time history per case and machine,
with its change points; `--fail` for a nightly job (bench/results/history.py, bench/stats/changes.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from bench.core.errors import EXIT_CASE_FAILED, EXIT_OK, BenchInputError
from bench.stats.changes import DEFAULT_ALPHA, DEFAULT_MIN_MAGNITUDE, DEFAULT_MIN_SIZE


def add_history_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="*", default=["results/runs"], metavar="RUNS",
                   help="run directories, directories of runs (a CI job's artifacts) or `bench export --format "
                   "pytest-benchmark` files (default: results/runs)")
    p.add_argument("--matrix", help="only runs of this matrix (e.g. ci)")
    p.add_argument("--case", action="append", default=[], metavar="PATTERN",
                   help="only these cases: a case id or a pattern (torch/*), repeatable")
    p.add_argument("--by", default="commit", metavar="ORDER",
                   help="order and name the points by commit (date; default), by version (each case's framework: "
                   "an upgrade at one commit) or by version:PKG (one package's version from meta.json, e.g. "
                   "version:numpy)")
    p.add_argument("--machine", metavar="FINGERPRINT",
                   help="only the series of this machine fingerprint (the table's 'machine' column)")
    p.add_argument("--min-magnitude", type=float, default=DEFAULT_MIN_MAGNITUDE, metavar="FRACTION",
                   help=f"the smallest change reported, relative (default {DEFAULT_MIN_MAGNITUDE:g})")
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help=f"significance level (default {DEFAULT_ALPHA:g})")
    p.add_argument("--min-size", type=int, default=DEFAULT_MIN_SIZE, metavar="POINTS",
                   help=f"the fewest points of a segment: one noisy point is never a change (default {DEFAULT_MIN_SIZE})")
    p.add_argument("--fail", action="store_true",
                   help="exit 1 when a case's newest segment is a significant slowdown (a nightly job's gate)")
    p.add_argument("--plot", metavar="FILE.svg", help="also draw each series with its change points as an SVG file")
    p.add_argument("--format", choices=("table", "json"), default="table")


def _validate(args: argparse.Namespace) -> None:
    if not 0 < args.min_magnitude < 1:
        raise BenchInputError(f"--min-magnitude {args.min_magnitude}: a fraction between 0 and 1, e.g. 0.05")
    if not 0 < args.alpha < 1:
        raise BenchInputError(f"--alpha {args.alpha}: must be between 0 and 1")
    if args.min_size < 2:
        raise BenchInputError(f"--min-size {args.min_size}: at least 2 points per segment")
    from bench.results.history import validate_order

    validate_order(args.by)
    if args.plot and not args.plot.endswith(".svg"):
        raise BenchInputError(f"--plot {args.plot!r}: give a .svg file name")


def cmd_history(args: argparse.Namespace, console: Console) -> int:
    from bench.render.history import history_rows, history_svg, history_table
    from bench.results.history import load_history
    from bench.results.store import atomic_write_bytes
    from bench.stats.changes import analyse

    _validate(args)
    points = load_history(args.runs, args.matrix, args.case, by=args.by)
    if args.machine:
        machines = sorted(set(points["fingerprint"]))
        points = points[points["fingerprint"].str.startswith(args.machine)]
        if points.empty:
            raise BenchInputError(f"--machine {args.machine!r}: no point of that machine; machines here: "
                                  + ", ".join(machines))
    elif args.fail:  # a nightly gate judges one machine's series; several would be several gates
        per_case = points.groupby("case_id")["fingerprint"].nunique()
        mixed = per_case[per_case > 1]
        if len(mixed):
            words = points.drop_duplicates("fingerprint").set_index("fingerprint")["machine"]
            raise BenchInputError(f"--fail: case {mixed.index[0]!r} has points from {mixed.iloc[0]} machines ("
                                  + "; ".join(f"{fp}: {w}" for fp, w in words.items())
                                  + "), whose step times are not one series; choose one with --machine FINGERPRINT")
    found = analyse(points, args.min_size, args.min_magnitude, args.alpha)
    if args.plot:
        atomic_write_bytes(Path(args.plot), history_svg(found).encode("utf-8"))
    slower = [s for s in found if s.newest_is_slowdown]
    if args.format == "json":
        print(json.dumps({"series": history_rows(found, args.by), "failed": bool(args.fail and slower)}, indent=2, default=str))
    else:
        console.print(history_table(found, args.min_magnitude, args.alpha, args.min_size, args.by))
        machines = points.drop_duplicates("fingerprint")
        for _, m in machines.iterrows():
            console.print(f"[dim]machine {m['fingerprint']}: {m['machine']}[/]")
        versions = f", {points['label'].nunique()} versions ({args.by})" if args.by != "commit" else ""
        console.print(f"{len(points)} points from {points['run_id'].nunique()} runs, {points['commit'].nunique()} commits"
                      + versions + (f"; chart: {args.plot}" if args.plot else ""))
        if slower:
            console.print(f"[bold red]{len(slower)} case(s) slower in their newest segment[/]")
    return EXIT_CASE_FAILED if args.fail and slower else EXIT_OK
