"""Run a list of cases, each in its own fresh process, and keep every finished result.

The runner decides what to run and records what happened; an executor (bench/execution/executors/)
decides where each case's process runs: local processes (one at a time, so timings do not disturb
each other) or Ray tasks on a cluster. Records are appended as results arrive, so a run stopped at
any point keeps every finished case, and `--resume` runs only what is missing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.errors import BenchInputError, error_tail
from bench.core.specs import Case
from bench.core.status import Status
from bench.data import DataSource
from bench.execution.executors.base import Executor, describe_exit
from bench.execution.executors.local import REPO_ROOT, LocalProcessExecutor  # noqa: F401 (REPO_ROOT: API)
from bench.execution.jobs import CaseJob, JobResult, case_job
from bench.measure.environment import environment_columns
from bench.results.record import Record
from bench.results.store import (
    append_record,
    atomic_write_bytes,
    read_records,
    save_run,
    to_frame,
)


def record_of(case: Case, repeat: int, run_id: str, threads: int, result: JobResult, timeout_s: float,
              meta: dict[str, Any]) -> Record:
    """The Record of one finished job: the worker's own, or one that says why there is none."""
    payload = result.payload or {}
    record = None
    if "record" in payload:
        try:
            record = Record.from_row(payload["record"])
        except TypeError as exc:  # a worker of another schema version: say so in the row
            record = Record.for_case(case, run_id, threads, repeat).with_measurements(
                {"status": Status.FAILED.value, "error": f"the worker's record does not fit this schema: {exc}"})
    if record is None:
        status, why = describe_exit(result, timeout_s)
        tail = error_tail(result.log)
        record = Record.for_case(case, run_id, threads, repeat).with_measurements(
            {"status": status, "error": f"{why}\n{tail}".strip()})
    env = result.environment or meta.get("environment") or {}
    return record.with_measurements({
        **environment_columns(env),
        "wall_time_s": result.wall_time_s,
        "host": result.host,
        "executor": result.executor,
        "node": result.node,
    })


def planned_keys(cases: list[Case], repeat: int) -> list[tuple[Case, int]]:
    """(case, repeat index) in the order they run: round by round, so every case's K processes are
    spread over the whole run and slow drift of the machine touches all cases alike."""
    return [(case, r) for r in range(repeat) for case in cases]


def missing_cases(cases: list[Case], repeat: int, df: pd.DataFrame) -> list[str]:
    """Planned (case, repeat) without a row, as 'case_id' or 'case_id#repeat'."""
    have = set(zip(df["case_id"], df["repeat"].astype(int), strict=True)) if not df.empty else set()
    return [c.case_id if r == 0 and repeat == 1 else f"{c.case_id}#{r}"
            for c, r in planned_keys(cases, repeat) if (c.case_id, r) not in have]


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold an exclusive lock on a run directory, so two processes never append to one run."""
    lock_path = run_dir / ".lock"
    with open(lock_path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise BenchInputError(f"run directory {str(run_dir)!r} is in use by {holder}; wait for it or stop it") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _safe(name: str) -> str:
    return name.replace("/", "__").replace(":", "_").replace("#", "_r")


def run_cases(
    cases: list[Case],
    run_dir: Path,
    source: DataSource,
    threads: int,
    timeout_s: float,
    meta: dict[str, Any],
    on_start: Callable[[Case, int], None] | None = None,
    on_done: Callable[[Record], None] | None = None,
    executor: Executor | None = None,
    repeat: int = 1,
    on_progress: Callable[[Case, int, dict], None] | None = None,
    target_accuracy: float | None = None,
    require_idle_gpu: bool = False,
    warm_compile_cache: bool = False,
) -> pd.DataFrame:
    """Run every (case, repeat) not yet recorded in run_dir; save and return the whole run's table.

    Jobs go to the executor as it has free slots; each record is appended the moment its result
    arrives. An interrupt (Ctrl-C, SIGTERM) stops every running job before it propagates.
    """
    executor = executor or LocalProcessExecutor()
    run_id = run_dir.name
    sgemm = (meta.get("calibration") or {}).get("sgemm_gflops")
    work = run_dir / "cases"
    work.mkdir(exist_ok=True)
    with run_lock(run_dir):
        done = {(row["case_id"], int(row.get("repeat") or 0)) for row in read_records(run_dir)}
        pending = deque((c, r) for c, r in planned_keys(cases, repeat) if (c.case_id, r) not in done)
        running: dict[Future, tuple[Case, int, str]] = {}
        try:
            while pending or running:
                while pending and len(running) < executor.slots():
                    case, rep = pending.popleft()
                    job = case_job(CaseJob(case, source, threads, run_id, rep, sgemm, target_accuracy,
                                           require_idle_gpu, warm_compile_cache), timeout_s)
                    name = _safe(job.key)
                    # Kept for the record and for `python -m bench.worker --replay` (not read back).
                    atomic_write_bytes(work / f"{name}.job.json", json.dumps(job.to_dict(), indent=1).encode())
                    progress = (lambda body, c=case, r=rep: on_progress(c, r, body)) if on_progress else None
                    running[executor.submit(job, progress)] = (case, rep, name)
                    if on_start:
                        on_start(case, rep)
                if not running:  # nowhere to run what is left (every Ray node gone): record why
                    case, rep = pending.popleft()
                    _finish(run_dir, work, Record.for_case(case, run_id, threads, rep).with_measurements(
                        {"status": Status.FAILED.value, "error": f"no {executor.name} executor slot left to run it"}),
                        "", "", on_done)
                    continue
                finished, _ = wait(list(running), timeout=1.0, return_when=FIRST_COMPLETED)
                for future in finished:
                    case, rep, name = running.pop(future)
                    result = future.result()
                    if result.environment:  # cases on other machines: keep each machine's environment
                        meta.setdefault("node_environments", {})[result.host] = result.environment
                    record = record_of(case, rep, run_id, threads, result, timeout_s, meta)
                    _finish(run_dir, work, record, name, result.log, on_done)
        except BaseException:
            executor.cancel_all()  # never leave a case running behind an interrupted run
            raise
        df = to_frame(read_records(run_dir))
        save_run(run_dir, df, meta)
    return df


def _finish(run_dir: Path, work: Path, record: Record, name: str, log: str,
            on_done: Callable[[Record], None] | None) -> None:
    if name:
        atomic_write_bytes(work / f"{name}.log", log.encode("utf-8", errors="replace"))
    append_record(run_dir, record)
    if on_done:
        on_done(record)
