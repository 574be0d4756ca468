"""`python -m bench run`: plan a matrix (everything validated, nothing written), then run it.

The options that choose cases (`--matrix`, `--adapters`, ... `--timeout`) are shared with `bench ab`
and `bench plan`, which plan the same way.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from rich.console import Console

import adapters
from bench import data
from bench.core.errors import EXIT_CASE_FAILED, EXIT_OK, BenchInputError
from bench.core.specs import DEVICES, IMAGE_SEQUENCES, INIT_SCHEMES, JIT_MODES, PRECISIONS
from bench.execution.executors import EXECUTORS, make_executor
from bench.execution.executors import get_info as executor_info
from bench.planning.matrices import MATRICES, Overrides
from bench.planning.plan import RunOptions, prepare_run, run_meta, write_plan
from bench.planning.sweep import MAX_CASES, parse_sweep


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


def seed_list(text: str) -> tuple[int, ...]:
    """`--seeds N` (seeds 0..N-1) or `--seeds A,B,C` (those seeds): distinct integers >= 0."""
    allowed = "a count N >= 1 (seeds 0..N-1) or a comma-separated list of distinct seeds >= 0, e.g. 0,1,2"
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [int(p) for p in parts if p]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: {allowed}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: {allowed}")
    if "," not in text:
        if values[0] < 1:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: {allowed}")
        return tuple(range(values[0]))
    bad = [v for v in values if v < 0]
    if bad:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: seed {bad[0]} is negative; {allowed}")
    twice = sorted({v for v in values if values.count(v) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: seed {twice[0]} is given twice; {allowed}")
    return tuple(values)


def sweep_arg(text: str):
    try:
        return parse_sweep(text)
    except BenchInputError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"--sweep {text!r}: ")) from None


def jit_list(text: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in modes if m not in JIT_MODES]
    if not modes or bad or len(set(modes)) != len(modes):
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: one or more distinct modes of {', '.join(JIT_MODES)}")
    return modes


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
    p.add_argument("--sequence", choices=tuple(IMAGE_SEQUENCES),
                   help="how an image becomes a sequence: rows (28 timesteps x 28 features, the default), pixels (784 x 1, "
                   "sequential MNIST), permuted-pixels (784 x 1 in one fixed order, psMNIST)")
    p.add_argument("--timesteps", type=positive_int, metavar="T", help="synthetic data: timesteps per example (default 28)")
    p.add_argument("--features", type=positive_int, metavar="F", help="synthetic data: features per timestep (default 28)")
    p.add_argument("--sweep", action="append", type=sweep_arg, metavar="AXIS=VALUES",
                   help="run every case once per value of one axis (units, timesteps, batch_size, layers): a list "
                   "(units=32,64,128), a doubling range (units=32..1024) or N points (units=32..1024/6); repeat for "
                   "more axes, each swept around the matrix's own values")
    p.add_argument("--yes", action="store_true", help=f"run a plan of more than {MAX_CASES} cases")
    p.add_argument("--epochs", type=positive_int, help="epochs to train (clears the matrix's step limit)")
    p.add_argument("--max-steps", type=positive_int, help="stop after this many training steps")
    p.add_argument("--batch-size", type=positive_int, help="training batch size")
    p.add_argument("--seed", type=int, help="seed for weights and data order")
    p.add_argument("--seeds", type=seed_list, metavar="N|A,B,...",
                   help="run every case once per seed (fresh processes): N = seeds 0..N-1, or a list; the view then "
                   "shows accuracy as mean ± 95%% t-interval and which gaps are significant")
    p.add_argument("--device", choices=DEVICES, help="where to train (default: auto)")
    p.add_argument("--init", choices=INIT_SCHEMES,
                   help="starting weights: framework (each its own defaults, the default), or one scheme "
                   "(keras / torch) applied in every adapter")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="fp32 (float32, TF32 off in every framework; the default), tf32 (TF32 on everywhere), "
                   "bf16 / fp16 (mixed precision, float32 weights)")
    p.add_argument("--jit-compile", type=jit_list, metavar="MODE[,MODE]",
                   help="Keras' compile(jit_compile=...) for the keras adapters: auto (Keras' choice, the default), on "
                   "(XLA; torch.compile on keras-torch), off; a list (on,off) runs each case once per mode, and the view "
                   "says after how many steps compiling pays back")
    p.add_argument("--phases", action="store_true", default=None,
                   help="measure the forward/backward/optimizer split after training (8 interleaved rounds, about 18 "
                   "steps' time; on in the smoke matrix)")
    p.add_argument("--no-inference", dest="inference", action="store_false", default=None,
                   help="skip the inference phase after training (batch-1 latency, large-batch throughput)")
    p.add_argument("--warm-compile-cache", action="store_true",
                   help="keep the machine's Inductor/Triton compile caches between case processes (the steady-state "
                   "view); by default each case's process compiles from an empty cache, as a first run does")
    p.add_argument("--require-idle-gpu", action="store_true",
                   help="a GPU case that finds another process on its GPU fails instead of timing a shared device")
    p.add_argument("--eval-every", type=positive_int, metavar="STEPS",
                   help="evaluate the test set every STEPS steps for the time-to-accuracy curve, outside the "
                   "training clock; the two steps after each are left out of the step statistics (default: once per epoch)")
    p.add_argument("--target-accuracy", type=fraction, metavar="FRACTION",
                   help="accuracy for time_to_target_s / steps_to_target (default per dataset: "
                   + ", ".join(f"{k} {v:g}" for k, v in data.TARGET_ACCURACY.items()) + ")")
    p.add_argument("--threads", type=positive_int, default=default_threads,
                   help=f"CPU threads per framework (default: {default_threads or 'all usable cores'})")
    p.add_argument("--timeout", type=positive_float, help="wall-clock limit per case in seconds")


def add_run_options(p: argparse.ArgumentParser) -> None:
    add_case_options(p)
    p.add_argument("--repeat", type=positive_int, default=1, metavar="K",
                   help="run each case in K fresh processes (round by round); `compare` then judges step time "
                   "between processes when both sides have K >= 3 (default: 1)")
    p.add_argument("--executor", choices=list(EXECUTORS), default="local",
                   help="where cases run: " + "; ".join(f"{n}: {e.description}" for n, e in EXECUTORS.items())
                   + " (default: local; ray: pip install 'rnnbench[ray]')")
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


def run_options(args: argparse.Namespace) -> RunOptions:
    """The parsed command line as the planner's input."""
    overrides = Overrides(
        adapters=args.adapters, cells=args.cells, dataset=args.dataset, epochs=args.epochs,
        max_steps=args.max_steps, batch_size=args.batch_size, device=args.device, seed=args.seed, seeds=args.seeds,
        init=args.init, eval_every=args.eval_every, precision=args.precision, jit_compile=args.jit_compile,
        sequence=args.sequence, timesteps=args.timesteps, features=args.features,
        sweeps=tuple(args.sweep) if args.sweep else None, confirmed=bool(args.yes), phases=args.phases,
        inference=args.inference,
    )
    return RunOptions(
        matrix=args.matrix, overrides=overrides, data_dir=args.data_dir, threads=args.threads,
        timeout=args.timeout, repeat=args.repeat, out=getattr(args, "out", "results"),
        resume=getattr(args, "resume", None), target_accuracy=args.target_accuracy,
        require_idle_gpu=bool(args.require_idle_gpu), warm_compile_cache=bool(args.warm_compile_cache),
        command=tuple(sys.argv),
    )


