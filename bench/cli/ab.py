"""`python -m bench ab BASE [HEAD]`: options, the live display and the verdict (bench/stats/ab.py does the work)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.cli.run import add_case_options, positive_int
from bench.core.errors import EXIT_CASE_FAILED, EXIT_OK, BenchInputError
from bench.execution.executors.local import REPO_ROOT
from bench.stats import compare
from bench.stats.ab import (
    SCHEDULES,
    Side,
    check_python,
    judge,
    new_ab_id,
    pair_cases,
    plan_side,
    resolve_revision,
    run_adaptive,
    save,
    worktrees,
)
from bench.stats.sequential import DEFAULT_MAX_ROUNDS, SequentialRule

# From A/A and injected-slowdown runs of the `ci` matrix on the 2-core CI machine (docs/measurements.md,
# "The gate"): judged on their first K rounds, K = 3 found a 10% slowdown in half of the runs,
# K = 4 in all of them with no A/A failure, and K = 5 only one more case; 4 keeps the CI gate
# within its time budget. A 5% threshold sits above the A/A spread of per-round ratios (1-3%).
DEFAULT_ROUNDS = 4
DEFAULT_FAIL = "step_time_ms_median:5%"
DEFAULT_ALPHA = 0.01
DEFAULT_CV_LIMIT = 0.25
DEFAULT_THREADS = 1
CASE_OPTIONS = ("matrix", "adapters", "cells", "dataset", "data_dir", "epochs", "max_steps", "batch_size", "seed",
                "seeds", "device", "init", "eval_every", "target_accuracy", "threads", "timeout", "precision",
                "jit_compile", "sequence", "timesteps", "features", "sweep", "phases", "inference", "yes")


def add_ab_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("base", nargs="?", help="the base version: a git revision (e.g. HEAD~1, main), or merge-base[:BRANCH] "
                   "(the merge base of HEAD with BRANCH, default the default branch: what a pull request's CI compares "
                   "with); omit it to compare two Python environments of the working tree (--base-python, --python)")
    p.add_argument("head", nargs="?", help="the version under test: a git revision (default: the working tree)")
    p.add_argument("--base", dest="base_option", metavar="REVISION",
                   help="the base version, as the positional BASE (e.g. --base merge-base:main)")
    p.add_argument("--base-python", metavar="PATH", help="the base side's interpreter (default: this one)")
    p.add_argument("--python", metavar="PATH", help="the head side's interpreter (default: this one)")
    p.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    add_gate_options(p)


def add_gate_options(p: argparse.ArgumentParser) -> None:
    """How two versions are measured and judged: shared by `ab` and `find`."""
    p.add_argument("--schedule", choices=SCHEDULES, default="pair",
                   help="pair (default): a round's base and head processes run together, pinned to one core, so the "
                   "machine's slow phases hit both; sequential: one process at a time, A B B A")
    p.add_argument("--cpus", type=_cpu_list, metavar="LIST",
                   help="cores for the pair schedule, one pair per core at a time (default: every usable core)")
    p.add_argument("--rounds", type=positive_int, default=DEFAULT_ROUNDS, metavar="K",
                   help=f"fresh processes per case and side, interleaved, before any case may stop (default "
                   f"{DEFAULT_ROUNDS}; at least 2)")
    p.add_argument("--max-rounds", type=positive_int, default=DEFAULT_MAX_ROUNDS, metavar="M",
                   help=f"rounds a case may grow to while its answer is open (default {DEFAULT_MAX_ROUNDS}; = --rounds "
                   "for a fixed count): each case stops once its interval clears the threshold either way")
    p.add_argument("--fail", default=DEFAULT_FAIL, metavar="step_time_ms_median:PCT",
                   help="the step-time change that fails the gate when significant (default %(default)s)")
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                   help=f"significance level of the paired t-test, over all of a case's looks (default {DEFAULT_ALPHA})")
    p.add_argument("--cv-limit", type=float, default=DEFAULT_CV_LIMIT,
                   help=f"spread of the process medians above which a case is inconclusive (default {DEFAULT_CV_LIMIT})")
    p.add_argument("--out", default="results", help="where the raw data goes: OUT/ab/ID/ (default: results)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    add_case_options(p, default_threads=DEFAULT_THREADS)
    p.set_defaults(matrix="ci")


def _cpu_list(text: str) -> list[int]:
    import os

    usable = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    try:
        cpus = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        cpus = []
    if not cpus or any(c not in usable for c in cpus):
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: give cores this process may use, from "
                                         f"{', '.join(map(str, usable))}, separated by commas")
    return cpus


def _case_args(args: argparse.Namespace) -> list[str]:
    """The case options as `bench plan` of either side reads them (only those given: an older side need not
    know the newer options)."""
    out = []
    for name in CASE_OPTIONS:
        value = getattr(args, name, None)
        if value is None or value is False and name != "inference":
            continue
        flag = "--" + name.replace("_", "-")
        if name == "inference":
            out += [] if value else ["--no-inference"]
        elif value is True:
            out.append(flag)
        elif name == "sweep":
            for sweep in value:
                out += [flag, sweep.text()]
        elif name == "seeds":
            out += [flag, ",".join(map(str, value)) + ("," if len(value) == 1 else "")]  # a list, never a count
        else:
            out += [flag, ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
    return out


def _validate(args: argparse.Namespace) -> compare.Threshold:
    if getattr(args, "base_option", None):
        if args.base is not None:
            raise BenchInputError(f"give the base once: BASE {args.base!r} or --base {args.base_option!r}")
        args.base = args.base_option
    return _validate_gate(args, need_base=True)


def _validate_gate(args: argparse.Namespace, need_base: bool = False) -> compare.Threshold:
    if args.rounds < 2:
        raise BenchInputError(f"--rounds {args.rounds}: at least 2 rounds are needed for a test across processes")
    if args.max_rounds < args.rounds:
        raise BenchInputError(f"--max-rounds {args.max_rounds}: at least --rounds ({args.rounds})")
    if need_base and args.base is None and args.base_python is None:
        raise BenchInputError("give BASE (a git revision, e.g. HEAD~1) or --base-python PATH (another environment)")
    if not 0 < args.alpha < 1:
        raise BenchInputError(f"--alpha {args.alpha}: must be between 0 and 1")
    if not args.cv_limit > 0:
        raise BenchInputError(f"--cv-limit {args.cv_limit}: must be > 0")
    threshold = compare.Threshold.parse(args.fail)
    if threshold.field != "step_time_ms_median":
        raise BenchInputError(f"--fail {args.fail!r}: ab judges step time only; use step_time_ms_median:PCT")
    return threshold


def measure(sides: dict[str, Side], plans: dict[str, dict], args: argparse.Namespace, threshold: compare.Threshold,
            err: Console) -> tuple[list, list[compare.Comparison], dict[str, str], SequentialRule, str]:
    """Both sides' common cases, measured round by round with the adaptive rule, and judged; with the
    live display. Returns (cases, verdicts, each case's last state, the rule, the rounds in words)."""
    from bench.render.tables import ab_table

    cases, dropped, _ = pair_cases(plans["base"], plans["head"])
    if not cases:
        raise BenchInputError("the two sides plan no case in common; nothing to compare")
    ab_id = new_ab_id()
    rule = SequentialRule(args.rounds, args.max_rounds, threshold.pct / 100, args.alpha)
    cpus = args.cpus or _cpu_list(",".join(map(str, sorted(__import__("os").sched_getaffinity(0)))))
    how = "one at a time" if args.schedule == "sequential" else \
        f"in pairs pinned to a core, {len(cpus)} pair(s) at a time on cores {','.join(map(str, cpus))}"
    rounds_text = f"{args.rounds} rounds" if args.max_rounds == args.rounds else \
        f"{args.rounds} to {args.max_rounds} rounds (more only while a case's answer is open)"
    err.print(escape(f"ab {ab_id}: base = {sides['base'].label} ({sides['base'].python}), head = "
                     f"{sides['head'].label} ({sides['head'].python}); {len(cases)} cases x {rounds_text} x 2 "
                     f"sides, {how}"))
    progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=err, disable=args.quiet)

    def on_process(r: int, i: int, side: str, row: dict) -> None:
        progress.update(task, advance=1, description=f"round {r + 1} {cases[i].case_id} {side}")

    def on_round(done: int, states: dict[str, str]) -> None:
        open_now = [c for c in cases if states[c.case_id] == "open"]
        progress.update(task, total=progress.tasks[0].completed + 2 * len(open_now))
        if open_now and not args.quiet:
            partial = [judge(c, threshold.pct, rule.alpha_at(len(c.base.rows)), args.cv_limit) for c in cases]
            progress.console.print(ab_table(partial, f"after {done} rounds: {len(open_now)} case(s) open, "
                                            "another round for them", compact=True))

    with progress:
        task = progress.add_task("starting", total=2 * args.rounds * len(cases))
        states = run_adaptive(sides, cases, rule, ab_id, args.schedule, cpus, on_process, on_round)
    results = [judge(c, threshold.pct, rule.alpha_final, args.cv_limit, states[c.case_id]) for c in cases]
    path = save(Path(args.out) / "ab" / ab_id, sides, cases, results, {
        "threshold_pct": threshold.pct, "alpha": args.alpha, "rounds": args.rounds, "max_rounds": args.max_rounds,
        "alpha_early_looks": rule.alpha_at(args.rounds), "alpha_final": rule.alpha_final, "rounds_run": {c.case_id: len(c.base.rows) for c in cases},
        "states": states, "schedule": args.schedule, "cpus": cpus, "notices": plans["head"].get("notices", []),
        "dropped": dropped, "case_args": _case_args(args)})
    err.print(escape(f"raw data: {path}"))
    return cases, results, states, rule, rounds_text


