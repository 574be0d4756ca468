"""The column registry: one declaration per column, everything else derived from it."""

from dataclasses import fields

import pytest

from bench.core.columns import Column, columns
from bench.core.specs import Case, ModelSpec, TrainSpec
from bench.results.columns import ALL, BY_NAME, docs_markdown, gate_fields, table_columns
from bench.results.record import LIST_COLUMNS, Record
from bench.results.store import to_frame
from bench.stats.compare import FIELDS
from tests.conftest import ROOT


def test_docs_columns_md_is_generated_from_the_registry():
    assert (ROOT / "docs" / "columns.md").read_text() == docs_markdown(), (
        "docs/columns.md is stale: python -m bench.results.columns > docs/columns.md")


def test_the_record_has_exactly_the_declared_columns_in_their_order():
    assert [f.name for f in fields(Record)] == [c.name for c in ALL]
    assert len(BY_NAME) == len(ALL) == 152
    assert set(LIST_COLUMNS) == {"curve_steps", "curve_train_s", "curve_test_accuracy", "curve_test_loss", "step_times_ms",
                                 "untimed_steps"}


def test_gate_fields_and_their_directions_come_from_the_declarations():
    assert FIELDS == gate_fields() == {"test_accuracy": -1, "step_time_ms_median": +1, "throughput_samples_per_s": -1,
                                       "cpu_rss_peak_mb": +1, "gpu_mem_peak_mb": +1}
    assert table_columns()[:4] == ("case_id", "adapter", "repeat", "status")


def test_dtypes_follow_the_declared_kinds():
    case = Case("torch", ModelSpec("lstm", (8,)), TrainSpec())
    df = to_frame([Record.for_case(case, "run", threads=1).to_row()])
    assert str(df["step_time_ms_median"].dtype) == "float64" and df["step_time_ms_median"].isna().all()
    assert str(df["params"].dtype) == "Int64" and df["params"].isna().all()
    assert str(df["batch_size"].dtype) == "Int64" and df.loc[0, "status"] == "failed"
    assert df.loc[0, "step_times_ms"] == () and df.loc[0, "precision"] == "fp32"


def test_a_bad_declaration_fails_when_the_module_is_imported():
    with pytest.raises(ValueError, match="kind 'double' is not one of"):
        Column("x", "double", "g", "doc")
    with pytest.raises(ValueError, match="a gate field needs a better direction"):
        Column("x", "float", "g", "doc", gate=True)
    (c,) = columns("g", ("x_ms", "float", "doc", {"unit": "ms", "better": "lower"}))
    assert (c.group, c.unit, c.direction, c.annotation, c.dtype) == ("g", "ms", 1, "float | None", "float64")
