"""Run cases on a Ray cluster: each case is one Ray task that starts the case's process on a node.

Placement: the driver keeps its own book of slots, so cases never share a device. A node runs
either up to `cases_per_node` CPU cases (default 1: CPU timings must not disturb each other) or one
case per GPU (Ray's `num_gpus=1` gives the task its own GPU through CUDA_VISIBLE_DEVICES), never
both at once; each task is pinned to its node (NodeAffinitySchedulingStrategy, soft=False).
`--device auto` takes a GPU on nodes that have one.

Failures are data: `max_retries=0` (a retried case would be timed twice, silently); the node runs
the case under the same process-group timeout as locally, and the driver cancels a task (force)
that has not answered `timeout + grace` seconds after it started, giving status `timeout`; a node
or worker that dies gives its case `failed` with Ray's reason, and the rest of the matrix goes on
on the nodes that remain.

Data: the bundled set is on every node that installs rnnbench. Files from `--data-dir` (or the
cache) are checked on each node by their SHA-256; a node that lacks them, or holds other bytes,
gets the driver's copy through Ray's object store and keeps it under its own cache.

Each node must have rnnbench and the frameworks its cases need installed (the same versions as
the driver, for comparable numbers); each result carries that node's environment, recorded per
host in meta.json.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import platform
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from bench.data import DataError, DataSource, cache_dir, reverify
from bench.execution.executors.base import ProgressCallback
from bench.execution.executors.local import LocalProcessExecutor
from bench.execution.jobs import Job, JobResult

GRACE_S = 30.0  # beyond the job's own timeout, which the node enforces first
POLL_S = 0.25


@dataclass
class _Node:
    node_id: str
    host: str
    cpus: float
    gpus: int
    cpu_busy: int = 0
    gpu_busy: int = 0


@dataclass
class _Running:
    job: Job
    future: Future
    node: _Node
    gpu: bool
    deadline: float
    on_progress: ProgressCallback | None = None
    started: float = field(default_factory=time.perf_counter)


def materialize(source: DataSource, fetch) -> DataSource:
    """The source as this node can read it: its own files if their SHA-256 match, else the driver's
    copy (`fetch(file_name) -> bytes`), verified and kept under this node's cache."""
    if source.path is None or not source.files:
        return source  # bundled or generated: every node makes the same arrays (dataset_sha256 proves it)
    try:
        return reverify(source)
    except DataError:
        pass
    digest = hashlib.sha256("".join(sha for _, sha in source.files).encode()).hexdigest()[:16]
    dest = cache_dir() / "shipped" / f"{source.name}-{digest}"
    dest.mkdir(parents=True, exist_ok=True)
    for name, _ in source.files:
        target = dest / name
        if not target.is_file():
            blob = fetch(name)
            tmp = target.with_suffix(target.suffix + ".part")
            tmp.write_bytes(blob)
            os.replace(tmp, target)
    single = len(source.files) == 1 and source.files[0][0].endswith(".npz")
    shipped = dataclasses.replace(source, path=str(dest / source.files[0][0]) if single else str(dest),
                                  origin=f"{source.origin} (shipped to {platform.node()})")
    return reverify(shipped)  # the bytes that arrived must be the bytes the driver verified


@functools.lru_cache(maxsize=1)
def _node_environment() -> dict[str, Any]:
    from bench.measure import environment as envinfo

    return envinfo.collect()


