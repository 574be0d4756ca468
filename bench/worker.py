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
from bench.canonical import init_weights
from bench.data import DataSource
from bench.data import load as load_data
from bench.flops import train_flops_per_step
from bench.learning import frozen_weights, learning_problems
from bench.memory import GpuMemorySampler, peak_rss_mb
from bench.phases import measure_phases
from bench.results import atomic_write_json
from bench.specs import Case
from bench.timing import UNSTABLE_CV, StepTimer, step_stats, throughput

ERROR_TAIL_LINES = 12


def error_tail(text: str, lines: int = ERROR_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _is_oom(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}".lower()
    return isinstance(exc, MemoryError) or "out of memory" in text or "resourceexhausted" in text


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _gpu_fields(
    sampler: GpuMemorySampler | None,
    adapter: Any,
    fit_window: tuple,
    steps: int,
    steps_per_epoch: int,
    device_name: str,
) -> dict[str, Any]:
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
    }


def run_case(case: Case, source: DataSource, threads: int, sgemm_gflops: float | None = None) -> dict[str, Any]:
    """Train and evaluate one case; return the measured fields of its Record."""
    import adapters

    measured: dict[str, Any] = {}
    try:
        adapter = adapters.load(case.adapter)
    except ImportError as exc:
        return {"status": "unavailable", "error": f"{type(exc).__name__}: {exc}"}
    train = case.train
    try:
        adapter.setup(case.device, threads, train.seed)
        if case.device == "cuda" and not adapter.uses_gpu():
            return {"status": "failed", "error": "device 'cuda' asked for, but the framework sees no CUDA GPU"}
        data = load_data(source)
        measured["dataset_sha256"] = data.sha256[:16]
        plan = BatchPlan(len(data.y_train), train.batch_size, train.epochs, train.max_steps, train.seed)
        timer = StepTimer(sync=adapter.sync)
        sampler = GpuMemorySampler() if adapter.uses_gpu() else None
        fit_window: tuple = ()
        with sampler or contextlib.nullcontext():
            model = adapter.build(case.model, train)
            measured["params"] = adapter.count_params(model)
            start_weights = init_weights(case.init, case.model, train.seed)
            if start_weights is not None:
                adapter.set_weights(model, start_weights)
            weights_before = adapter.weight_arrays(model)
            start = sampler.mark() if sampler else None
            t0 = time.perf_counter()
            fit = adapter.fit(model, data, train, plan, timer)
            measured["train_time_s"] = time.perf_counter() - t0
            if sampler:
                fit_window = (start, sampler.mark())
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
    except Exception as exc:
        measured.update(status="oom" if _is_oom(exc) else "failed", error=error_tail(traceback.format_exc()))
        measured["cpu_rss_peak_mb"] = peak_rss_mb()
        return measured

    times = timer.times_ms()
    stats = step_stats(times, train.warmup_steps)
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
    measured.update(
        status="diverged" if fit.diverged else "not-learning" if problems else "ok",
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
        first_step_ms=_finite(stats.first_step_ms),
        warmup_steps=stats.warmup_steps,
        timed_steps=stats.timed_steps,
        step_time_ms_median=_finite(stats.median_ms),
        step_time_ms_mean=_finite(stats.mean_ms),
        step_time_ms_p10=_finite(stats.p10_ms),
        step_time_ms_p90=_finite(stats.p90_ms),
        step_time_ms_iqr=_finite(stats.iqr_ms),
        step_time_cv=_finite(stats.cv),
        step_time_unstable=bool(stats.cv > UNSTABLE_CV) if stats.timed_steps else None,
        throughput_samples_per_s=_finite(throughput(train.batch_size, stats.median_ms)),
        train_gflop_per_step=flops / 1e9,
        achieved_gflops=_finite(achieved),
        pct_of_sgemm=_finite(100 * achieved / sgemm_gflops) if sgemm_gflops else None,
        cpu_rss_peak_mb=peak_rss_mb(),
        step_times_ms=times,
        threads_intra=info.extra.get("threads_intra"),
        threads_inter=info.extra.get("threads_inter"),
        cuda_version=info.extra.get("cuda_version"),
        cudnn_version=info.extra.get("cudnn_version"),
        **gpu_fields,
    )
    return measured


def main(argv: list[str]) -> int:
    job_path, out_path = Path(argv[0]), Path(argv[1])
    job = json.loads(job_path.read_text(encoding="utf-8"))
    case = Case.from_dict(job["case"])
    source = DataSource(**job["source"])
    measured = run_case(case, source, job["threads"], job.get("sgemm_gflops"))
    atomic_write_json(out_path, measured)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
