"""The `seeds` matrix: each reference case configured exactly as docs/reference-cases.md states."""

import math

import pandas as pd
import pytest

from bench.planning.matrices import Overrides, build_cases
from bench.planning.references import REFERENCES, reference_frame, reference_notices, reported_step_ratio
from bench.results.record import Record
from bench.results.store import to_frame
from tests.reference_params import KERAS, TORCH


def test_seeds_has_the_eleven_reference_cases_on_their_tutorials_frameworks():
    cases, mdef = build_cases("seeds")
    assert [c.label for c in cases] == ["A1", "A2", "A3", "A4", "B1", "B2", "B3", "C", "D1", "D2", "D3"]
    assert [c.adapter for c in cases] == ["keras"] * 4 + ["torch"] * 3 + ["tf1-graph"] + ["keras"] * 3
    assert {c.dataset for c in cases} == {"mnist"} and mdef.dataset_fallback == "mnist-5k"
    assert len({c.case_id for c in cases}) == 11


def test_reference_configurations_are_the_tutorials():
    r = REFERENCES
    a1 = r["A1"]
    assert (a1.model.cell, a1.model.units, a1.model.activation) == ("rnn", (512, 512), "relu")
    assert (a1.train.batch_size, a1.train.epochs, a1.train.learning_rate, a1.train.adam_epsilon,
            a1.train.eval_batch_size) == (64, 10, 1e-3, 1e-7, 64)
    assert r["A4"].model.bidirectional and r["A4"].model.units == (256, 256)
    b = r["B3"].train
    assert (b.batch_size, b.epochs, b.learning_rate, b.adam_epsilon) == (100, 2, 1e-3, 1e-8)  # torch's default eps
    c = r["C"]
    assert (c.model.cell, c.model.units, c.train.batch_size, c.train.planned_steps(60_000),
            c.train.planned_steps(4_000)) == ("lstm", (128,), 100, 1000, 1000)
    assert (c.train.lr_schedule, c.train.learning_rate, c.train.lr_decay, c.train.lr_decay_steps) == (
        "exponential", 0.5, 0.9, 10_000)
    d2, d3 = r["D2"], r["D3"]
    assert (d2.model.activation, d2.model.dropout) == ("relu", (0.2, 0.2))
    assert (d3.model.units, d3.model.dropout, d3.model.activation) == ((256, 128), (0.3, 0.0), "relu")
    for d in (d2, d3):  # Keras 2's Adam(1e-3, decay=1e-5)
        assert (d.train.lr_schedule, d.train.lr_decay, d.train.lr_decay_steps) == ("inverse-time", 1e-5, 1)
    assert r["D1"].train.lr_schedule == "constant"
    assert {label: ref.params for label, ref in r.items() if ref.params} == {
        "D1": 206_858, "D2": 819_722, "D3": 369_162}
    assert KERAS["D1"] == 206_858 and TORCH["D1"] == 207_370


def test_overrides_select_and_shorten_reference_cases():
    cases, _ = build_cases("seeds", Overrides(adapters=("torch",), max_steps=20, dataset="mnist-5k"))
    assert [c.label for c in cases] == ["B1", "B2", "B3"]
    assert all(c.train.max_steps == 20 and c.train.batch_size == 100 and c.dataset == "mnist-5k" for c in cases)
    assert [c.label for c in build_cases("seeds", Overrides(cells=("gru",)))[0]] == ["A2", "B2", "D3"]


def test_reported_step_ratios_are_case_ds():
    assert reported_step_ratio("D2") == pytest.approx(290 / 104)
    assert reported_step_ratio("D3") == pytest.approx(175 / 104)
    assert reported_step_ratio("D1") == 1.0 and reported_step_ratio("A1") is None


def _rows(dataset="mnist", steps=None, ms=None):
    cases, _ = build_cases("seeds", Overrides(dataset=dataset))
    rows = []
    for case in cases:
        label = case.label
        rows.append(Record.for_case(case, "r", 2).with_measurements({
            "status": "ok",
            "params": KERAS[label] if case.adapter != "torch" else TORCH[label],
            "steps_run": (steps or {}).get(label, case.train.planned_steps(60_000 if dataset == "mnist" else 4_000)),
            "test_accuracy": 0.5,
            "step_time_ms_median": (ms or {}).get(label, 10.0),
        }).to_row())
    return to_frame(rows)


def test_reference_frame_puts_measured_beside_reported():
    frame = reference_frame(_rows(ms={"D1": 20.0, "D2": 50.0, "D3": 30.0}))
    assert list(frame["label"]) == list(REFERENCES)
    d = frame.set_index("label")
    assert d.loc["D2", "ratio_to_base"] == 2.5 and d.loc["D3", "ratio_to_base"] == 1.5
    assert d.loc["D2", "reported_ratio_to_base"] == pytest.approx(290 / 104)
    assert d.loc["A1", "ratio_to_base"] == 0.5 and math.isnan(d.loc["A1", "reported_ratio_to_base"])
    assert d.loc["D1", "params_match"] and pd.isna(d.loc["A1", "params_match"])
    assert d.loc["C", "reference_steps"] == 1000 and d.loc["A4", "reference_steps"] == 9370
    assert not frame["shortened"].any()
    notes = reference_notices(frame)
    assert not any("NOT comparable" in n or "SHORTENED" in n for n in notes)
    assert any(n.startswith("D2, D3: activation='relu'") for n in notes)


def test_subset_and_shortened_runs_are_flagged():
    frame = reference_frame(_rows(dataset="mnist-5k", steps={"C": 20}))
    d = frame.set_index("label")
    assert d.loc["C", "shortened"] and not d.loc["A1", "shortened"]
    assert d.loc["A1", "reference_steps"] == 620  # 62 batches of 64 in 4,000 digits x 10 epochs
    notes = reference_notices(frame)
    assert any("mnist-5k" in n and "NOT comparable" in n for n in notes)
    assert any("SHORTENED" in n and "C (20 of 1,000 steps)" in n for n in notes)


def test_changed_settings_are_named():
    cases, _ = build_cases("seeds", Overrides(batch_size=32, init="keras", adapters=("keras",), cells=("rnn",)))
    frame = reference_frame(to_frame([Record.for_case(c, "r", 1).with_measurements({"status": "ok"}).to_row()
                                      for c in cases]))
    assert list(frame["changed"]) == ["batch 32 (tutorial 64), --init keras"] * 2
    assert any("A1: batch 32 (tutorial 64), --init keras; D1:" in n for n in reference_notices(frame))
    assert reference_frame(_rows())["changed"].eq("").all()


def test_a_run_without_reference_cases_has_no_reference_table():
    assert reference_frame(pd.DataFrame()).empty
    cases, _ = build_cases("smoke")
    assert reference_frame(to_frame([Record.for_case(cases[0], "r", 1).to_row()])).empty
