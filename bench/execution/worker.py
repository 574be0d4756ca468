"""The process of one job: `python -m bench.worker`, the job's JSON on stdin.

It runs the job's function (a benchmark case, or one adapter's parity measurements) and sends
JSON messages, one per line, to the file descriptor named by RNNBENCH_RESULT_FD (stdout when it is
unset, so a job can be replayed by hand): `{"progress": {...}}` while a case trains and one
`{"result": {...}}` at the end. Each framework lives in its own process. Whatever goes wrong inside
a case is caught and reported as its status; a crash that kills the process outright is classified
by the executor from the missing result.

The process dies with its parent (PR_SET_PDEATHSIG on Linux, a parent watch elsewhere), so a runner
killed with SIGKILL leaves no case behind to compete with the next run.

Replay a recorded job by hand (its variables set, as the runner does):
    python -m bench.worker --replay results/runs/RUN/cases/CASE.job.json
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.core.compile_cache import compile_cache_for_this_process
from bench.core.status import Status
from bench.execution.jobs import BARRIER_VAR, PARENT_PID_VAR, RESULT_FD_VAR
from bench.measure.case import CaseJob, measure_case

PROTOCOL = 3  # 2: job on stdin, messages on RNNBENCH_RESULT_FD; 3: the job is one line, start barrier


def run_case(payload: dict[str, Any], progress: Callable[[dict], None] | None = None,
             ready: Callable[[], None] | None = None) -> dict[str, Any]:
    """A `case` job: its Record, built and checked against the schema here, in the case's process,
    so a measurement the schema does not know fails this case (as a row), never the whole run."""
    from bench.results.record import Record

    job = CaseJob.from_payload(payload)
    record = Record.for_case(job.case, job.run_id, job.threads, job.repeat)
    measured = measure_case(job, progress, ready)
    try:
        record = record.with_measurements(measured)
    except TypeError as exc:
        record = record.with_measurements({"status": Status.FAILED.value, "error": f"result does not fit the schema: {exc}"})
    return {"record": record.to_row()}


def _run_parity(payload: dict[str, Any], progress: Callable[[dict], None] | None = None,
                ready: Callable[[], None] | None = None) -> dict[str, Any]:
    from bench.measure.parity import worker_run

    return worker_run(payload)


def _run_doctor(payload: dict[str, Any], progress: Callable[[dict], None] | None = None,
                ready: Callable[[], None] | None = None) -> dict[str, Any]:
    from bench.measure.doctor import probe_adapter

    return probe_adapter(payload)


WORKERS: dict[str, Callable[..., dict[str, Any]]] = {"case": run_case, "parity": _run_parity, "doctor": _run_doctor}


class Channel:
    """Messages to the parent: JSON lines on the result fd (or stdout), flushed as they are written."""

    def __init__(self) -> None:
        fd = os.environ.get(RESULT_FD_VAR)
        self._out = os.fdopen(int(fd), "w", encoding="utf-8") if fd else sys.stdout
        self._lock = threading.Lock()

    def send(self, kind: str, body: dict[str, Any]) -> None:
        line = json.dumps({kind: body}, allow_nan=False, default=str)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()


def die_with_parent() -> None:
    """End this process (and so its case) when the process that started it ends, even by SIGKILL."""
    expected = int(os.environ.get(PARENT_PID_VAR, "0") or 0)
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    else:  # no parent-death signal: watch the parent id once a second (a sleeping thread costs no step time)
        def watch() -> None:
            while os.getppid() == expected:
                time.sleep(1.0)
            os.killpg(0, signal.SIGKILL)

        if expected:
            threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    if expected and os.getppid() != expected:  # it died before the signal was armed
        os._exit(70)


def replay(job_file: str) -> int:
    """Run a recorded job again in a fresh process, with its variables set as the runner sets them."""
    import subprocess
    from pathlib import Path

    job = json.loads(Path(job_file).read_text(encoding="utf-8"))
    env = {k: v for k, v in os.environ.items() if k not in (RESULT_FD_VAR, PARENT_PID_VAR)}
    env.update(job.get("env", {}))
    return subprocess.run([sys.executable, "-m", "bench.worker"], input=json.dumps(job), text=True, env=env).returncode


def pin_cpus() -> None:
    """Run on the CPUs RNNBENCH_CPUS names (e.g. "1" or "0,1"), set before any library starts threads."""
    cpus = os.environ.get("RNNBENCH_CPUS")
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})


def main(argv: list[str]) -> int:
    if argv[:1] == ["--replay"] and len(argv) == 2:
        return replay(argv[1])
    # Any other arguments only name the job for `ps` (the executor passes --job KEY).
    die_with_parent()
    pin_cpus()
    first = sys.stdin.readline()  # the job is one line; stdin stays open for the start barrier
    try:
        job = json.loads(first)
    except ValueError:  # a job file written over several lines
        job = json.loads(first + sys.stdin.read())
    channel = Channel()

    def wait_for_go() -> None:
        channel.send("ready", {})
        sys.stdin.readline()  # "go", or end of file if the executor let go of it

    ready = wait_for_go if os.environ.get(BARRIER_VAR) == "1" else None
    with compile_cache_for_this_process():  # before the job imports any framework
        result = WORKERS[job["kind"]](job["payload"], lambda body: channel.send("progress", body), ready)
    channel.send("result", result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
