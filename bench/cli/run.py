"""`python -m bench run`: plan a matrix (everything validated, nothing written), then run it.

The options that choose cases (`--matrix`, `--adapters`, ... `--timeout`) are shared with `bench ab`
and `bench plan`, which plan the same way.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

import adapters
from bench import data
from bench.core.errors import EXIT_CASE_FAILED, EXIT_OK, BenchInputError
from bench.core.specs import DEVICES, INIT_SCHEMES, PRECISIONS, Case
from bench.execution.runner import new_run_id, read_plan
from bench.measure import environment as envinfo
from bench.measure.calibrate import sgemm_calibration
from bench.measure.curve import TARGET_ACCURACY
from bench.planning.matrices import MATRICES, Overrides, apply_overrides, get_matrix

EXECUTORS = ("local", "ray")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0 or str(value) != text.strip():
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be a positive integer")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be a positive number of seconds")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be a fraction in (0, 1], e.g. 0.95")
    return value


def name_list(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: give names separated by commas")
    return names


def adapter_list(text: str) -> tuple[str, ...]:
    if text.strip() == "all":  # every built-in adapter that can run here
        return tuple(n for n in adapters.BUILTIN if adapters.availability(n)[0])
    names = name_list(text)
    for n in names:
        try:
            adapters.get_info(n)
        except BenchInputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc
    return names


def add_case_options(p: argparse.ArgumentParser, default_threads: int | None = None) -> None:
    """The options that choose and shape the cases of a matrix (threads: all usable cores unless given)."""
    p.add_argument("--matrix", default="smoke",
                   help=f"matrix name: {', '.join(MATRICES)} (default: %(default)s), or a .toml matrix file "
                   "(format: examples/matrix.toml)")
    p.add_argument("--adapters", type=adapter_list,
                   help="comma-separated adapters, or 'all' (every adapter usable here); default: the matrix's")
    p.add_argument("--cells", type=name_list, help="comma-separated cells to keep: rnn,gru,lstm (default: all)")
    p.add_argument("--dataset", choices=data.DATASETS,
                   help="dataset (default: the matrix's: mnist-5k; seeds: mnist if it is here, else mnist-5k)")
    p.add_argument("--data-dir", help="directory holding mnist.npz or IDX files (checked against published SHA-256)")
    p.add_argument("--epochs", type=positive_int, help="epochs to train (clears the matrix's step limit)")
    p.add_argument("--max-steps", type=positive_int, help="stop after this many training steps")
    p.add_argument("--batch-size", type=positive_int, help="training batch size")
    p.add_argument("--seed", type=int, help="seed for weights and data order")
    p.add_argument("--device", choices=DEVICES, help="where to train (default: auto)")
    p.add_argument("--init", choices=INIT_SCHEMES,
                   help="starting weights: framework (each its own defaults, the default), or one scheme "
                   "(keras / torch) applied in every adapter")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="fp32 (float32, TF32 off in every framework; the default), tf32 (TF32 on everywhere), "
                   "bf16 / fp16 (mixed precision, float32 weights)")
    p.add_argument("--require-idle-gpu", action="store_true",
                   help="a GPU case that finds another process on its GPU fails instead of timing a shared device")
    p.add_argument("--eval-every", type=positive_int, metavar="STEPS",
                   help="evaluate the test set every STEPS steps for the time-to-accuracy curve, outside the "
                   "training clock; the two steps after each are left out of the step statistics (default: once per epoch)")
    p.add_argument("--target-accuracy", type=fraction, metavar="FRACTION",
                   help="accuracy for time_to_target_s / steps_to_target (default per dataset: "
                   + ", ".join(f"{k} {v:g}" for k, v in TARGET_ACCURACY.items()) + ")")
    p.add_argument("--threads", type=positive_int, default=default_threads,
                   help=f"CPU threads per framework (default: {default_threads or 'all usable cores'})")
    p.add_argument("--timeout", type=positive_float, help="wall-clock limit per case in seconds")


def add_run_options(p: argparse.ArgumentParser) -> None:
    add_case_options(p)
    p.add_argument("--repeat", type=positive_int, default=1, metavar="K",
                   help="run each case in K fresh processes (round by round); `compare` then judges step time "
                   "between processes when both sides have K >= 3 (default: 1)")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="where cases run: local processes, one at a time (default), or a Ray cluster "
                   "(pip install 'rnnbench[ray]')")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="with --executor ray: 'auto' (the cluster this machine belongs to), ray://HOST:PORT or "
                   "HOST:PORT; default: start a local Ray instance")
    p.add_argument("--cases-per-node", type=positive_int, default=1, metavar="N",
                   help="with --executor ray: CPU cases run at once on one node (default 1, so timings do not "
                   "disturb each other); GPU cases always get a GPU each")
    p.add_argument("--out", default="results", help="results root; the run goes to OUT/runs/RUN_ID (default: results)")
    p.add_argument("--resume", metavar="RUN_DIR", help="finish an interrupted run: skip cases it already recorded")
    p.add_argument("--report", action="store_true",
                   help="also write report.html (charts, self-contained) next to the results")
    p.add_argument("--quiet", action="store_true", help="no progress display")


@dataclass(frozen=True)
class RunPlan:
    """Everything a run will do, decided before anything is written."""

    cases: list[Case]
    source: data.DataSource
    threads: int
    timeout_s: float
    run_dir: Path
    repeat: int
    target_accuracy: float | None
    meta: dict[str, Any]  # matrix, origin, notices, command
    resuming: bool = False
    require_idle_gpu: bool = False


def plan_cases(args: argparse.Namespace) -> tuple[list[Case], Any, list[str]]:
    """The matrix's cases with the command line applied, and notices; validates everything."""
    overrides = Overrides(
        adapters=args.adapters,
        cells=args.cells,
        dataset=args.dataset,
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        device=args.device,
        seed=args.seed,
        init=args.init,
        eval_every=args.eval_every,
        precision=args.precision,
    )
    if args.seed is not None and args.seed < 0:
        raise BenchInputError(f"--seed: invalid value {args.seed}; allowed: an integer >= 0")
    mdef = get_matrix(args.matrix)
    notices = []
    if args.dataset is None and args.data_dir is None and mdef.dataset_fallback:  # a --data-dir must hold it
        try:
            data.resolve(mdef.dataset, None, download=False)
        except data.DataError:
            overrides = dataclasses.replace(overrides, dataset=mdef.dataset_fallback)
            notices.append(
                f"{mdef.dataset} is not here (no --data-dir, no cached copy), so this runs on {mdef.dataset_fallback}: "
                f"its accuracy is NOT comparable with the reported figures, which are for full {mdef.dataset}. "
                f"--dataset {mdef.dataset} downloads it (SHA-256 checked)."
            )
    cases = apply_overrides(mdef, overrides)
    dataset = cases[0].dataset
    for case in cases:
        if case.train.batch_size > data.TRAIN_SIZES[dataset]:
            raise BenchInputError(
                f"batch size {case.train.batch_size} ({case.case_id}) is larger than dataset {dataset!r}'s "
                f"{data.TRAIN_SIZES[dataset]} training examples"
            )
    return cases, mdef, notices


