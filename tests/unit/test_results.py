import json
import math

import pandas as pd
import pytest

from bench.core.errors import BenchInputError
from bench.core.specs import Case, ModelSpec, TrainSpec
from bench.results.record import COLUMNS, SCHEMA_VERSION, Record
from bench.results.store import append_record, load_results, read_records, save_run, to_frame
from tests.conftest import ROOT


def make_record(adapter="torch", median=12.5, status="ok", times=(30.0, 12.0, 13.0)) -> Record:
    case = Case(adapter, ModelSpec("lstm", (256, 128), True, dropout=(0.2, 0.0)), TrainSpec(batch_size=64, max_steps=3))
    return Record.for_case(case, "run-1", threads=2).with_measurements(
        {
            "status": status,
            "params": 123456,
            "test_accuracy": 0.9875,
            "step_time_ms_median": median,
            "step_times_ms": list(times),
            "gpu_mem_reason": "case ran on the CPU",
        }
    )


def test_record_identity_columns_from_case():
    r = make_record()
    assert (r.adapter, r.cell, r.bidirectional, r.units, r.layers, r.dropout) == (
        "torch",
        "lstm",
        True,
        "256,128",
        2,
        "0.2,0",
    )
    assert r.case_id == "torch/lstm-bi-256-128-do0.2-0/b64/mnist-5k/s0"
    assert r.max_steps == 3 and r.threads == 2


def test_unknown_measurement_is_an_error():
    with pytest.raises(TypeError):
        make_record().with_measurements({"step_time_median": 1.0})


def test_round_trip_through_jsonl_parquet_and_csv(tmp_path):
    a, b = make_record("torch", 12.5), make_record("keras", float("nan"), status="failed", times=())
    append_record(tmp_path, a)
    append_record(tmp_path, b)
    rows = read_records(tmp_path)
    assert rows[1]["step_time_ms_median"] is None  # NaN stored as null, valid JSON
    df = to_frame(rows)
    assert list(df.columns) == COLUMNS
    save_run(tmp_path, df, {"run_id": "run-1", "environment": {"python": "3.11"}})
    for path in (tmp_path, tmp_path / "results.parquet", tmp_path / "results.csv"):
        got, meta = load_results(path)
        assert meta["schema_version"] == SCHEMA_VERSION and meta["run_id"] == "run-1"
        assert got["params"].tolist() == [123456, 123456]
        assert got.loc[0, "test_accuracy"] == 0.9875
        assert got.loc[0, "step_times_ms"] == (30.0, 12.0, 13.0)
        assert got.loc[1, "step_times_ms"] == ()
        assert math.isnan(got.loc[1, "step_time_ms_median"])
        assert got["status"].tolist() == ["ok", "failed"]
    # the parquet carries its metadata too, for users who only copy that file
    import pyarrow.parquet as pq

    md = json.loads(pq.read_schema(tmp_path / "results.parquet").metadata[b"rnnbench"])
    assert md["schema_version"] == SCHEMA_VERSION


def test_torn_last_line_is_ignored_and_duplicates_keep_latest(tmp_path):
    append_record(tmp_path, make_record(median=10.0))
    append_record(tmp_path, make_record(median=11.0))
    with open(tmp_path / "records.jsonl", "a") as f:
        f.write('{"case_id": "torch/half')
    df = to_frame(read_records(tmp_path))
    assert len(df) == 1 and df.loc[0, "step_time_ms_median"] == 11.0


def test_no_temp_files_left_after_save(tmp_path):
    save_run(tmp_path, to_frame([make_record().to_row()]), {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json", "results.csv", "results.parquet"]


def test_load_results_bad_paths(tmp_path):
    with pytest.raises(BenchInputError, match="does not exist"):
        load_results(tmp_path / "nope.parquet")
    with pytest.raises(BenchInputError, match="not a run directory"):
        load_results(tmp_path)
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(BenchInputError, match="expected a run directory"):
        load_results(tmp_path / "x.txt")


def test_frame_columns_are_public_contract():
    required = {
        "adapter",
        "framework",
        "framework_version",
        "cell",
        "bidirectional",
        "units",
        "layers",
        "dataset",
        "batch_size",
        "epochs",
        "steps_run",
        "params",
        "train_accuracy",
        "test_accuracy",
        "test_loss",
        "step_time_ms_median",
        "step_time_ms_p10",
        "step_time_ms_p90",
        "warmup_steps",
        "first_step_ms",
        "throughput_samples_per_s",
        "train_time_s",
        "cpu_rss_peak_mb",
        "gpu_mem_peak_mb",
        "gpu_mem_reason",
        "status",
        "error",
        "step_times_ms",
    }
    assert required <= set(COLUMNS)
    assert isinstance(to_frame([]), pd.DataFrame)


def test_results_of_the_previous_schema_read_like_new_ones():

    base = ROOT / "results" / "baselines" / "ci-cpu"
    df, meta = load_results(base)
    assert list(df.columns[: len(COLUMNS)]) == COLUMNS
    assert (df["repeat"] == 0).all() and df["curve_steps"].map(len).eq(0).all()
    assert df["step_times_ms"].map(len).gt(0).all()