def execute(args: argparse.Namespace, console: Console, options: RunOptions | None = None):
    """Plan and run a matrix as `run` does (progress, records, files); returns (results, run_dir, meta)."""
    from bench.execution.runner import run_cases
    from bench.render.progress import RunProgress
    from bench.results.store import read_records, records_problems

    plan = prepare_run(options or run_options(args))
    # connects to (or starts) Ray before anything is written
    executor = make_executor(args.executor, ray_address=args.ray_address, cases_per_node=args.cases_per_node)
    run_dir = plan.run_dir
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        meta = run_meta(plan, executor, sys.argv)
        if not plan.resuming:
            write_plan(plan)
        err = Console(stderr=True)
        total = len(plan.cases) * plan.repeat
        err.print(f"run {run_dir} : {total} case processes ({len(plan.cases)} cases x {plan.repeat}), dataset "
                  f"{plan.source.name} ({plan.source.origin}), {plan.threads} threads, executor {executor.name}")
        for notice in meta["notices"] or []:
            err.print(f"[bold yellow]note: {notice}[/]")
        for problem in records_problems(run_dir):
            err.print(f"[bold yellow]warning: {problem}[/]")
        done = {(r["case_id"], int(r.get("repeat") or 0)) for r in read_records(run_dir)}
        with RunProgress(err, total, already=len(done), quiet=args.quiet,
                         show_host=executor_info(executor.name).remote) as progress:
            df = run_cases(plan.cases, run_dir, plan.source, plan.threads, plan.timeout_s, meta,
                           on_start=progress.started, on_done=progress.finished, executor=executor,
                           repeat=plan.repeat, on_progress=progress.case_progress,
                           target_accuracy=plan.target_accuracy, require_idle_gpu=plan.require_idle_gpu,
                           warm_compile_cache=plan.warm_compile_cache)
    finally:
        executor.close()
    return plan, df, meta


def finish(plan, df, console: Console) -> int:
    """After a run: problems, record warnings, where the files are, and the exit code from the statuses."""
    from bench.core.status import FAILING_STATUSES
    from bench.execution.runner import missing_cases
    from bench.render.tables import print_reference, problems_table
    from bench.results.store import records_problems

    run_dir = plan.run_dir
    problems = problems_table(df)
    if problems is not None:
        console.print(problems)
    print_reference(df, console)
    for problem in records_problems(run_dir):
        console.print(f"[bold yellow]warning: {problem}[/]")
    console.print(f"saved: {run_dir / 'results.parquet'}, results.csv, meta.json; every column: "
                  f"python -m bench show {run_dir} --long")
    missing = missing_cases(plan.cases, plan.repeat, df)
    if missing:
        console.print(f"[bold red]{len(missing)} planned case(s) have no record: {', '.join(missing)}; "
                      f"finish them with --resume {run_dir}[/]")
        return EXIT_CASE_FAILED
    return EXIT_CASE_FAILED if df["status"].isin(FAILING_STATUSES).any() else EXIT_OK


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from bench.render.view import print_view

    plan, df, meta = execute(args, console)
    print_view(df, console, title=f"rnnbench {meta['matrix']} on {plan.source.name} ({plan.run_dir.name})")
    code = finish(plan, df, console)
    if args.report:
        from bench.cli.report import write_report

        path, charts = write_report([plan.run_dir], plan.run_dir / "report.html")
        console.print(f"report: {path} ({charts} charts)")
    return code


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

    plan = prepare_run(dataclasses.replace(run_options(args), resume=None, out="results"))
    jobs = [case_job(CaseJob(c, plan.source, plan.threads, "plan", r, None, plan.target_accuracy,
                             plan.require_idle_gpu, plan.warm_compile_cache), plan.timeout_s)
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