def prepare_run(args: argparse.Namespace) -> RunPlan:
    """Validate everything and plan the run; creates nothing on disk."""
    if args.resume:
        return _resume_plan(args)
    cases, mdef, notices = plan_cases(args)
    source = data.resolve(cases[0].dataset, args.data_dir)
    notices += list(source.notices)
    return RunPlan(
        cases=cases,
        source=source,
        threads=args.threads or envinfo.usable_cores(),
        timeout_s=args.timeout or mdef.timeout_s,
        run_dir=Path(args.out) / "runs" / new_run_id(),
        repeat=args.repeat,
        target_accuracy=args.target_accuracy or TARGET_ACCURACY.get(cases[0].dataset),
        meta={"matrix": mdef.name, "matrix_origin": mdef.origin, "notices": notices, "command": sys.argv},
        require_idle_gpu=bool(getattr(args, "require_idle_gpu", False)),
    )


def _resume_plan(args: argparse.Namespace) -> RunPlan:
    run_dir = Path(args.resume)
    if not (run_dir / "plan.json").exists():
        raise BenchInputError(f"--resume {args.resume!r}: no plan.json there, so it is not a run directory")
    plan = read_plan(run_dir)
    source = data.reverify(data.DataSource.from_dict(plan["source"]))
    return RunPlan(
        cases=[Case.from_dict(c) for c in plan["cases"]],
        source=source,
        threads=plan["threads"],
        timeout_s=plan["timeout_s"],
        run_dir=run_dir,
        repeat=plan.get("repeat", 1),
        target_accuracy=plan.get("target_accuracy"),
        meta={k: plan.get(k) for k in ("matrix", "matrix_origin", "notices", "command")},
        resuming=True,
        require_idle_gpu=bool(plan.get("require_idle_gpu")),
    )


