"""The run plan: everything a run will do, decided and validated before anything is written.

`prepare_run` turns the run's options into the cases (the matrix with the command line applied,
the dataset fallback where a matrix allows one), the verified data source, threads, the per-case
timeout and the run directory; `--resume` reads the same plan back from a run's plan.json.
`run_meta` is the run's meta.json. The command line only parses options into `RunOptions`.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import data
from bench.core.errors import BenchInputError
from bench.core.specs import Case
from bench.execution.executors.base import Executor
from bench.measure import environment as envinfo
from bench.measure.calibrate import sgemm_calibration
from bench.planning.matrices import Overrides, apply_overrides, get_matrix
from bench.planning.matrix_def import MatrixDef
from bench.results.store import PLAN_FILE, atomic_write_json


@dataclass(frozen=True)
class RunOptions:
    """What the user asked for (the command line's options, as data)."""

    matrix: str = "smoke"
    overrides: Overrides = Overrides()
    data_dir: str | None = None
    threads: int | None = None  # None: all usable cores
    timeout: float | None = None  # None: the matrix's
    repeat: int = 1
    out: str = "results"
    resume: str | None = None
    target_accuracy: float | None = None  # None: the dataset's default
    require_idle_gpu: bool = False
    warm_compile_cache: bool = False
    command: tuple[str, ...] = field(default_factory=tuple)


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
    warm_compile_cache: bool = False


def plan_cases(args: RunOptions) -> tuple[list[Case], MatrixDef, list[str]]:
    """The matrix's cases with the command line applied, and notices; validates everything."""
    overrides = args.overrides
    if overrides.seed is not None and overrides.seed < 0:
        raise BenchInputError(f"--seed: invalid value {overrides.seed}; allowed: an integer >= 0")
    if overrides.seed is not None and overrides.seeds:
        raise BenchInputError(f"--seed {overrides.seed} and --seeds {','.join(map(str, overrides.seeds))}: give one; "
                              "--seeds N runs seeds 0..N-1, --seeds A,B,C those seeds")
    mdef = get_matrix(args.matrix)
    notices = []
    if overrides.dataset is None and args.data_dir is None and mdef.dataset_fallback:  # a --data-dir must hold it
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


def prepare_run(args: RunOptions) -> RunPlan:
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
        target_accuracy=args.target_accuracy or data.TARGET_ACCURACY.get(cases[0].dataset),
        meta={"matrix": mdef.name, "matrix_origin": mdef.origin, "notices": notices, "command": list(args.command)},
        require_idle_gpu=args.require_idle_gpu,
        warm_compile_cache=args.warm_compile_cache,
    )


def _resume_plan(args: RunOptions) -> RunPlan:
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
        warm_compile_cache=bool(plan.get("warm_compile_cache")),
    )


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def write_plan(plan: RunPlan) -> None:
    """plan.json: what --resume reads back."""
    atomic_write_json(plan.run_dir / PLAN_FILE, {
        "cases": [c.to_dict() for c in plan.cases],
        "source": plan.source.to_dict(),
        "threads": plan.threads,
        "timeout_s": plan.timeout_s,
        "repeat": plan.repeat,
        **plan.meta,
        "target_accuracy": plan.target_accuracy,
        "require_idle_gpu": plan.require_idle_gpu,
        "warm_compile_cache": plan.warm_compile_cache,
    })


def read_plan(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / PLAN_FILE).read_text(encoding="utf-8"))


def run_meta(plan: RunPlan, executor: Executor, command: list[str]) -> dict[str, Any]:
    """meta.json: the plan, the command, the machine (environment, SGEMM calibration), the executor."""
    meta = {
        "run_id": plan.run_dir.name,
        **plan.meta,
        "command": command,
        "dataset": {"name": plan.source.name, "origin": plan.source.origin, "files": plan.source.to_dict()["files"]},
        "threads": plan.threads,
        "timeout_s": plan.timeout_s,
        "repeat": plan.repeat,
        "target_accuracy": plan.target_accuracy,
        "require_idle_gpu": plan.require_idle_gpu,
        "warm_compile_cache": plan.warm_compile_cache,
        "executor": executor.name,
        "environment": envinfo.collect(),
        "calibration": sgemm_calibration(threads=plan.threads),
    }
    cluster = executor.describe()
    if cluster:
        meta["cluster"] = cluster
    return meta