@ray.remote(max_retries=0)
def _run_on_node(job_dict: dict, blobs: dict[str, Any], progress_queue: Any) -> dict:
    """On the node: the case's process, exactly as the local executor starts it."""
    job = Job.from_dict(job_dict)
    if job.kind == "case" and job.payload["source"].get("path"):
        source = DataSource.from_dict(job.payload["source"])
        try:
            local = materialize(source, lambda name: ray.get(blobs[name]))
        except DataError as exc:
            return {"failure": f"data on {platform.node()}: {exc}", "host": platform.node()}
        job = dataclasses.replace(job, payload={**job.payload, "source": local.to_dict()})

    def forward(body: dict) -> None:
        progress_queue.put_nowait((job.key, body))

    result = LocalProcessExecutor().submit(job, forward if progress_queue is not None else None).result()
    out = dataclasses.asdict(result)
    out.update(executor="ray", node=ray.get_runtime_context().get_node_id(), environment=_node_environment())
    return out


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None, cases_per_node: int = 1, grace_s: float = GRACE_S) -> None:
        from ray.util.queue import Queue

        env_vars = {k: v for k, v in os.environ.items() if k.startswith("RNNBENCH_")}  # e.g. extra adapters
        ray.init(address=address, runtime_env={"env_vars": env_vars} if env_vars else None,
                 include_dashboard=False, log_to_driver=False, configure_logging=False)
        self.cases_per_node, self.grace_s = cases_per_node, grace_s
        self._queue = Queue(actor_options={"num_cpus": 0})
        self._lock = threading.Lock()
        self._waiting: deque[tuple[Job, Future, ProgressCallback | None]] = deque()
        self._running: dict[Any, _Running] = {}
        self._progress: dict[str, ProgressCallback] = {}
        self._blobs: dict[str, dict[str, Any]] = {}  # source path -> file name -> object ref
        self._nodes: dict[str, _Node] = {}
        self._refresh_nodes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ray-executor", daemon=True)
        self._thread.start()

    # -- the cluster --------------------------------------------------------------------------

    def _refresh_nodes(self) -> None:
        alive = {n["NodeID"]: n for n in ray.nodes() if n.get("Alive")}
        with self._lock:
            for node_id in list(self._nodes):
                if node_id not in alive:
                    del self._nodes[node_id]
            for node_id, n in alive.items():
                if node_id not in self._nodes:
                    res = n.get("Resources", {})
                    self._nodes[node_id] = _Node(node_id, n.get("NodeManagerHostname") or n.get("NodeManagerAddress", "?"),
                                                 float(res.get("CPU", 0)), int(res.get("GPU", 0)))

    def describe(self) -> dict[str, Any]:
        """The cluster as the run started on it (meta.json)."""
        with self._lock:
            return {"nodes": [{"node_id": n.node_id, "host": n.host, "cpus": n.cpus, "gpus": n.gpus,
                               "case_slots": n.gpus or self.cases_per_node} for n in self._nodes.values()]}

    def release(self, future: Future[JobResult]) -> None:
        """Ray jobs start without a barrier (`bench ab` pairs run on the local executor)."""

    def slots(self) -> int:
        with self._lock:
            return sum(n.gpus or self.cases_per_node for n in self._nodes.values() if n.cpus > 0 or n.gpus)

    # -- jobs ---------------------------------------------------------------------------------

    def submit(self, job: Job, on_progress: ProgressCallback | None = None) -> Future[JobResult]:
        future: Future[JobResult] = Future()
        future.set_running_or_notify_cancel()
        with self._lock:
            self._waiting.append((job, future, on_progress))
        return future

    def _place(self, job: Job) -> tuple[_Node, bool] | None:
        """A node with a free slot of the kind the job needs, and whether it takes a GPU."""
        for node in self._nodes.values():
            wants_gpu = job.device == "cuda" or (job.device == "auto" and node.gpus > 0)
            if wants_gpu and node.gpus - node.gpu_busy > 0 and node.cpu_busy == 0:
                return node, True
            if not wants_gpu and job.device != "cuda" and node.gpu_busy == 0 and node.cpu_busy < self.cases_per_node:
                return node, False
        return None

    def _blob_refs(self, job: Job) -> dict[str, Any]:
        source = (job.payload.get("source") or {}) if job.kind == "case" else {}
        path = source.get("path")
        if not path:
            return {}
        if path not in self._blobs:  # put each file into the object store once, fetched only where needed
            base = Path(path)
            self._blobs[path] = {name: ray.put((base if base.is_file() else base / name).read_bytes())
                                 for name, _ in source.get("files", [])}
        return self._blobs[path]

    def _dispatch(self) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        with self._lock:
            still_waiting: deque = deque()
            while self._waiting:
                job, future, on_progress = self._waiting.popleft()
                if job.device == "cuda" and not any(n.gpus for n in self._nodes.values()):
                    future.set_result(self._failed(job, "device 'cuda' asked for, but no node of the cluster has a GPU"))
                    continue
                placed = self._place(job)
                if placed is None:
                    still_waiting.append((job, future, on_progress))
                    continue
                node, gpu = placed
                if gpu:
                    node.gpu_busy += 1
                else:
                    node.cpu_busy += 1
                ref = _run_on_node.options(
                    num_cpus=0 if gpu else 1, num_gpus=1 if gpu else 0,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False),
                ).remote(job.to_dict(), self._blob_refs(job), self._queue if on_progress else None)
                self._running[ref] = _Running(job, future, node, gpu, time.perf_counter() + job.timeout_s + self.grace_s,
                                              on_progress)
                if on_progress:
                    self._progress[job.key] = on_progress
            self._waiting = still_waiting

    def _release(self, ref: Any) -> _Running | None:
        """Free the slot of a finished job (None if another thread already did)."""
        with self._lock:
            run = self._running.pop(ref, None)
            if run is None:
                return None
            if run.gpu:
                run.node.gpu_busy -= 1
            else:
                run.node.cpu_busy -= 1
            self._progress.pop(run.job.key, None)
        return run

    def _failed(self, job: Job, why: str, timed_out: bool = False, run: _Running | None = None) -> JobResult:
        return JobResult(payload=None, returncode=None, timed_out=timed_out,
                         wall_time_s=time.perf_counter() - run.started if run else 0.0, log="",
                         host=run.node.host if run else "", executor=self.name,
                         node=run.node.node_id if run else None, failure=why)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:  # a lost connection must not leave futures unresolved forever
                if self._stop.is_set():
                    return
                time.sleep(POLL_S)

    def _step(self) -> None:
        self._refresh_nodes()
        self._dispatch()
        self._drain_progress()
        refs = list(self._running)
        if not refs:
            time.sleep(POLL_S)
            return
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=POLL_S)
        for ref in ready:
            run = self._release(ref)
            if run is None:
                continue
            try:
                out = ray.get(ref)
            except ray.exceptions.RayError as exc:  # the node, the worker or the task itself died
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                run.future.set_result(self._failed(run.job, f"Ray: {type(exc).__name__}: {first}", run=run))
                continue
            if "payload" not in out:
                run.future.set_result(self._failed(run.job, out.get("failure", "no result"), run=run))
                continue
            run.future.set_result(JobResult(**out))
        now = time.perf_counter()
        for ref, run in list(self._running.items()):
            if now > run.deadline and self._release(ref) is not None:  # a hung worker or node
                ray.cancel(ref, force=True)
                run.future.set_result(self._failed(
                    run.job, f"no answer {run.job.timeout_s + self.grace_s:g} s after it started on {run.node.host}; "
                    "the driver cancelled the task (force)", timed_out=True, run=run))

    def _drain_progress(self) -> None:
        try:
            items = self._queue.get_nowait_batch(self._queue.qsize())
        except Exception:
            return
        for key, body in items:
            callback = self._progress.get(key)
            if callback is not None:
                try:
                    callback(body)
                except Exception:
                    pass

    def cancel_all(self) -> None:
        with self._lock:
            running = list(self._running.items())
            waiting = list(self._waiting)
            self._waiting.clear()
        for ref, run in running:
            if self._release(ref) is not None:
                ray.cancel(ref, force=True)
                run.future.set_result(self._failed(run.job, "cancelled", run=run))
        for job, future, _ in waiting:
            future.set_result(self._failed(job, "cancelled"))

    def close(self) -> None:
        self.cancel_all()
        self._stop.set()
        self._thread.join(timeout=5)
        ray.shutdown()
