"""`python -m bench find GOOD BAD`: the first commit between two revisions that made a step slower.

A binary search over the first-parent commits after GOOD up to BAD, with `bench ab` against GOOD as the
test at each step: the same matrix, threshold, alpha and adaptive rounds as the gate (bench/stats/ab.py,
bench/stats/sequential.py). A commit is bad when any case of the matrix is a regression against GOOD.
BAD is measured first: if it is not slower than GOOD there is nothing to find. Every worktree is removed
on any exit (as `ab` does), Ctrl-C included, and by the next `ab` or `find` after a kill.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.cli.ab import _case_args, _validate_gate, add_gate_options, measure
from bench.core.errors import EXIT_CASE_FAILED, EXIT_OK, BenchInputError
from bench.stats.ab import Side, first_parent_path, is_ancestor, plan_side, resolve_revision, worktrees


def add_find_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("good", help="a revision whose step times are the reference (e.g. a release tag)")
    p.add_argument("bad", help="a later revision that is slower (GOOD must be its ancestor)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    add_gate_options(p)


def cmd_find(args: argparse.Namespace, console: Console) -> int:
    import sys

    threshold = _validate_gate(args)
    good, bad = resolve_revision(args.good), resolve_revision(args.bad)
    if good == bad:
        raise BenchInputError(f"GOOD {args.good!r} and BAD {args.bad!r} are the same commit ({good[:9]})")
    if not is_ancestor(good, bad):
        raise BenchInputError(f"GOOD {args.good!r} ({good[:9]}) is not an ancestor of BAD {args.bad!r} ({bad[:9]}); "
                              "give an older GOOD on BAD's history (git merge-base GOOD BAD is one)")
    path = first_parent_path(good, bad)
    err = Console(stderr=True)
    err.print(escape(f"find: {len(path)} commits after {args.good} ({good[:9]}) up to {args.bad} ({bad[:9]}); "
                     f"at most {1 + max(0, (len(path) - 1).bit_length())} ab runs against {args.good}"))
    steps: list[dict] = []
    case_args = _case_args(args)
    with worktrees() as checkout:
        base = Side("base", f"{args.good} ({good[:9]})", checkout("good", good), sys.executable)
        base_plan = plan_side(base, case_args)

        def test(index: int) -> bool:
            commit = path[index]
            head = Side("head", f"{commit[:9]}", checkout(f"c{len(steps)}", commit), sys.executable)
            plans = {"base": base_plan, "head": plan_side(head, case_args)}
            _, results, _, _, _ = measure({"base": base, "head": head}, plans, args, threshold, err)
            timed = [r for r in results if r.ratio is not None]
            worst = max(timed, key=lambda r: r.ratio) if timed else None
            slower = [r for r in results if r.verdict == "regression"]
            steps.append({"commit": commit, "bad": bool(slower), "worst_case": worst.case_id if worst else None,
                          "ratio": worst.ratio if worst else None, "p_value": worst.p_value if worst else None,
                          "regressions": [r.case_id for r in slower]})
            err.print(escape(f"  {commit[:9]}: {'BAD' if slower else 'good'}"
                             + (f" (worst {worst.case_id}: x{worst.ratio:.3f}, p={worst.p_value:.2g})" if worst else "")))
            return bool(slower)

        first_bad = None
        if test(len(path) - 1):
            lo, hi = -1, len(path) - 1  # lo: the last known good (-1 = GOOD), hi: the first known bad
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if test(mid):
                    hi = mid
                else:
                    lo = mid
            first_bad = path[hi]
    out = Path(args.out) / "find"
    out.mkdir(parents=True, exist_ok=True)
    record = out / f"find-{good[:9]}-{bad[:9]}.json"
    record.write_text(json.dumps({"good": good, "bad": bad, "path": path, "steps": steps, "first_bad": first_bad,
                                  "threshold_pct": threshold.pct, "alpha": args.alpha}, indent=2, default=str))
    found = next((s for s in steps if s["commit"] == first_bad), None)
    if args.format == "json":
        print(json.dumps({"first_bad": first_bad, "steps": steps}, indent=2, default=str))
        return EXIT_CASE_FAILED if first_bad else EXIT_OK
    table = Table(title=f"find: the path from {args.good} to {args.bad}", header_style="bold")
    for col in ("commit", "verdict", "worst case", "ratio", "p"):
        table.add_column(col, justify="right" if col in ("ratio", "p") else "left")
    for s in steps:
        table.add_row(s["commit"][:9], "[bold red]bad[/]" if s["bad"] else "[green]good[/]", s["worst_case"] or "-",
                      f"{s['ratio']:.3f}" if s["ratio"] else "-", f"{s['p_value']:.2g}" if s["p_value"] is not None else "-")
    console.print(table)
    if first_bad is None:
        console.print(f"[green]{args.bad} is not slower than {args.good} by more than {threshold.pct:g}%: nothing to find[/]")
        return EXIT_OK
    console.print(f"[bold red]first bad commit: {first_bad}[/] (x{found['ratio']:.3f} on {found['worst_case']}, "
                  f"p={found['p_value']:.2g}; regressions: {', '.join(found['regressions'])}); record: {record}")
    return EXIT_CASE_FAILED
