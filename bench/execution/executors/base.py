"""Executors decide where a job's process runs; the runner decides what to run and keeps the records.

An executor takes a `Job` (plain data, bench/execution/jobs.py) and hands back a
`concurrent.futures.Future` of its `JobResult`: a crash, a timeout or a lost machine is a result,
never an exception, so one case can never stop a matrix. The implementations are registered in
bench/execution/executors/__init__.py (local processes, Ray).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from bench.execution.jobs import Job, JobResult

ProgressCallback = Callable[[dict[str, Any]], None]
ReadyCallback = Callable[[], None]


class Executor(Protocol):
    """Where jobs run. `submit` never raises for what happens inside a job."""

    name: str

    def slots(self) -> int:
        """How many jobs may run at once right now (the runner never submits more)."""

    def submit(self, job: Job, on_progress: ProgressCallback | None = None) -> Future[JobResult]:
        """Start `job`; its future resolves to a JobResult, whatever happens to the job."""

    def release(self, future: Future[JobResult]) -> None:
        """Let a job that waits at its start barrier begin (`bench ab`'s pairs); a no-op otherwise."""

    def describe(self) -> dict[str, Any]:
        """What the run's meta.json records about where its cases ran ({} when nothing beyond this machine)."""

    def cancel_all(self) -> None:
        """Stop every running job now (their futures resolve with failure 'cancelled')."""

    def close(self) -> None:
        """Release what the executor holds (processes, a cluster connection)."""


def describe_exit(result: JobResult, timeout_s: float) -> tuple[str, str]:
    """(status, reason) of a job that sent no result."""
    from bench.core.status import Status

    if result.timed_out:
        return Status.TIMEOUT.value, f"no result after the {timeout_s:g} s limit; process group killed"
    if result.failure:
        return Status.FAILED.value, result.failure
    rc = result.returncode
    if rc is not None and rc < 0:
        name = signal.Signals(-rc).name
        hint = " (often the kernel's out-of-memory killer)" if name == "SIGKILL" else ""
        return Status.FAILED.value, f"worker killed by {name}{hint}"
    return Status.FAILED.value, f"worker exited with code {rc} without a result"
