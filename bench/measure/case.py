"""One case's measurement, in the case's own process: train, evaluate and measure, as columns.

`measure_case` drives the adapter in the same order for every framework (build, load the starting
weights, fit under the step timer with the curve between steps, evaluate), with the GPU sampler
around it and the extra phases (kernel path, forward/backward split) after the main timing, so they
cannot perturb it. Whatever goes wrong becomes the case's status; nothing escapes as an exception.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from bench.core.columns import columns
from bench.core.compile_cache import COMPILE_CACHE_VAR
from bench.core.dataset import DataSource
from bench.core.errors import error_tail
from bench.core.specs import Case
from bench.core.status import Status

RUNTIME_COLUMNS = columns(
    "how it ran",
    ("framework", "str", "the framework that trained it (tensorflow, torch, jax)"),
    ("framework_version", "str", "its version"),
    ("backend", "str", "Keras' backend, or the compiler (inductor), or eager"),
    ("compile_mode", "str", "tf.function / XLA / torch.compile and its graph breaks / eager"),
    ("device_name", "str", "the device the steps ran on, e.g. 'cpu' or 'cuda:0 (NVIDIA H200)'"),
    ("dataset_sha256", "str", "fingerprint of the arrays trained on: the same data in every row"),
    ("batch_order_sha256", "str", "fingerprint of the batch order: the same batches in every framework"),
)
RESULT_COLUMNS = columns(
    "results",
    ("params", "int", "trainable parameters", {"table": True}),
    ("steps_run", "int", "training steps run"),
    ("epochs_run", "int", "epochs begun"),
    ("first_step_loss", "float", "loss of the very first batch, before any update", {"fmt": ".4f"}),
    ("train_loss", "float", "mean training loss over the last epoch's batches", {"fmt": ".4f", "better": "lower"}),
    ("train_accuracy", "float", "mean training accuracy over the last epoch's batches", {"fmt": ".3f", "better": "higher"}),
    ("test_loss", "float", "cross-entropy on the whole test split", {"fmt": ".4f", "better": "lower"}),
    ("test_accuracy", "float", "accuracy on the whole test split", {"fmt": ".3f", "better": "higher", "gate": True, "table": True}),
    ("accuracy_reason", "str", "why there is no accuracy (diverged, not learning, random labels), or why the accuracy does not show learning (status inconclusive)"),
)
TIME_COLUMNS = columns(
    "time",
    ("train_time_s", "float", "fit's wall time without the curve's evaluations", {"unit": "s", "fmt": ".1f"}),
    ("eval_time_s", "float", "the final evaluation of the test split", {"unit": "s", "fmt": ".1f"}),
)
# Where a case's wall time goes beyond its steps (a sweep multiplies cases, so this is worth seeing):
# wall_time_s = startup_s + import_s + build_s + train_time_s + curve_eval_time_s + eval_time_s
#   + kernel_path_s + inference_s + phase_split_s + what is left (runtime_info, GPU fields, writing the result).
OVERHEAD_COLUMNS = columns(
    "case overhead",
    ("startup_s", "float", "the case's process from its start to the measurement: Python and the harness's imports (Linux; else empty)", {"unit": "s", "fmt": ".2f"}),
    ("import_s", "float", "loading the adapter: the framework's import and setup", {"unit": "s", "fmt": ".2f"}),
    ("build_s", "float", "loading the data, building the model, loading its starting weights", {"unit": "s", "fmt": ".2f"}),
    ("kernel_path_s", "float", "finding out which recurrent kernel runs (a profiled step for torch), after training", {"unit": "s", "fmt": ".2f"}),
    ("phase_split_s", "float", "the forward/backward/optimizer split, after training", {"unit": "s", "fmt": ".2f"}),
)


def process_age_s() -> float | None:
    """Seconds since this process started, from /proc (10 ms resolution); None where there is no /proc."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            started_ticks = int(f.read().rpartition(")")[2].split()[19])  # field 22: starttime
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None
PATH_COLUMNS = columns(
    "what ran",
    ("matmul_precision", "str", "the precision settings in force, read back from the framework"),
    ("compile_policy", "str", "jit_compile / cudnn.benchmark / deterministic / torch.compile mode"),
    ("input_transfer", "str", "where a batch reaches the device: before timing (torch: the whole set), between the steps (Keras: each batch) or inside each timed step (TF 1.x feed_dict)"),
    ("kernel_path", "str", "which recurrent kernel ran: cuDNN, oneDNN, a fused op, or a step loop", {"table": True}),
    ("compile_cache", "str", "cold (an empty Inductor/Triton cache for the case's process: what a first run pays) or warm (the machine's caches, --warm-compile-cache)"),
)


