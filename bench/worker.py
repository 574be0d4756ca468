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

import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench.jobs import BARRIER_VAR, PARENT_PID_VAR, RESULT_FD_VAR, CaseJob
from bench.status import Status

ERROR_TAIL_LINES = 12
PROTOCOL = 3  # 2: job on stdin, messages on RNNBENCH_RESULT_FD; 3: the job is one line, start barrier


def error_tail(text: str, lines: int = ERROR_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _is_oom(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}".lower()
    return isinstance(exc, MemoryError) or "out of memory" in text or "resourceexhausted" in text


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _gpu_fields(sampler: Any, adapter: Any, fit_window: tuple, steps: int, steps_per_epoch: int,
                device_name: str) -> dict[str, Any]:
    if sampler is None:
        return {"gpu_mem_reason": f"case ran on the CPU ({device_name})", "energy_source": "case ran on the CPU"}
    gpu = sampler.result()
    joules, energy_source = sampler.energy_j(*fit_window) if fit_window else (None, "no training window")
    per_step = joules / steps if joules is not None and steps else None
    return {
        "gpu_mem_peak_mb": gpu.process_peak_mb,
        "gpu_mem_device_peak_mb": gpu.device_peak_mb,
        "gpu_mem_source": gpu.source,
        "gpu_mem_reason": gpu.reason,
        "gpu_allocator_peak_mb": adapter.allocator_peak_mb(),
        "gpu_name": gpu.device.name if gpu.device else None,
        "gpu_uuid": gpu.device.uuid if gpu.device else None,
        "gpu_mig": gpu.device.mig if gpu.device else None,
        "energy_j_per_step": per_step,
        "energy_j_per_epoch": per_step * steps_per_epoch if per_step is not None else None,
        "energy_source": energy_source,
        **(sampler.state(*fit_window) if fit_window else {}),
        "gpu_shared_with": sampler.shared_with(),
    }


def _shared_gpu_failure(sampler: Any, job: CaseJob, when: str) -> dict[str, Any] | None:
    """With --require-idle-gpu, a case that finds another process on its GPU fails (not timed shared)."""
    shared = sampler.shared_with() if sampler is not None and job.require_idle_gpu else None
    if not shared:
        return None
    return {"status": Status.FAILED.value, "gpu_shared_with": shared,
            "error": f"--require-idle-gpu: the GPU is shared with other processes {when}: {shared}"}


def measure_case(job: CaseJob, progress: Callable[[dict], None] | None = None,
                 ready: Callable[[], None] | None = None) -> dict[str, Any]:
    """Train and evaluate one case; return the measured columns of its Record. `ready` is called
    once the model is built, right before training (the start barrier of `bench ab`'s pairs)."""
    import adapters
    from adapters.base import CaseUnavailable
    from bench.batching import BatchPlan
    from bench.canonical import init_weights
    from bench.curve import BetweenSteps, curve_columns, test_accuracy
    from bench.data import load as load_data
    from bench.flops import train_flops_per_step
    from bench.learning import frozen_weights, learning_problems
    from bench.memory import GpuMemorySampler, peak_rss_mb
    from bench.phases import measure_phases
    from bench.timing import StepTimer, settling_steps, step_stats, throughput

    case, train = job.case, job.case.train
    measured: dict[str, Any] = {}
    try:
        adapter = adapters.load(case.adapter)
    except ImportError as exc:
        return {"status": Status.UNAVAILABLE.value, "error": f"{type(exc).__name__}: {exc}"}
    try:
        adapter.setup(case.device, job.threads, train.seed)
        adapter.set_precision(train.precision)
        if case.device == "cuda" and not adapter.uses_gpu():
            return {"status": Status.FAILED.value, "error": "device 'cuda' asked for, but the framework sees no CUDA GPU"}
        data = load_data(job.source)
        measured["dataset_sha256"] = data.sha256[:16]
        plan = BatchPlan(len(data.y_train), train.batch_size, train.epochs, train.max_steps, train.seed)
        timer = StepTimer(sync=adapter.sync)
        hooks = BetweenSteps(plan.total_steps, plan.steps_per_epoch, timer.elapsed_s, progress,
                             eval_every=train.eval_every)
        timer.between = hooks
        sampler = GpuMemorySampler() if adapter.uses_gpu() else None
        fit_window: tuple = ()
        with sampler or contextlib.nullcontext():
            shared = _shared_gpu_failure(sampler, job, "at the start of the case")
            if shared:
                return shared
            model = adapter.build(case.model, train)
            measured["params"] = adapter.count_params(model)
            start_weights = init_weights(case.init, case.model, train.seed)
            if start_weights is not None:
                adapter.set_weights(model, start_weights)
            weights_before = adapter.weight_arrays(model)
            if data.has_labels:  # random labels have no accuracy worth a curve
                hooks.evaluate = lambda: test_accuracy(adapter, model, data.x_test, data.y_test, train.eval_batch_size)
            if ready is not None:
                ready()
            start = sampler.mark() if sampler else None
            t0 = time.perf_counter()
            fit = adapter.fit(model, data, train, plan, timer)
            measured["train_time_s"] = time.perf_counter() - t0 - hooks.eval_time_s
            if sampler:
                fit_window = (start, sampler.mark())
            shared = _shared_gpu_failure(sampler, job, "while steps were timed")
            if shared:
                return {**measured, **shared}
            frozen = frozen_weights(weights_before, adapter.weight_arrays(model), adapter.keeps_recurrent_bias(case.model.cell))
            t0 = time.perf_counter()
            ev = adapter.evaluate(model, data, train)
            measured["eval_time_s"] = time.perf_counter() - t0
        info = adapter.runtime_info(model)
        gpu_fields = _gpu_fields(sampler, adapter, fit_window, fit.steps, plan.steps_per_epoch, info.device_name)
        # After the main timing, so they cannot perturb it (and after evaluation: they update weights).
        xb, yb = data.x_train[: train.batch_size], data.y_train[: train.batch_size]
        measured["kernel_path"] = adapter.kernel_path(model, xb, yb)
        fns = adapter.phase_functions(model, train, xb, yb) if train.phase_rounds else {}
        if fns and not fit.diverged:
            measured.update(measure_phases(fns, train.phase_rounds))
    except CaseUnavailable as exc:
        return {"status": Status.UNAVAILABLE.value, "error": str(exc)}
    except Exception as exc:
        measured.update(status=(Status.OOM if _is_oom(exc) else Status.FAILED).value,
                        error=error_tail(traceback.format_exc()))
        measured["cpu_rss_peak_mb"] = peak_rss_mb()
        return measured

    times = timer.times_ms()
    untimed = settling_steps((p[0] for p in hooks.points), len(times))
    stats = step_stats(times, train.warmup_steps, untimed)
    flops = train_flops_per_step(case.model, train.batch_size)
    achieved = flops / (stats.median_ms / 1e3) / 1e9 if stats.timed_steps else math.nan
    problems = [] if fit.diverged else learning_problems(frozen, fit.first_loss, fit.train_loss, data.has_labels)
    if fit.diverged:
        accuracy_reason = "training diverged (non-finite loss)"
    elif problems:
        accuracy_reason = "not learning: " + "; ".join(problems)
    elif not data.has_labels:
        accuracy_reason = "synthetic data: labels are random, accuracy is meaningless"
    else:
        accuracy_reason = None
    report_acc = accuracy_reason is None
    hooks.finish(fit.steps, _finite(ev.accuracy) if report_acc else None)
    status = Status.DIVERGED if fit.diverged else Status.NOT_LEARNING if problems else Status.OK
    measured.update(
        status=status.value,
        error="non-finite training loss; training stopped" if fit.diverged else "; ".join(problems) or None,
        framework=info.framework,
        framework_version=info.framework_version,
        backend=info.backend,
        compile_mode=info.compile_mode,
        device_name=info.device_name,
        batch_order_sha256=plan.order_hash(),
        steps_run=fit.steps,
        epochs_run=fit.epochs,
        first_step_loss=_finite(fit.first_loss),
        train_loss=_finite(fit.train_loss),
        train_accuracy=_finite(fit.train_accuracy) if report_acc else None,
        test_loss=_finite(ev.loss) if report_acc else None,
        test_accuracy=_finite(ev.accuracy) if report_acc else None,
        accuracy_reason=accuracy_reason,
        **stats.columns(),
        throughput_samples_per_s=_finite(throughput(train.batch_size, stats.median_ms)),
        train_gflop_per_step=flops / 1e9,
        achieved_gflops=_finite(achieved),
        pct_of_sgemm=_finite(100 * achieved / job.sgemm_gflops) if job.sgemm_gflops else None,
        cpu_rss_peak_mb=peak_rss_mb(),
        step_times_ms=times,
        untimed_steps=untimed,
        threads_intra=info.extra.get("threads_intra"),
        threads_inter=info.extra.get("threads_inter"),
        cuda_version=info.extra.get("cuda_version"),
        cudnn_version=info.extra.get("cudnn_version"),
        matmul_precision=info.extra.get("matmul_precision"),
        compile_policy=info.extra.get("compile_policy"),
        **gpu_fields,
        **curve_columns(hooks.points, job.target_accuracy, accuracy_reason, hooks.eval_time_s),
    )
    return measured


def run_case(payload: dict[str, Any], progress: Callable[[dict], None] | None = None,
             ready: Callable[[], None] | None = None) -> dict[str, Any]:
    """A `case` job: its Record, built and checked against the schema here, in the case's process,
    so a measurement the schema does not know fails this case (as a row), never the whole run."""
    from bench.results import Record

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
    from bench.parity import worker_run

    return worker_run(payload)


WORKERS: dict[str, Callable[..., dict[str, Any]]] = {"case": run_case, "parity": _run_parity}


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
    result = WORKERS[job["kind"]](job["payload"], lambda body: channel.send("progress", body), ready)
    channel.send("result", result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