def cmd_ab(args: argparse.Namespace, console: Console) -> int:
    from bench.render.tables import ab_markdown, ab_table
    from bench.stats.ab import resolve_base

    threshold = _validate(args)
    head_commit = resolve_revision(args.head) if args.head else None
    base_commit, base_label = resolve_base(args.base, head_commit) if args.base else (None, "working tree")
    base_python = check_python(args.base_python, "--base-python") if args.base_python else sys.executable
    head_python = check_python(args.python, "--python") if args.python else sys.executable
    err = Console(stderr=True)
    with worktrees() as checkout:
        sides = {
            "base": Side("base", base_label, checkout("base", base_commit) if base_commit else REPO_ROOT, base_python),
            "head": Side("head", f"{args.head} ({head_commit[:9]})" if head_commit else "working tree",
                         checkout("head", head_commit) if head_commit else REPO_ROOT, head_python),
        }
        case_args = _case_args(args)
        plans = {name: plan_side(side, case_args) for name, side in sides.items()}  # exit 2 before any process
        _, dropped, new = pair_cases(plans["base"], plans["head"])
        cases, results, states, rule, rounds_text = measure(sides, plans, args, threshold, err)
        results += [compare.Comparison(k, "-", "new", note="only head plans it") for k in new]
    failed = compare.gate_failed(results)
    if args.format == "json":
        print(json.dumps({"failed": failed, "dropped": dropped, "comparisons": [r.__dict__ for r in results]},
                         indent=2, default=str))
    elif args.format == "markdown":
        print(ab_markdown(results, sides, rounds_text, threshold.pct, dropped))
    else:
        console.print(ab_table(results, f"{sides['base'].label} -> {sides['head'].label}: {rounds_text} "
                               f"({args.schedule}), regression above +{threshold.pct:g}% at p < "
                               + (f"{rule.alpha:g}" if rule.looks == 1 else
                                  f"{rule.alpha_at(args.rounds):.2g} at the first {rule.looks - 1} looks, "
                                  f"{rule.alpha_final:.2g} at the last ({rule.alpha:g} over {rule.looks} looks)"),
                               rounds={c.case_id: len(c.base.rows) for c in cases}, width=console.width))
        for k in dropped:
            console.print(f"[dim]dropped: {escape(k)} (only base plans it; head's matrix no longer has it)[/]")
        console.print("[bold red]gate failed[/]" if failed else "[green]gate passed[/]")
    return EXIT_CASE_FAILED if failed else EXIT_OK
