"""One flat record per case: the columns of results.parquet.

Column names are a public contract (users load the parquet): bump SCHEMA_VERSION when a column
changes meaning or is removed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from bench.core.specs import Case
from bench.core.status import Status  # noqa: F401

# 2: `repeat` (run --repeat K), and where each case ran (`host`, `executor`, `node`)
# 3: `precision` with the setting read back (`matmul_precision`), `compile_policy`, and the GPU's
#    state while steps were timed (clocks, temperature, power, throttle reasons, other processes)
# 4: `untimed_steps`: the steps right after a curve evaluation are left out of the step-time statistics
SCHEMA_VERSION = 4
@dataclass(frozen=True)
class Record:
    """Everything measured about one case. None means "not measured" (reason in a *_reason column)."""

    # identity
    run_id: str
    case_id: str
    label: str  # the case's name where it has one (reference cases A1..D3, user matrices), else ""
    adapter: str
    # model
    cell: str
    bidirectional: bool
    units: str  # per layer, comma-separated, e.g. "256,128"
    layers: int
    activation: str
    dropout: str  # per layer, comma-separated
    # training
    dataset: str
    batch_size: int
    epochs: int
    max_steps: int | None
    learning_rate: float
    optimizer: str
    adam_epsilon: float
    lr_schedule: str
    lr_decay: float
    lr_decay_steps: int
    seed: int
    device: str  # what was asked: auto / cpu / cuda
    threads: int
    init: str  # framework / keras / torch
    precision: str = "fp32"  # fp32 / tf32 / bf16 / fp16 (what was asked; matmul_precision: what was in force)
    repeat: int = 0  # which of the case's processes (run --repeat K: 0..K-1)
    # how it ran
    status: str = Status.FAILED.value
    error: str | None = None
    host: str | None = None  # the machine the case's process ran on
    executor: str | None = None  # local or ray
    node: str | None = None  # the Ray node id, where there is one
    framework: str | None = None
    framework_version: str | None = None
    backend: str | None = None
    compile_mode: str | None = None
    device_name: str | None = None
    dataset_sha256: str | None = None
    batch_order_sha256: str | None = None
    # results
    params: int | None = None
    steps_run: int | None = None
    epochs_run: int | None = None
    first_step_loss: float | None = None  # loss of the very first batch, before any update
    train_loss: float | None = None
    train_accuracy: float | None = None
    test_loss: float | None = None
    test_accuracy: float | None = None
    accuracy_reason: str | None = None
    # time
    first_step_ms: float | None = None
    warmup_steps: int | None = None
    timed_steps: int | None = None
    step_time_ms_median: float | None = None
    step_time_ms_mean: float | None = None
    step_time_ms_p10: float | None = None
    step_time_ms_p90: float | None = None
    step_time_ms_iqr: float | None = None
    step_time_cv: float | None = None
    throughput_samples_per_s: float | None = None
    train_time_s: float | None = None
    eval_time_s: float | None = None
    wall_time_s: float | None = None
    # memory
    cpu_rss_peak_mb: float | None = None
    gpu_mem_peak_mb: float | None = None
    gpu_mem_device_peak_mb: float | None = None
    gpu_mem_source: str | None = None
    gpu_mem_reason: str | None = None
    gpu_allocator_peak_mb: float | None = None
    gpu_name: str | None = None
    gpu_uuid: str | None = None
    gpu_mig: bool | None = None
    energy_j_per_step: float | None = None
    energy_j_per_epoch: float | None = None
    energy_source: str | None = None
    # the GPU while steps were timed (NVML, GPU cases only; bench/memory.py)
    gpu_state_samples: int | None = None
    gpu_sm_clock_mhz_min: float | None = None
    gpu_sm_clock_mhz_median: float | None = None
    gpu_sm_clock_mhz_max: float | None = None
    gpu_mem_clock_mhz_median: float | None = None
    gpu_temp_c_median: float | None = None
    gpu_temp_c_max: float | None = None
    gpu_power_w_median: float | None = None
    gpu_power_w_max: float | None = None
    gpu_power_limit_w: float | None = None
    gpu_throttled: bool | None = None  # a power, thermal or slowdown clock event was active
    gpu_throttle_reasons: str | None = None  # every clock event reason seen, comma-separated
    gpu_shared_with: str | None = None  # other processes on the GPU: "pid 123 (512 MB), ..."
    # what ran, and how fast against this machine's matmul speed
    matmul_precision: str | None = None  # the precision settings in force, read back from the framework
    compile_policy: str | None = None  # jit_compile / cudnn.benchmark / deterministic / torch.compile mode
    kernel_path: str | None = None
    forward_ms: float | None = None
    backward_ms: float | None = None
    optimizer_ms: float | None = None
    train_gflop_per_step: float | None = None
    achieved_gflops: float | None = None
    pct_of_sgemm: float | None = None
    step_time_unstable: bool | None = None
    # environment (the full record is in meta.json)
    threads_intra: int | None = None
    threads_inter: int | None = None
    cuda_version: str | None = None
    cudnn_version: str | None = None
    python_version: str | None = None
    cpu_model: str | None = None
    cpu_cores: int | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    # time to accuracy: the test accuracy every eval_every steps (bench/curve.py)
    target_accuracy: float | None = None
    steps_to_target: int | None = None
    time_to_target_s: float | None = None  # training seconds (summed step times) to reach target_accuracy
    target_reason: str | None = None  # why there is no time to target
    curve_eval_time_s: float | None = None  # seconds spent on the curve's evaluations (outside every clock)
    curve_steps: tuple[int, ...] = ()
    curve_train_s: tuple[float, ...] = ()
    curve_test_accuracy: tuple[float, ...] = ()
    # raw per-step times (step 0 included), the input of `compare`
    step_times_ms: tuple[float, ...] = ()
    # indices into step_times_ms left out of the statistics: the steps right after a curve evaluation
    untimed_steps: tuple[int, ...] = ()

    @classmethod
    def for_case(cls, case: Case, run_id: str, threads: int, repeat: int = 0) -> Record:
        m, t = case.model, case.train
        return cls(
            repeat=repeat,
            run_id=run_id,
            case_id=case.case_id,
            label=case.label,
            adapter=case.adapter,
            cell=m.cell,
            bidirectional=m.bidirectional,
            units=",".join(map(str, m.units)),
            layers=m.layers,
            activation=m.activation,
            dropout=",".join(f"{d:g}" for d in m.dropout),
            dataset=case.dataset,
            batch_size=t.batch_size,
            epochs=t.epochs,
            max_steps=t.max_steps,
            learning_rate=t.learning_rate,
            optimizer=t.optimizer,
            adam_epsilon=t.adam_epsilon,
            lr_schedule=t.lr_schedule,
            lr_decay=t.lr_decay,
            lr_decay_steps=t.lr_decay_steps,
            seed=t.seed,
            device=case.device,
            threads=threads,
            init=case.init,
            precision=t.precision,
        )

    def with_measurements(self, measured: dict[str, Any]) -> Record:
        """Copy with measured fields set; an unknown key is a programming error and raises."""
        lists = {k: tuple(v or ()) for k, v in measured.items() if k in LIST_COLUMNS}
        return dataclasses.replace(self, **{**measured, **lists})

    def to_row(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        for name in LIST_COLUMNS:
            row[name] = list(row[name])
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Record:
        """The inverse of to_row (a JSON row from a worker); an unknown column raises TypeError."""
        return cls(**{**row, **{k: tuple(row.get(k) or ()) for k in LIST_COLUMNS}})

    @property
    def key(self) -> tuple[str, int]:
        """What a run records once: the case and which of its processes."""
        return self.case_id, self.repeat


COLUMNS = [f.name for f in fields(Record)]
# Columns holding a list per row (raw step times, the accuracy curve): tuples in memory, lists in
# parquet, JSON text in the CSV.
LIST_COLUMNS = tuple(f.name for f in fields(Record) if str(f.type).startswith("tuple"))
# Column dtypes follow the Record's annotations, so a missing figure is NaN (or <NA>), never None.
_DTYPES = {
    f.name: ("float64" if "float" in str(f.type) else "Int64" if str(f.type).startswith("int") else None)
    for f in fields(Record)
    if f.name not in LIST_COLUMNS
}