def make_executor(args: argparse.Namespace):
    """The executor `--executor` names; a missing Ray is bad input that names the extra."""
    from bench.execution.executors.local import LocalProcessExecutor

    if args.executor == "local":
        return LocalProcessExecutor()
    try:
        from bench.execution.executors.ray import RayExecutor
    except ImportError as exc:
        raise BenchInputError(
            f"--executor ray needs Ray, which is not installed here ({exc}); install the extra: pip install 'rnnbench[ray]'"
        ) from exc
    return RayExecutor(address=args.ray_address, cases_per_node=args.cases_per_node)


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from bench.core.status import FAILING
    from bench.execution.runner import missing_cases, run_cases, write_plan
    from bench.render.progress import RunProgress
    from bench.render.tables import print_reference, problems_table
    from bench.render.view import print_view
    from bench.results.store import read_records, records_problems

    plan = prepare_run(args)
    executor = make_executor(args)  # connects to (or starts) Ray before anything is written
    run_dir = plan.run_dir
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        meta = {
            "run_id": run_dir.name,
            **plan.meta,
            "command": sys.argv,
            "dataset": {"name": plan.source.name, "origin": plan.source.origin, "files": plan.source.to_dict()["files"]},
            "threads": plan.threads,
            "timeout_s": plan.timeout_s,
            "repeat": plan.repeat,
            "target_accuracy": plan.target_accuracy,
            "require_idle_gpu": plan.require_idle_gpu,
            "executor": executor.name,
            "environment": envinfo.collect(),
            "calibration": sgemm_calibration(),
        }
        if hasattr(executor, "describe"):
            meta["cluster"] = executor.describe()
        if not plan.resuming:
            write_plan(run_dir, plan.cases, plan.source, plan.threads, plan.timeout_s,
                       {**plan.meta, "target_accuracy": plan.target_accuracy,
                        "require_idle_gpu": plan.require_idle_gpu}, plan.repeat)
        err = Console(stderr=True)
        total = len(plan.cases) * plan.repeat
        err.print(f"run {run_dir} : {total} case processes ({len(plan.cases)} cases x {plan.repeat}), dataset "
                  f"{plan.source.name} ({plan.source.origin}), {plan.threads} threads, executor {executor.name}")
        for notice in meta["notices"] or []:
            err.print(f"[bold yellow]note: {notice}[/]")
        for problem in records_problems(run_dir):
            err.print(f"[bold yellow]warning: {problem}[/]")
        done = {(r["case_id"], int(r.get("repeat") or 0)) for r in read_records(run_dir)}
        with RunProgress(err, total, already=len(done), quiet=args.quiet) as progress:
            df = run_cases(plan.cases, run_dir, plan.source, plan.threads, plan.timeout_s, meta,
                           on_start=progress.started, on_done=progress.finished, executor=executor,
                           repeat=plan.repeat, on_progress=progress.case_progress,
                           target_accuracy=plan.target_accuracy, require_idle_gpu=plan.require_idle_gpu)
    finally:
        executor.close()
    print_view(df, console, title=f"rnnbench {meta['matrix']} on {plan.source.name} ({run_dir.name})")
    problems = problems_table(df)
    if problems is not None:
        console.print(problems)
    print_reference(df, console)
    for problem in records_problems(run_dir):
        console.print(f"[bold yellow]warning: {problem}[/]")
    console.print(f"saved: {run_dir / 'results.parquet'}, results.csv, meta.json; every column: "
                  f"python -m bench show {run_dir} --long")
    if args.report:
        from bench.cli.report import write_report

        path, charts = write_report([run_dir], run_dir / "report.html")
        console.print(f"report: {path} ({charts} charts)")
    missing = missing_cases(plan.cases, plan.repeat, df)
    if missing:
        console.print(f"[bold red]{len(missing)} planned case(s) have no record: {', '.join(missing)}; "
                      f"finish them with --resume {run_dir}[/]")
        return EXIT_CASE_FAILED
    return EXIT_CASE_FAILED if df["status"].isin(FAILING).any() else EXIT_OK


def add_plan_options(p: argparse.ArgumentParser) -> None:
    add_case_options(p)
    p.add_argument("--repeat", type=positive_int, default=1, metavar="K", help="processes per case (default: 1)")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="table: the cases a run would start; json: the jobs themselves (what `bench ab` reads)")


def cmd_plan(args: argparse.Namespace, console: Console) -> int:
    """What `run` would do with these options, without doing it: a dry run, and `bench ab`'s interface
    to another checkout (each side plans its own jobs with its own code)."""
    import json

    from rich.table import Table

    from bench.execution.jobs import CaseJob, case_job
    from bench.execution.runner import planned_keys
    from bench.execution.worker import PROTOCOL

    args.resume, args.out = None, "results"
    plan = prepare_run(args)
    jobs = [case_job(CaseJob(c, plan.source, plan.threads, "plan", r, None, plan.target_accuracy), plan.timeout_s)
            for c, r in planned_keys(plan.cases, plan.repeat)]
    usable = {a: adapters.availability(a) for a in dict.fromkeys(c.adapter for c in plan.cases)}
    if args.format == "json":
        print(json.dumps({
            "protocol": PROTOCOL,
            "matrix": plan.meta["matrix"],
            "notices": plan.meta["notices"],
            "source": plan.source.to_dict(),
            "adapters": {a: {"usable": ok, "why": why} for a, (ok, why) in usable.items()},
            "jobs": [j.to_dict() for j in jobs],
        }))
        return EXIT_OK
    table = Table(title=f"plan: matrix {plan.meta['matrix']}, {len(jobs)} processes, dataset {plan.source.name}, "
                  f"{plan.threads} threads, {plan.timeout_s:g} s limit each", header_style="bold")
    for col in ("case", "steps", "epochs", "lr", "usable here"):
        table.add_column(col, justify="right" if col in ("steps", "epochs", "lr") else "left")
    for c in plan.cases:
        ok, why = usable[c.adapter]
        steps = c.train.planned_steps(data.TRAIN_SIZES[c.dataset])
        table.add_row(c.case_id, f"{steps:,}", str(c.train.epochs), f"{c.train.learning_rate:g}",
                      "[green]yes[/]" if ok else f"[red]no[/] ({why})")
    console.print(table)
    for notice in plan.meta["notices"]:
        console.print(f"[yellow]note: {notice}[/]")
    return EXIT_OK
