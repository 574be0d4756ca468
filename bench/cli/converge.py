"""`python -m bench converge`: the same model, from the same weights, on the same batches, in several
frameworks: do their learning curves agree within the spread between seeds? (bench/stats/converge.py)"""

from __future__ import annotations

import argparse
import dataclasses
import json

from rich.console import Console

from bench.core.errors import EXIT_CASE_FAILED, EXIT_OK, BenchInputError
from bench.planning.plan import plan_cases
from bench.stats.converge import MARGINS, MIN_SEEDS
from bench.stats.seeds import ALPHA

DEFAULT_SEEDS = (0, 1, 2)


def add_converge_options(p: argparse.ArgumentParser) -> None:
    from bench.cli.run import add_run_options

    add_run_options(p)
    p.add_argument("--alpha", type=float, default=ALPHA,
                   help=f"significance level of the tests over seeds (default {ALPHA:g})")
    p.add_argument("--margin-loss", type=float, default=MARGINS["test loss"],
                   help=f"the curves agree when their mean test-loss gap is shown within this (nats; default "
                        f"{MARGINS['test loss']:g})")
    p.add_argument("--margin-accuracy", type=float, default=MARGINS["test accuracy"],
                   help=f"the same for test accuracy (a fraction; default {MARGINS['test accuracy']:g} = 1 point)")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="table (default) or json (the verdicts, for tools)")
    # the models, seeds and weights the check is made for; every option of `run` may change them
    p.set_defaults(matrix="converge", seeds=DEFAULT_SEEDS, init="keras")


def check_convergence_cases(cases: list) -> None:
    """What makes the curves comparable at all, before any work: one weight scheme in every adapter,
    two adapters, two seeds, real labels, no dropout (each framework draws its own masks)."""
    framework = sorted({c.adapter for c in cases if c.init == "framework"})
    if framework:
        raise BenchInputError("converge needs the same starting weights in every adapter: --init keras or --init torch "
                              f"(not 'framework', where each adapter draws its own: {', '.join(framework)})")
    names = list(dict.fromkeys(c.adapter for c in cases))
    if len(names) < 2:
        raise BenchInputError(f"converge compares two adapters or more; got {', '.join(names)} "
                              "(--adapters keras,torch, or any adapters whose weights are canonical)")
    seeds = sorted({c.train.seed for c in cases})
    if len(seeds) < MIN_SEEDS:
        raise BenchInputError(f"converge needs {MIN_SEEDS} seeds or more (a test over seeds below that has under 2 "
                              f"degrees of freedom); got seed(s) {', '.join(map(str, seeds))} (--seeds {MIN_SEEDS}, "
                              f"or --seeds 0,1,2)")
    dropout = sorted({c.model.key for c in cases if any(c.model.dropout)})
    if dropout:
        raise BenchInputError(f"converge cannot compare models with dropout ({', '.join(dropout)}): each framework "
                              "draws its own dropout masks, so the same seed trains different functions")
    unlabelled = sorted({c.dataset for c in cases if c.dataset == "synthetic"})
    if unlabelled:
        raise BenchInputError("converge needs a dataset with real labels (mnist-5k, mnist, fashion-mnist), not "
                              "'synthetic': random labels have no learning curve")


def cmd_converge(args: argparse.Namespace, console: Console) -> int:
    from bench.cli.run import execute, finish, run_options
    from bench.render.converge import agreement_rows, agreement_table
    from bench.render.view import print_view
    from bench.stats.converge import agreements

    if not 0 < args.alpha < 1:
        raise BenchInputError(f"--alpha {args.alpha}: must be between 0 and 1")
    for name, value in (("--margin-loss", args.margin_loss), ("--margin-accuracy", args.margin_accuracy)):
        if not 0 < value < 1:  # a NaN fails this too
            raise BenchInputError(f"{name} {value}: must be between 0 and 1")
    margins = {"test loss": args.margin_loss, "test accuracy": args.margin_accuracy}
    options = run_options(args)
    if not options.resume:
        check_convergence_cases(plan_cases(dataclasses.replace(options))[0])
    plan, df, meta = execute(args, console, options)
    found = agreements(df, args.alpha, margins)
    if args.format == "json":
        print(json.dumps({"run": str(plan.run_dir), "alpha": args.alpha, "margins": margins,
                          "agreements": agreement_rows(found)}, indent=2, default=str))
    else:
        print_view(df, console, title=f"rnnbench converge on {plan.source.name} ({plan.run_dir.name})")
        console.print(agreement_table(found, args.alpha, margins))
    code = finish(plan, df, console) if args.format == "table" else _quiet_finish(plan, df)
    differ = [a for a in found if a.verdict == "differ"]
    if args.format == "table":
        console.print(converge_summary(found))
    return EXIT_CASE_FAILED if differ else code


def converge_summary(found: list) -> str:
    """One line: how many comparisons differ, agree, or could not be told apart."""
    counts = {v: sum(a.verdict == v for a in found) for v in ("differ", "agree", "inconclusive")}
    if counts["differ"]:
        return f"[bold red]{counts['differ']} of {len(found)} comparison(s) converge differently[/]"
    if counts["inconclusive"]:
        return (f"[yellow]{counts['agree']} of {len(found)} comparison(s) shown to agree within the margins; "
                f"{counts['inconclusive']} inconclusive (neither shown equal nor shown different: more seeds "
                "narrow the test)[/]")
    return f"[green]every compared model agrees within the margins ({len(found)} comparisons)[/]"


def _quiet_finish(plan, df) -> int:
    from bench.core.status import FAILING_STATUSES
    from bench.execution.runner import missing_cases

    if missing_cases(plan.cases, plan.repeat, df) or df["status"].isin(FAILING_STATUSES).any():
        return EXIT_CASE_FAILED
    return EXIT_OK
