"""The child process of one case: `python -m bench.worker JOB_JSON OUT_JSON`.

It loads the adapter by name (so each framework lives in its own process), trains and
evaluates under the meters, and writes one JSON object of measurements to OUT_JSON. Whatever
goes wrong is caught and reported as a status; a crash that kills the process outright is
classified by the runner from the missing output.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench.batching import BatchPlan
from bench.data import DataSource
from bench.data import load as load_data
from bench.memory import GpuMemorySampler, peak_rss_mb
from bench.results import atomic_write_json
from bench.specs import Case
from bench.timing import StepTimer, step_stats, throughput

ERROR_TAIL_LINES = 12


def error_tail(text: str, lines: int = ERROR_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _is_oom(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}".lower()
    return isinstance(exc, MemoryError) or "out of memory" in text or "resourceexhausted" in text


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def run_case(case: Case, source: DataSource, threads: int) -> dict[str, Any]:
    """Train and evaluate one case; return the measured fields of its Record."""
    import adapters

    measured: dict[str, Any] = {}
    try:
        adapter = adapters.load(case.adapter)
    except ImportError as exc:
        return {"status": "unavailable", "error": f"{type(exc).__name__}: {exc}"}
    try:
        adapter.setup(case.device, threads, case.train.seed)
        if case.device == "cuda" and not adapter.uses_gpu():
            return {"status": "failed", "error": "device 'cuda' asked for, but the framework sees no CUDA GPU"}
        data = load_data(source)
        measured["dataset_sha256"] = data.sha256[:16]
        plan = BatchPlan(
            len(data.y_train), case.train.batch_size, case.train.epochs, case.train.max_steps, case.train.seed
        )
        timer = StepTimer(sync=adapter.sync)
        sampler = GpuMemorySampler() if adapter.uses_gpu() else None
        with sampler or contextlib.nullcontext():
            model = adapter.build(case.model, case.train)
            measured["params"] = adapter.count_params(model)
            t0 = time.perf_counter()
            fit = adapter.fit(model, data, case.train, plan, timer)
            measured["train_time_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            ev = adapter.evaluate(model, data, case.train)
            measured["eval_time_s"] = time.perf_counter() - t0
        info = adapter.runtime_info(model)
    except Exception as exc:
        measured.update(status="oom" if _is_oom(exc) else "failed", error=error_tail(traceback.format_exc()))
        measured["cpu_rss_peak_mb"] = peak_rss_mb()
        return measured

    times = timer.times_ms()
    stats = step_stats(times, case.train.warmup_steps)
    if sampler is not None:
        gpu = sampler.result()
        gpu_fields = {
            "gpu_mem_peak_mb": gpu.process_peak_mb,
            "gpu_mem_device_peak_mb": gpu.device_peak_mb,
            "gpu_mem_source": gpu.source,
            "gpu_mem_reason": gpu.reason,
            "gpu_allocator_peak_mb": adapter.allocator_peak_mb(),
        }
    else:
        gpu_fields = {"gpu_mem_reason": f"case ran on the CPU ({info.device_name})"}
    accuracy_reason = None
    if fit.diverged:
        accuracy_reason = "training diverged (non-finite loss)"
    elif not data.has_labels:
        accuracy_reason = "synthetic data: labels are random, accuracy is meaningless"
    report_acc = accuracy_reason is None
    measured.update(
        status="diverged" if fit.diverged else "ok",
        error="non-finite training loss; training stopped" if fit.diverged else None,
        framework=info.framework,
        framework_version=info.framework_version,
        backend=info.backend,
        compile_mode=info.compile_mode,
        device_name=info.device_name,
        batch_order_sha256=plan.order_hash(),
        steps_run=fit.steps,
        epochs_run=fit.epochs,
        train_loss=_finite_or_none(fit.train_loss),
        train_accuracy=_finite_or_none(fit.train_accuracy) if report_acc else None,
        test_loss=_finite_or_none(ev.loss) if report_acc else None,
        test_accuracy=_finite_or_none(ev.accuracy) if report_acc else None,
        accuracy_reason=accuracy_reason,
        first_step_ms=_finite_or_none(stats.first_step_ms),
        warmup_steps=stats.warmup_steps,
        timed_steps=stats.timed_steps,
        step_time_ms_median=_finite_or_none(stats.median_ms),
        step_time_ms_mean=_finite_or_none(stats.mean_ms),
        step_time_ms_p10=_finite_or_none(stats.p10_ms),
        step_time_ms_p90=_finite_or_none(stats.p90_ms),
        step_time_ms_iqr=_finite_or_none(stats.iqr_ms),
        step_time_cv=_finite_or_none(stats.cv),
        throughput_samples_per_s=_finite_or_none(throughput(case.train.batch_size, stats.median_ms)),
        cpu_rss_peak_mb=peak_rss_mb(),
        step_times_ms=times,
        **gpu_fields,
    )
    return measured


def main(argv: list[str]) -> int:
    job_path, out_path = Path(argv[0]), Path(argv[1])
    job = json.loads(job_path.read_text(encoding="utf-8"))
    case = Case.from_dict(job["case"])
    source = DataSource(**job["source"])
    measured = run_case(case, source, job["threads"])
    atomic_write_json(out_path, measured)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
