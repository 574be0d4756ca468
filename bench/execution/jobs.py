"""What travels between the runner and a case's process: a job in, a result out, both plain data.

No local file paths in either: a job carries everything its process needs (the case, where the data
is and its checksums, thread settings, the variables to set before any import), and a result
carries what came back (the worker's payload, the log, how the process ended, where it ran). That is
what lets the same job run in a local child process or on a Ray node.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import adapters
from bench.core.compile_cache import COMPILE_CACHE_VAR, policy_text
from bench.measure.case import CaseJob
from bench.measure.environment import THREAD_VARS

JOB_KINDS = ("case", "parity", "doctor")
RESULT_FD_VAR = "RNNBENCH_RESULT_FD"  # the worker writes its messages (progress, result) to this fd
PARENT_PID_VAR = "RNNBENCH_PARENT_PID"  # the worker dies with this process (bench/execution/worker.py)
BARRIER_VAR = "RNNBENCH_START_BARRIER"  # "1": wait for "go" on stdin before the first training step


@dataclass(frozen=True)
class Job:
    """One process's work: `kind` names the worker function, `payload` is its JSON input."""

    kind: str
    key: str  # a human-readable name: the case id, or "parity:ADAPTER"
    payload: dict[str, Any]
    env: dict[str, str]  # set in the process before it imports anything (threads, backend, devices)
    timeout_s: float
    device: str = "cpu"  # what the job asks for: cpu, cuda, or auto (a GPU where the machine has one)

    def __post_init__(self) -> None:
        if self.kind not in JOB_KINDS:
            raise ValueError(f"unknown job kind {self.kind!r}; valid: {JOB_KINDS}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Job:
        return cls(**d)


@dataclass(frozen=True)
class JobResult:
    """How a job's process ended, and what it sent back."""

    payload: dict[str, Any] | None  # the worker's result message (None: it sent none)
    returncode: int | None  # None when killed for the timeout or cancelled
    timed_out: bool
    wall_time_s: float
    log: str  # the process's stdout and stderr (the tail, when long)
    host: str  # the machine it ran on
    executor: str  # "local" or "ray"
    node: str | None = None  # the Ray node id, where there is one
    failure: str | None = None  # why there is no payload, where the executor knows (node died, cancelled)
    environment: dict[str, Any] | None = field(default=None, repr=False)  # that machine's envinfo (Ray)


def process_env(adapter: str, device: str, threads: int) -> dict[str, str]:
    """The variables a case's process needs before it imports anything: equal thread settings for
    every framework, the device, and the adapter's own (its Keras backend, legacy tf-keras)."""
    env = {var: str(threads) for var in THREAD_VARS}
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = "-1"  # hide GPUs from every framework
    env.update(adapters.get_info(adapter).env)
    return env


def case_job(job: CaseJob, timeout_s: float) -> Job:
    case = job.case
    return Job(
        kind="case",
        key=case.case_id if job.repeat == 0 else f"{case.case_id}#{job.repeat}",
        payload=job.to_payload(),
        env={**process_env(case.adapter, case.device, job.threads),
             COMPILE_CACHE_VAR: policy_text(job.warm_compile_cache)},
        timeout_s=timeout_s,
        device=case.device,
    )
