"""The local executor: each job a fresh child process of this one, in its own process group."""

from __future__ import annotations

import json
import os
import platform
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from bench.execution.executors.base import ProgressCallback, ReadyCallback
from bench.execution.jobs import BARRIER_VAR, PARENT_PID_VAR, RESULT_FD_VAR, Job, JobResult

REPO_ROOT = Path(__file__).resolve().parents[3]
LOG_TAIL_BYTES = 4 << 20  # a case's log travels back as data: keep its last 4 MiB
class LocalProcessExecutor:
    """Each job is `python -m bench.worker` in a fresh process of its own process group, one at a time.

    `python` and `root` choose which interpreter and which checkout of rnnbench run the job (the
    runner uses this one; `bench ab` points them at another virtual environment or git worktree).
    """

    name = "local"

    def __init__(self, python: str | None = None, root: Path | None = None, parallel: int = 1) -> None:
        self.python = python or sys.executable
        self.root = Path(root or REPO_ROOT)
        self.parallel = parallel
        self._running: dict[int, subprocess.Popen] = {}
        self._by_future: dict[Future, subprocess.Popen] = {}
        self._cancelled: set[int] = set()
        self._lock = threading.Lock()

    def slots(self) -> int:
        return self.parallel

    def environment(self, job: Job) -> dict[str, str]:
        env = dict(os.environ)
        env.update(job.env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.root), env.get("PYTHONPATH")]))
        env[PARENT_PID_VAR] = str(os.getpid())
        env.pop(RESULT_FD_VAR, None)
        return env

    def submit(self, job: Job, on_progress: ProgressCallback | None = None,
               on_ready: ReadyCallback | None = None) -> Future[JobResult]:
        """Start `job`. A job with RNNBENCH_START_BARRIER=1 in its env stops before its first training
        step and calls `on_ready`; `release(future)` lets it train (`bench ab` starts a pair together)."""
        future: Future[JobResult] = Future()
        future.set_running_or_notify_cancel()
        read_fd, write_fd = os.pipe()
        log = tempfile.TemporaryFile()
        env = self.environment(job)
        env[RESULT_FD_VAR] = str(write_fd)
        t0 = time.perf_counter()
        # Started from the caller's thread, which outlives the job: the child's parent-death signal
        # fires when the thread that forked it ends.
        proc = subprocess.Popen(
            [self.python, "-m", "bench.worker", "--job", job.key],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.root,
            pass_fds=(write_fd,),
            start_new_session=True,  # its own group: a timeout kills the case and its children
        )
        os.close(write_fd)
        with self._lock:
            self._running[proc.pid] = proc
            self._by_future[future] = proc
        threading.Thread(
            target=self._supervise, args=(job, proc, read_fd, log, t0, future, on_progress, on_ready),
            name=f"job-{job.key}", daemon=True,
        ).start()
        return future

    def describe(self) -> dict[str, Any]:
        return {}  # this machine: meta.json's environment already says everything

    def release(self, future: Future) -> None:
        """Let a job waiting at its start barrier begin training (a no-op once it has ended)."""
        with self._lock:
            proc = self._by_future.get(future)
        if proc is None:
            return
        try:
            proc.stdin.write(b"go\n")
            proc.stdin.close()
        except (OSError, ValueError):  # it ended, or was released already
            pass

    def _supervise(self, job: Job, proc: subprocess.Popen, read_fd: int, log, t0: float,
                   future: Future, on_progress: ProgressCallback | None, on_ready: ReadyCallback | None) -> None:
        messages = _MessageReader(read_fd, on_progress, on_ready)
        reader = threading.Thread(target=messages.run, name=f"job-{job.key}-messages", daemon=True)
        reader.start()
        timed_out = False
        try:
            proc.stdin.write(json.dumps(job.to_dict()).encode() + b"\n")
            proc.stdin.flush()
            if job.env.get(BARRIER_VAR) != "1":
                proc.stdin.close()
        except OSError:  # the process died before reading its job; its exit code says more
            pass
        try:
            proc.wait(timeout=job.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
        wall = time.perf_counter() - t0
        messages.finish()
        reader.join(timeout=5)
        with self._lock:
            self._running.pop(proc.pid, None)
            self._by_future.pop(future, None)
            cancelled = proc.pid in self._cancelled
        future.set_result(JobResult(
            payload=None if timed_out else messages.result,
            returncode=None if timed_out or cancelled else proc.returncode,
            timed_out=timed_out,
            wall_time_s=wall,
            log=_tail(log),
            host=platform.node(),
            executor=self.name,
            failure="cancelled" if cancelled else None,
        ))

    def cancel_all(self) -> None:
        with self._lock:
            procs = list(self._running.values())
            self._cancelled.update(p.pid for p in procs)
        for proc in procs:
            _kill_group(proc)

    def close(self) -> None:
        self.cancel_all()


class _MessageReader:
    """Reads the worker's JSON lines: progress goes to the callback, the last result is kept.

    It stops at end of file or when told the process has ended (a grandchild that inherited the
    descriptor must not keep the job open).
    """

    def __init__(self, fd: int, on_progress: ProgressCallback | None, on_ready: ReadyCallback | None = None) -> None:
        self.fd, self.on_progress, self.on_ready = fd, on_progress, on_ready
        self.result: dict[str, Any] | None = None
        self._done = threading.Event()
        self._buffer = b""

    def run(self) -> None:
        try:
            while True:
                ready, _, _ = select.select([self.fd], [], [], 0.2)
                if not ready:
                    if self._done.is_set():
                        return
                    continue
                chunk = os.read(self.fd, 1 << 16)
                if not chunk:
                    return
                self._buffer += chunk
                *lines, self._buffer = self._buffer.split(b"\n")
                for line in lines:
                    self._handle(line)
        finally:
            os.close(self.fd)

    def _handle(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            return
        if "result" in message:
            self.result = message["result"]
        elif "ready" in message and self.on_ready is not None:
            self.on_ready()
        elif "progress" in message and self.on_progress is not None:
            try:
                self.on_progress(message["progress"])
            except Exception:  # a display problem must never lose a case
                pass

    def finish(self) -> None:
        self._done.set()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _tail(log) -> str:
    log.seek(0, os.SEEK_END)
    size = log.tell()
    log.seek(max(0, size - LOG_TAIL_BYTES))
    text = log.read().decode("utf-8", errors="replace")
    log.close()
    return text if size <= LOG_TAIL_BYTES else f"[first {size - LOG_TAIL_BYTES} bytes of the log dropped]\n{text}"
