"""Command line: `python -m bench run | plan | ab | list | doctor | show | compare | parity | converge | report | export
| baseline`.

Everything is validated before any work starts: bad input exits with code 2, a message naming
the value and the valid choices, and no run directory.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from rich.console import Console
from rich.table import Table

import adapters
from bench import data
from bench.cli.ab import add_ab_options, cmd_ab
from bench.cli.converge import add_converge_options, cmd_converge
from bench.cli.doctor import add_doctor_options, cmd_doctor
from bench.cli.find import add_find_options, cmd_find
from bench.cli.history import add_history_options, cmd_history
from bench.cli.run import adapter_list, add_plan_options, add_run_options, cmd_plan, cmd_run
from bench.core.errors import EXIT_BAD_INPUT, EXIT_CASE_FAILED, EXIT_OK, BenchInputError
from bench.core.status import is_timed
from bench.measure import environment as envinfo
from bench.planning.matrices import MATRICES
from bench.render.tables import compare_markdown, compare_table, print_reference, print_run
from bench.results.store import CSV_FILE, META_FILE, PARQUET_FILE, load_results
from bench.stats import compare

BASELINES = Path("results") / "baselines"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own exit code for usage errors is 2 as well
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m bench", description="Benchmark recurrent models across frameworks.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a benchmark matrix, one process per case")
    add_run_options(run)

    plan = sub.add_parser("plan", help="what `run` would start, without starting it (a dry run; --format json for tools)")
    add_plan_options(plan)

    ab = sub.add_parser("ab", help="gate: two versions (revisions or environments) measured side by side in one job")
    add_ab_options(ab)

    fnd = sub.add_parser("find", help="bisect a step-time regression: the first commit between GOOD and BAD that is "
                         "slower, with ab against GOOD at each step")
    add_find_options(fnd)

    sub.add_parser("list", help="matrices, adapters and datasets, and which are usable here")

    doc = sub.add_parser("doctor", help="what this machine can measure, checked for real (writes nothing)")
    add_doctor_options(doc)

    cmp = sub.add_parser("compare", help="gate: compare a run against a baseline; exit 1 on regression")
    cmp.add_argument("baseline", help="baseline run directory, results.parquet or results.csv")
    cmp.add_argument("current", help="current run directory, results.parquet or results.csv")
    cmp.add_argument(
        "--fail",
        action="append",
        metavar="FIELD:PCT",
        help=f"regression threshold, repeatable (default: {compare.DEFAULT_FAIL.replace('%', '%%')}); fields: {', '.join(compare.FIELDS)}",
    )
    cmp.add_argument(
        "--normalize",
        action="store_true",
        help="divide step times by each run's SGEMM calibration (compare machines of different speed)",
    )
    cmp.add_argument(
        "--alpha",
        type=float,
        default=compare.DEFAULT_ALPHA,
        help=f"significance level of the Mann-Whitney U test (default {compare.DEFAULT_ALPHA})",
    )
    cmp.add_argument(
        "--cv-limit",
        type=float,
        default=compare.DEFAULT_CV_LIMIT,
        help=f"step-time CV above which a case is inconclusive (default {compare.DEFAULT_CV_LIMIT})",
    )
    cmp.add_argument(
        "--same-machine",
        action="store_true",
        help="step times from a different processor or GPU are not judged: their verdicts read inconclusive "
        "(for a committed baseline that CI may meet on another machine type)",
    )
    cmp.add_argument("--format", choices=("table", "markdown", "json"), default="table")

    conv = sub.add_parser("converge", help="same weights, same batches, several frameworks: do the learning curves "
                          "agree within the spread between seeds?")
    add_converge_options(conv)

    hist = sub.add_parser("history", help="every saved run as a step-time history per case and machine, with its "
                          "change points (--fail: exit 1 on a newest slowdown)")
    add_history_options(hist)

    par = sub.add_parser("parity", help="prove every adapter builds the same model: same weights -> same outputs")
    par.add_argument("--adapters", type=adapter_list, help="adapters to compare (default: every installed one)")
    par.add_argument("--seed", type=int, default=0, help="seed of the weights and the batch")

    base = sub.add_parser("baseline", help="save a finished run as a committed baseline (results/baselines/NAME)")
    base.add_argument("run_dir", help="the run directory to keep")
    base.add_argument("--name", required=True, help="baseline name, e.g. ci-cpu")
    base.add_argument("--root", default=str(BASELINES), help=f"where baselines live (default: {BASELINES})")

    exp = sub.add_parser("export", help="a run's step times for CI dashboards (pytest-benchmark, github-action-benchmark)")
    exp.add_argument("path", help="run directory, results.parquet or results.csv")
    exp.add_argument("--format", required=True, choices=("pytest-benchmark", "github-action-benchmark"))
    exp.add_argument("-o", "--output", help="file to write (default: standard output)")

    show = sub.add_parser("show", help="print a saved run: the comparison view (--long: every case and column)")
    show.add_argument("path", help="run directory, results.parquet or results.csv")
    show.add_argument("--long", action="store_true", help="the full per-case table instead of the comparison view")
    show.add_argument("--columns", type=lambda t: tuple(c.strip() for c in t.split(",") if c.strip()),
                      help="the per-case table with these result columns, e.g. case_id,step_time_ms_median,kernel_path")

    rep = sub.add_parser("report", help="one self-contained HTML page with charts of a run (two runs: also compared)")
    rep.add_argument("runs", nargs="+", metavar="RUN", help="one run, or two (the second is compared with the first)")
    rep.add_argument("-o", "--output", default="report.html", help="the HTML file to write (default: report.html)")
    rep.add_argument("--history", nargs="+", metavar="RUNS",
                     help="earlier runs (directories, as bench history reads them): adds the trend of this run's cases "
                     "on its machine with the change points")
    return parser


def cmd_list(console: Console) -> int:
    t = Table(title="matrices", header_style="bold")
    for col in ("name", "cases", "description"):
        t.add_column(col)
    for name, mdef in MATRICES.items():
        t.add_row(name, str(len(mdef.base_cases())), mdef.description)
    t.add_row("FILE.toml", "", "your own cases, as a grid or a list (format: examples/matrix.toml)")
    console.print(t)
    t = Table(title="adapters", header_style="bold")
    for col in ("name", "usable here", "description"):
        t.add_column(col)
    for name, info in adapters.registry().items():
        ok, why = adapters.availability(name)
        t.add_row(name, f"[green]yes[/] ({why})" if ok else f"[red]no[/] ({why})", info.description)
    console.print(t)
    t = Table(title="datasets", header_style="bold")
    for col in ("name", "available here", "source"):
        t.add_column(col)
    for name in data.DATASETS:
        ok, where = data.availability(name)
        t.add_row(
            name + (" (default)" if name == data.DEFAULT_DATASET else ""),
            "[green]yes[/]" if ok else "[yellow]no[/]",
            where,
        )
    console.print(t)
    return EXIT_OK


def cmd_compare(args: argparse.Namespace, console: Console) -> int:
    thresholds = [compare.Threshold.parse(t) for t in (args.fail or [compare.DEFAULT_FAIL])]
    if not 0 < args.alpha < 1:
        raise BenchInputError(f"--alpha {args.alpha}: must be between 0 and 1")
    if not args.cv_limit > 0:
        raise BenchInputError(f"--cv-limit {args.cv_limit}: must be > 0")
    base, base_meta = load_results(args.baseline)
    cur, cur_meta = load_results(args.current)
    results = compare.compare_runs(
        base, cur, thresholds, base_meta, cur_meta, args.normalize, args.alpha, args.cv_limit
    )
    diffs = compare.environment_differences(base_meta, cur_meta)
    machine = compare.machine_differences(base_meta, cur_meta)
    if args.same_machine and machine:
        results = compare.not_comparable(results, "; ".join(machine))
    for name, df in (("baseline", base), ("current", cur)):
        mixed = compare.mixed_machines(df)
        if mixed:
            diffs.append(f"the {name} run mixes machines ({mixed}): its step times are not comparable case to case")
    if args.format == "json":
        import json

        payload = {
            "failed": compare.gate_failed(results),
            "environment_differences": diffs,
            "comparisons": [r.__dict__ for r in results],
        }
        print(json.dumps(payload, indent=2, default=str))
    elif args.format == "markdown":
        print(compare_markdown(results, diffs))
    else:
        console.print(compare_table(results, f"{args.baseline} -> {args.current}"))
        for d in diffs:
            console.print(f"[yellow]warning: {d if d.startswith('the ') else 'environments differ: ' + d}[/]")
        if args.same_machine and machine:
            console.print("[yellow]--same-machine: step times come from different machines, so they are not judged[/]")
        failing = [r for r in results if r.verdict in compare.FAILING_VERDICTS]
        console.print(
            f"[bold red]gate failed: {len(failing)} regression(s) or missing case(s)[/]"
            if failing
            else "[green]gate passed[/]"
        )
    return EXIT_CASE_FAILED if compare.gate_failed(results) else EXIT_OK


def cmd_parity(args: argparse.Namespace, console: Console) -> int:
    from bench.render.tables import parity_table
    from bench.stats.parity import run_parity

    names = list(args.adapters or [n for n in adapters.BUILTIN if adapters.availability(n)[0]])
    missing = [n for n in names if not adapters.availability(n)[0]]
    if missing:
        raise BenchInputError(f"parity: adapter(s) not installed here: {', '.join(missing)}")
    if len(names) < 2:
        raise BenchInputError(f"parity needs two installed adapters; usable here: {', '.join(names) or 'none'}")
    try:
        rows = run_parity(names, args.seed, envinfo.usable_cores())
    except RuntimeError as exc:  # an adapter's process failed: say which and why, no traceback
        console.print(f"[bold red]{exc}[/]")
        return EXIT_CASE_FAILED
    console.print(parity_table(rows))
    bad = [r for r in rows if not r.ok]
    compared = [r for r in rows if r.compared]
    skipped = f" ({len(rows) - len(compared)} not comparable, see the caption)" if len(compared) < len(rows) else ""
    console.print(f"[bold red]{len(bad)} mismatch(es)[/]" if bad
                  else f"[green]all {len(compared)} compared combinations match[/]{skipped}")
    return EXIT_CASE_FAILED if bad else EXIT_OK


def cmd_baseline(args: argparse.Namespace, console: Console) -> int:
    import shutil

    src = Path(args.run_dir)
    missing = [f for f in (PARQUET_FILE, META_FILE) if not (src / f).exists()]
    if missing:
        raise BenchInputError(f"{args.run_dir!r} is not a finished run directory: no {', '.join(missing)}")
    if not args.name or not all(c.isalnum() or c in "-_." for c in args.name):
        raise BenchInputError(f"--name {args.name!r}: use letters, digits, '-', '_' or '.'")
    df, _ = load_results(src)
    if not df["status"].map(is_timed).all():
        bad = df.loc[~df["status"].map(is_timed), "case_id"].tolist()
        raise BenchInputError(f"{args.run_dir!r} has cases that are not ok ({', '.join(bad)}); a baseline must be clean")
    dest = Path(args.root) / args.name
    dest.mkdir(parents=True, exist_ok=True)
    for f in (PARQUET_FILE, CSV_FILE, META_FILE):
        shutil.copy2(src / f, dest / f)
    console.print(f"baseline {dest}: {len(df)} cases from run {src.name}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    import json

    from bench.render.export import export
    from bench.results.store import atomic_write_bytes

    df, meta = load_results(args.path)
    text = json.dumps(export(df, meta, args.format), indent=2, default=str) + "\n"
    if args.output:
        atomic_write_bytes(Path(args.output), text.encode())
        Console(stderr=True).print(f"wrote {args.output} ({args.format})")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_show(args: argparse.Namespace, console: Console) -> int:
    from bench.render.tables import columns_table
    from bench.render.view import print_view

    df, meta = load_results(args.path)
    title = f"rnnbench {meta.get('matrix', '')} {meta.get('run_id', args.path)}"
    if args.columns:
        console.print(columns_table(df, args.columns, title))
    elif args.long:
        print_run(df, console, title=title)
    else:
        print_view(df, console, title=title)
    print_reference(df, console)
    return EXIT_OK


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from bench.cli.report import write_report

    if len(args.runs) > 2:
        raise BenchInputError(f"report takes one run or two (the second compared with the first), not {len(args.runs)}")
    path, charts = write_report([Path(r) for r in args.runs], Path(args.output), args.history)
    console.print(f"wrote {path} ({path.stat().st_size / 1024:.0f} kB, {charts} charts)")
    return EXIT_OK


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM ends a run like Ctrl-C: the running case is stopped, results kept


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    console = Console()
    if not console.is_terminal:  # piped or CI: don't squeeze the table into 80 columns
        console = Console(width=160)
    try:
        if args.command == "run":
            return cmd_run(args, console)
        if args.command == "ab":
            return cmd_ab(args, console)
        if args.command == "plan":
            return cmd_plan(args, console)
        if args.command == "find":
            return cmd_find(args, console)
        if args.command == "list":
            return cmd_list(console)
        if args.command == "compare":
            return cmd_compare(args, console)
        if args.command == "parity":
            return cmd_parity(args, console)
        if args.command == "converge":
            return cmd_converge(args, console)
        if args.command == "history":
            return cmd_history(args, console)
        if args.command == "doctor":
            return cmd_doctor(args, console)
        if args.command == "report":
            return cmd_report(args, console)
        if args.command == "export":
            return cmd_export(args, console)
        if args.command == "baseline":
            return cmd_baseline(args, console)
        return cmd_show(args, console)
    except BenchInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted; finished cases are kept, continue with --resume RUN_DIR", file=sys.stderr)
        return 130


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