@dataclass(frozen=True)
class CaseJob:
    """The payload of a `case` job: one case to train, evaluate and measure."""

    case: Case
    source: DataSource
    threads: int
    run_id: str
    repeat: int = 0  # which of the case's processes this is (run --repeat K: 0..K-1)
    sgemm_gflops: float | None = None  # this machine's float32 matmul speed, for pct_of_sgemm
    target_accuracy: float | None = None  # for time_to_target_s / steps_to_target
    require_idle_gpu: bool = False  # fail a GPU case that shares its GPU with another process
    warm_compile_cache: bool = False  # keep the machine's compile caches (default: an empty one per process)

    def to_payload(self) -> dict[str, Any]:
        return {**asdict(self), "case": self.case.to_dict(), "source": self.source.to_dict()}

    @classmethod
    def from_payload(cls, d: dict[str, Any]) -> CaseJob:
        return cls(**{**d, "case": Case.from_dict(d["case"]), "source": DataSource.from_dict(d["source"])})


def _is_oom(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}".lower()
    return isinstance(exc, MemoryError) or "out of memory" in text or "resourceexhausted" in text


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _gpu_fields(sampler: Any, adapter: Any, window_from: int, steps: int, steps_per_epoch: int,
                device_name: str) -> dict[str, Any]:
    """GPU memory, energy and state. Energy and state cover the timed steps only: from each step's own edges
    (StepTimer.edge), after step 0 and the warm-up steps, so compilation, evaluations and the time between
    steps (a framework's loop, Keras' per-epoch setup) never count as training."""
    if sampler is None:
        return {"gpu_mem_reason": f"case ran on the CPU ({device_name})", "energy_source": "case ran on the CPU"}
    gpu = sampler.result()
    timed = steps - window_from
    if timed > 0:
        joules, energy_source = sampler.steps_energy_j(window_from)
        energy_source += f", over the {timed} steps after step 0 and the warm-up (not the time between them)"
    else:
        joules, energy_source = None, "no timed steps (step 0 and warm-up only)"
    per_step = joules / timed if joules is not None and timed > 0 else None
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
        **(sampler.steps_state(window_from) if timed > 0 else {}),
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
    from bench.core.batching import BatchPlan
    from bench.core.canonical import init_weights
    from bench.core.timer import StepTimer
    from bench.data import load as load_data
    from bench.measure.curve import BetweenSteps, curve_columns, test_accuracy, test_scores
    from bench.measure.disturbance import LoadMeter
    from bench.measure.flops import sgemm_share, train_flops_per_step
    from bench.measure.inference import FirstCall, measure_inference
    from bench.measure.learning import frozen_weights, learning_verdict
    from bench.measure.loop import loop_columns
    from bench.measure.memory import GpuMemorySampler, device_used_mb, peak_rss_mb
    from bench.measure.phases import measure_phases
    from bench.measure.steps import settling_steps, step_stats, throughput

    case, train = job.case, job.case.train
    measured: dict[str, Any] = {"startup_s": process_age_s()}
    # before the framework makes its GPU context: the device-wide fallback's baseline
    baseline_mb = device_used_mb() if case.device != "cpu" else None
    t0 = time.perf_counter()
    try:
        adapter = adapters.load(case.adapter)
    except ImportError as exc:
        return {"status": Status.UNAVAILABLE.value, "error": f"{type(exc).__name__}: {exc}"}
    try:
        adapter.setup(case.device, job.threads, train.seed)
        adapter.set_precision(train.precision)
        measured["import_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if case.device == "cuda" and not adapter.uses_gpu():
            return {"status": Status.FAILED.value, "error": "device 'cuda' asked for, but the framework sees no CUDA GPU"}
        data = load_data(job.source, case.sequence, case.model.timesteps, case.model.input_size)
        measured["dataset_sha256"] = data.sha256[:16]
        plan = BatchPlan(len(data.y_train), train.batch_size, train.epochs, train.max_steps, train.seed)
        timer = StepTimer(sync=adapter.sync)
        hooks = BetweenSteps(plan.total_steps, plan.steps_per_epoch, timer.elapsed_s, progress,
                             eval_every=train.eval_every)
        timer.between = hooks
        # the timed steps' window opens after step 0 and the warm-up steps
        hooks.window_from = 1 + min(train.warmup_steps, max(plan.total_steps - 1, 0))
        load = LoadMeter()
        hooks.on_window_open.append(load.open)
        sampler = (GpuMemorySampler(baseline_mb=baseline_mb, first_timed_step=hooks.window_from) if adapter.uses_gpu()
                   else None)
        if sampler is not None:
            timer.edge = sampler.edge
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
            measured["build_s"] = time.perf_counter() - t0
            # every inference call of the case goes through this, so its first (a trace, a compile) is timed
            logits_of = FirstCall(lambda x: adapter.logits(model, x))
            if data.has_labels:  # random labels have no accuracy worth a curve
                hooks.evaluate = lambda: test_accuracy(logits_of, data.x_test, data.y_test, train.eval_batch_size)
            if ready is not None:
                ready()
            t0 = time.perf_counter()
            fit = adapter.fit(model, data, train, plan, timer)
            measured["train_time_s"] = time.perf_counter() - t0 - hooks.eval_time_s
            load.close()
            shared = _shared_gpu_failure(sampler, job, "while steps were timed")
            if shared:
                return {**measured, **shared}
            frozen = frozen_weights(weights_before, adapter.weight_arrays(model), adapter.keeps_recurrent_bias(case.model.cell))
            if data.has_labels:  # the curve's own function (the same in every framework), so no second path
                t0 = time.perf_counter()  # to trace: Keras' evaluate() compiled a test function of its own
                scores = test_scores(logits_of, data.x_test, data.y_test, train.eval_batch_size)
                measured["eval_time_s"] = time.perf_counter() - t0
                accuracy, loss = scores.accuracy, scores.loss
            else:  # random labels: nothing to evaluate
                scores, accuracy, loss = None, math.nan, math.nan
        info = adapter.runtime_info(model)
        gpu_fields = _gpu_fields(sampler, adapter, hooks.window_from, fit.steps, plan.steps_per_epoch, info.device_name)
        # After the main timing, so they cannot perturb it (and after evaluation: they update weights).
        xb, yb = data.x_train[: train.batch_size], data.y_train[: train.batch_size]
        t0 = time.perf_counter()
        measured["kernel_path"] = adapter.kernel_path(model, xb, yb)
        measured["kernel_path_s"] = time.perf_counter() - t0
        if train.inference and not fit.diverged:
            measured.update(measure_inference(logits_of, data.x_test, train.eval_batch_size))
            measured["infer_path"] = adapter.inference_path(model)
        else:
            measured["infer_reason"] = "training diverged" if fit.diverged else "skipped (--no-inference, or the matrix's)"
        measured.update(logits_of.columns())
        fns = adapter.phase_functions(model, train, xb, yb) if train.phase_rounds else {}
        if fns and not fit.diverged:
            t0 = time.perf_counter()
            measured.update(measure_phases(fns, train.phase_rounds))
            measured["phase_split_s"] = time.perf_counter() - t0
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
    verdict = None if fit.diverged else learning_verdict(frozen, scores, case.model.num_classes)
    status = Status.DIVERGED if verdict is None else verdict.status
    if fit.diverged:
        accuracy_reason = "training diverged (non-finite loss)"
    elif status == Status.NOT_LEARNING:
        accuracy_reason = "not learning: " + verdict.reason
    elif not data.has_labels:
        accuracy_reason = "synthetic data: labels are random, accuracy is meaningless"
    else:
        accuracy_reason = verdict.reason  # None when ok; why learning is not shown when inconclusive
    report_acc = data.has_labels and status.timed  # an inconclusive run's accuracy is a measurement too
    hooks.finish(fit.steps, _finite(accuracy) if report_acc else None, _finite(loss))
    measured.update(
        status=status.value,
        error=("non-finite training loss; training stopped" if fit.diverged
               else verdict.reason if status == Status.NOT_LEARNING else None),
        **(verdict.columns if verdict else {}),
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
        test_loss=_finite(loss) if report_acc else None,
        test_accuracy=_finite(accuracy) if report_acc else None,
        accuracy_reason=accuracy_reason,
        **stats.columns(),
        throughput_samples_per_s=_finite(throughput(train.batch_size, stats.median_ms)),
        train_gflop_per_step=flops / 1e9,
        achieved_gflops=_finite(achieved),
        **sgemm_share(achieved, job.sgemm_gflops, sampler is not None),
        cpu_rss_peak_mb=peak_rss_mb(),
        step_times_ms=times,
        untimed_steps=untimed,
        threads_intra=info.extra.get("threads_intra"),
        threads_inter=info.extra.get("threads_inter"),
        cuda_version=info.extra.get("cuda_version"),
        cudnn_version=info.extra.get("cudnn_version"),
        matmul_precision=info.extra.get("matmul_precision"),
        compile_cache=os.environ.get(COMPILE_CACHE_VAR),
        compile_policy=info.extra.get("compile_policy"),
        input_transfer=info.extra.get("input_transfer"),
        **gpu_fields,
        **curve_columns(hooks.points, job.target_accuracy, None if report_acc else accuracy_reason, hooks.eval_time_s,
                        (stats.first_step_ms, stats.median_ms)),
        **loop_columns(timer.starts_ns, timer.durations_ns, stats.warmup_steps, train.batch_size, hooks.eval_spans_ns),
        **load.columns(gpu_fields.get("gpu_shared_with")),
    )
    return measured
