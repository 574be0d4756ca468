"""A run's files: records.jsonl, results.parquet/csv, meta.json (the Record is bench/results/record.py).

Every write is atomic (temp file + rename) or an fsync'ed append, so an interrupted run never
leaves a half-written file and finished cases are kept.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.errors import BenchInputError
from bench.results.record import _DTYPES, COLUMNS, LIST_COLUMNS, SCHEMA_VERSION, Record

RECORDS_FILE, PARQUET_FILE, CSV_FILE, META_FILE, PLAN_FILE = (
    "records.jsonl",
    "results.parquet",
    "results.csv",
    "meta.json",
    "plan.json",
)


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
