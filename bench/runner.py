"""Run a list of cases, each in its own fresh process, and keep every finished result.

The runner decides what to run and records what happened; an executor decides where a case's
process runs (local processes today, one at a time so timings do not disturb each other).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

import adapters
from bench.data import DataSource
from bench.envinfo import THREAD_VARS
from bench.errors import BenchInputError
from bench.results import PLAN_FILE, Record, append_record, atomic_write_json, read_records, save_run, to_frame
from bench.specs import Case
from bench.worker import error_tail

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ProcessOutcome:
    returncode: int | None
    timed_out: bool
    wall_time_s: float


class LocalProcessExecutor:
    """Runs `python -m bench.worker` as a child in its own process group, with a wall-clock limit."""

    def execute(self, args: list[str], env: dict[str, str], log_path: Path, timeout_s: float) -> ProcessOutcome:
        t0 = time.perf_counter()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.worker", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=REPO_ROOT,
                start_new_session=True,  # its own group: a timeout kills the case and its children
            )
            try:
                rc = proc.wait(timeout=timeout_s)
                timed_out = False
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                rc, timed_out = None, True
            except BaseException:  # interrupted: never leave an orphaned case running
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
        return ProcessOutcome(rc, timed_out, time.perf_counter() - t0)


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def child_env(adapter: str, device: str, threads: int) -> dict[str, str]:
    """A child's environment: equal thread settings for every framework, device and backend,
    all set before the child imports anything."""
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = str(threads)
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = "-1"  # hide GPUs from every framework
    env.update(adapters.get_info(adapter).env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def _describe_exit(outcome: ProcessOutcome, timeout_s: float) -> tuple[str, str]:
    if outcome.timed_out:
        return "timeout", f"no result after the {timeout_s:g} s limit; process group killed"
    rc = outcome.returncode
    if rc is not None and rc < 0:
        name = signal.Signals(-rc).name
        hint = " (often the kernel's out-of-memory killer)" if name == "SIGKILL" else ""
        return "failed", f"worker killed by {name}{hint}"
    return "failed", f"worker exited with code {rc} without a result"


def run_one(
    case: Case,
    run_dir: Path,
    run_id: str,
    source: DataSource,
    threads: int,
    timeout_s: float,
    executor: LocalProcessExecutor,
    meta: dict[str, Any] | None = None,
) -> Record:
    """Run one case in a child process and return its Record (never raises for case failures)."""
    meta = meta or {}
    safe = case.case_id.replace("/", "__")
    work = run_dir / "cases"
    work.mkdir(exist_ok=True)
    job, out, log = work / f"{safe}.job.json", work / f"{safe}.out.json", work / f"{safe}.log"
    sgemm = (meta.get("calibration") or {}).get("sgemm_gflops")
    job.write_text(
        json.dumps({"case": case.to_dict(), "source": asdict(source), "threads": threads, "sgemm_gflops": sgemm})
    )
    out.unlink(missing_ok=True)
    outcome = executor.execute([str(job), str(out)], child_env(case.adapter, case.device, threads), log, timeout_s)
    record = Record.for_case(case, run_id, threads)
    if out.exists() and not outcome.timed_out:
        measured = json.loads(out.read_text(encoding="utf-8"))
    else:
        status, why = _describe_exit(outcome, timeout_s)
        tail = error_tail(log.read_text(encoding="utf-8", errors="replace")) if log.exists() else ""
        measured = {"status": status, "error": f"{why}\n{tail}".strip()}
    measured["wall_time_s"] = outcome.wall_time_s
    return record.with_measurements({**environment_columns(meta.get("environment") or {}), **measured})


def environment_columns(env: dict[str, Any]) -> dict[str, Any]:
    """The key environment facts as columns (the whole record stays in meta.json)."""
    git = env.get("git") or {}
    return {
        "python_version": env.get("python"),
        "cpu_model": env.get("cpu_model"),
        "cpu_cores": env.get("cpu_cores"),
        "git_commit": git.get("commit"),
        "git_dirty": git.get("dirty"),
    }


def write_plan(
    run_dir: Path, cases: list[Case], source: DataSource, threads: int, timeout_s: float, meta: dict
) -> None:
    plan = {
        "cases": [c.to_dict() for c in cases],
        "source": asdict(source),
        "threads": threads,
        "timeout_s": timeout_s,
        **meta,
    }
    atomic_write_json(run_dir / PLAN_FILE, plan)


def read_plan(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / PLAN_FILE).read_text(encoding="utf-8"))


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


def run_cases(
    cases: list[Case],
    run_dir: Path,
    source: DataSource,
    threads: int,
    timeout_s: float,
    meta: dict[str, Any],
    on_start: Callable[[Case, int], None] | None = None,
    on_done: Callable[[Record], None] | None = None,
    executor: LocalProcessExecutor | None = None,
) -> pd.DataFrame:
    """Run every case not yet recorded in run_dir; save and return the whole run's table."""
    executor = executor or LocalProcessExecutor()
    run_id = run_dir.name
    with run_lock(run_dir):
        done = {row["case_id"] for row in read_records(run_dir)}
        for i, case in enumerate(cases):
            if case.case_id in done:
                continue
            if on_start:
                on_start(case, i)
            record = run_one(case, run_dir, run_id, source, threads, timeout_s, executor, meta)
            append_record(run_dir, record)
            if on_done:
                on_done(record)
        df = to_frame(read_records(run_dir))
        save_run(run_dir, df, meta)
    return df
