"""One flat record per case, and the run's files: records.jsonl, results.parquet/csv, meta.json.

Column names are a public contract (users load the parquet): bump SCHEMA_VERSION when a column
changes meaning or is removed. Every write is atomic (temp file + rename) or an fsync'ed
append, so an interrupted run never leaves a half-written file and finished cases are kept.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import BenchInputError
from bench.specs import Case
from bench.status import STATUSES, Status  # noqa: F401  (STATUSES re-exported: the documented vocabulary)

# 2: `repeat` (run --repeat K), and where each case ran (`host`, `executor`, `node`)
# 3: `precision` with the setting read back (`matmul_precision`), `compile_policy`, and the GPU's
#    state while steps were timed (clocks, temperature, power, throttle reasons, other processes)
# 4: `untimed_steps`: the steps right after a curve evaluation are left out of the step-time statistics
SCHEMA_VERSION = 4
RECORDS_FILE, PARQUET_FILE, CSV_FILE, META_FILE, PLAN_FILE = (
    "records.jsonl",
    "results.parquet",
    "results.csv",
    "meta.json",
    "plan.json",
)


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


def _json_default(value: Any) -> Any:
    raise TypeError(f"not JSON-serializable: {value!r}")


def _clean(value: Any) -> Any:
    # NaN is not valid JSON; store it as null so every reader agrees.
    return None if isinstance(value, float) and not math.isfinite(value) else value


def append_record(run_dir: Path, record: Record) -> None:
    """Append one record as a JSON line and fsync it: a finished case survives any later crash.

    A crash in the middle of an append leaves a torn last line; the next append starts on a new
    line, so it never glues onto the torn one (read_records then reports the torn line).
    """
    row = {k: _clean(v) for k, v in record.to_row().items()}
    line = (json.dumps(row, default=_json_default, allow_nan=False) + "\n").encode()
    with open(run_dir / RECORDS_FILE, "a+b") as f:
        f.seek(0, os.SEEK_END)
        if f.tell():
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                line = b"\n" + line
        f.write(line)  # append mode: always at the end
        f.flush()
        os.fsync(f.fileno())


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    """Rows of records.jsonl; a torn line (crash mid-write) is skipped (see records_problems)."""
    return _read_records(run_dir)[0]


def records_problems(run_dir: Path) -> list[str]:
    """Lines of records.jsonl that are not a whole record, with their position."""
    return _read_records(run_dir)[1]


def _read_records(run_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    path = run_dir / RECORDS_FILE
    if not path.exists():
        return [], []
    rows, problems = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or "case_id" not in row:
                raise ValueError("not a record")
            rows.append(row)
        except ValueError:
            problems.append(f"{path} line {number}: a torn or corrupt record ({len(line)} characters, "
                            f"starts {line[:40]!r}) was ignored; its case counts as not run")
    return rows, problems


def to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows -> DataFrame with the schema's columns in schema order (later duplicates win)."""
    df = _normalize(pd.DataFrame(rows, columns=COLUMNS))
    if not df.empty:
        df = df.drop_duplicates(["case_id", "repeat"], keep="last").reset_index(drop=True)
    return df


def _normalize(df: pd.DataFrame) -> pd.DataFrame:
    """Every schema column in schema order with its dtype: results of an older schema (no `repeat`,
    no curve) read like new ones, missing figures as NaN/<NA>, lists as tuples."""
    extra = [c for c in df.columns if c not in COLUMNS]
    df = df.reindex(columns=COLUMNS + extra)
    df["repeat"] = df["repeat"].fillna(0)  # one process per case before schema 2
    df["precision"] = df["precision"].fillna("fp32")  # before schema 3: float32 (TF32 at each framework's default on GPUs)
    for name, dtype in _DTYPES.items():
        if dtype:
            df[name] = pd.to_numeric(df[name]).astype(dtype)
    for name in LIST_COLUMNS:
        df[name] = df[name].map(_as_tuple)
    return df


def _as_tuple(v: Any) -> tuple:
    if isinstance(v, str):  # the CSV's JSON text
        return tuple(json.loads(v))
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ()
    return tuple(v)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def save_run(run_dir: Path, df: pd.DataFrame, meta: dict[str, Any]) -> None:
    """Write results.parquet, results.csv and meta.json, each atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta = {"schema_version": SCHEMA_VERSION, **meta}
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), b"rnnbench": json.dumps(meta, default=str).encode()}
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write_bytes(run_dir / PARQUET_FILE, sink.getvalue().to_pybytes())
    csv_df = df.copy()
    for name in LIST_COLUMNS:
        csv_df[name] = csv_df[name].map(lambda v: json.dumps(list(v)) if v is not None else "[]")
    atomic_write_bytes(run_dir / CSV_FILE, csv_df.to_csv(index=False).encode())
    atomic_write_json(run_dir / META_FILE, meta)


def load_results(path: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Load a run directory, a results.parquet or a results.csv; returns (frame, meta)."""
    path = Path(path)
    if path.is_dir():
        run_dir = path
        if (run_dir / PARQUET_FILE).exists():
            path = run_dir / PARQUET_FILE
        elif (run_dir / RECORDS_FILE).exists():  # an interrupted run: records only
            return to_frame(read_records(run_dir)), _read_meta(run_dir)
        else:
            raise BenchInputError(f"{str(run_dir)!r} holds no {PARQUET_FILE} or {RECORDS_FILE}: not a run directory")
    if not path.exists():
        raise BenchInputError(f"results path {str(path)!r} does not exist")
    meta = _read_meta(path.parent)
    try:
        if path.suffix == ".parquet":
            df = _normalize(pd.read_parquet(path))
        elif path.suffix == ".csv":
            df = _normalize(pd.read_csv(path))
        else:
            raise BenchInputError(f"{str(path)!r}: expected a run directory, a .parquet or a .csv file")
    except (OSError, ValueError) as exc:
        if isinstance(exc, BenchInputError):
            raise
        raise BenchInputError(f"cannot read results from {str(path)!r}: {exc}") from exc
    return df, meta


def _read_meta(run_dir: Path) -> dict[str, Any]:
    p = run_dir / META_FILE
    if p.exists():
        return json.loads(p.read_text(encoding="utf-8"))
    p = run_dir / PLAN_FILE
    return {"plan": json.loads(p.read_text(encoding="utf-8"))} if p.exists() else {}
