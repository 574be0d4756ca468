"""The comparison view: right numbers in the right cells, and no number cut at 80, 100 or 120 columns."""

import re

import pandas as pd
import pytest
from rich.console import Console

from bench.core.specs import Case, ModelSpec, TrainSpec
from bench.render.view import cells, comparison_tables, differences, print_view
from bench.results.record import Record
from bench.results.store import to_frame

ADAPTERS = ("keras", "torch")


def full_like_run(adapters=ADAPTERS, init="framework", repeats=1) -> pd.DataFrame:
    """The shape of the `full` matrix: 2 adapters x rnn/gru/lstm x uni/bi x 2x128 / 2x256."""
    rows = []
    for units in ((128, 128), (256, 256)):
        for cell in ("rnn", "gru", "lstm"):
            for bi in (False, True):
                for k, a in enumerate(adapters):
                    for rep in range(repeats):
                        case = Case(a, ModelSpec(cell, units, bi), TrainSpec(epochs=5), init=init)
                        ms = 100.0 * units[0] / 128 * (1 + k * 0.37) * (2 if bi else 1) * (1 + 0.01 * rep)
                        acc = 0.80 + 0.1 * k if cell == "rnn" and init == "framework" else 0.95
                        rows.append(Record.for_case(case, "r", 2, rep).with_measurements({
                            "status": "ok", "step_time_ms_median": ms, "step_time_cv": 0.03,
                            "test_accuracy": acc, "time_to_target_s": 12.5 * (1 + k), "host": "vm",
                            "cpu_model": "cpu", "adam_epsilon": 1e-7}).to_row())
    return to_frame(rows)


@pytest.mark.parametrize("width", [80, 100, 120])
def test_the_full_runs_view_fits_without_cutting_a_number(width):
    df = full_like_run()
    console = Console(width=width, record=True, color_system=None)
    print_view(df, console, title="rnnbench full")
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    assert "…" not in text
    table_text = "\n".join(lines[: next(i for i, line in enumerate(lines) if line.startswith("ms/step:"))])
    for ms in df["step_time_ms_median"]:  # every step time appears whole
        assert f"{ms:.2f}" in table_text


def test_columns_drop_in_the_stated_order_as_the_terminal_narrows():
    df = full_like_run()
    assert comparison_tables(df, 160)[1] == ("factor", "acc", "tta")
    narrow = [comparison_tables(df, w)[1] for w in range(160, 20, -5)]
    assert narrow[-1] == () and ("acc",) in narrow
    # time to target goes first, then the factor, then accuracy: only these sets can appear
    assert set(narrow) <= {("factor", "acc", "tta"), ("factor", "acc"), ("acc",), ()}
    for wide, small in zip(narrow, narrow[1:], strict=False):
        assert set(small) <= set(wide)  # a narrower terminal never shows a column a wider one dropped


def test_many_adapters_split_over_tables_rather_than_cut():
    df = full_like_run(adapters=("keras", "keras-jax", "keras-torch", "torch", "torch-compile", "tf1-graph"))
    tables, kinds = comparison_tables(df, 50)
    assert len(tables) > 1 and kinds == ()
    console = Console(width=50, record=True, color_system=None)
    for t in tables:
        console.print(t)
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 50
    for ms in df["step_time_ms_median"]:
        assert f"{ms:.2f}" in text


def test_cells_hold_medians_factors_and_statuses():
    df = full_like_run(repeats=3)
    models, adapters, grid = cells(df)
    assert models[:3] == ["rnn-uni-128x2", "rnn-uni-256x2", "rnn-bi-128x2"]  # by cell, direction, width
    assert models[-1] == "lstm-bi-256x2"
    c = grid[("gru-uni-128x2", "torch")]
    assert c.processes == 3 and c.ms == pytest.approx(137.0 * 1.01) and c.status == "ok"
    df.loc[(df["adapter"] == "keras") & (df["case_id"].str.contains("lstm-uni-256")), "status"] = "not-learning"
    console = Console(width=120, record=True, color_system=None)
    print_view(df, console)
    row = next(line for line in console.export_text().splitlines() if line.startswith("lstm-uni-256x2"))
    assert "no-learn" in row and "*" in row  # the status in place of the time, torch then the fastest


def test_unstable_timings_are_marked():
    df = full_like_run()
    df.loc[0, "step_time_cv"] = 0.3
    console = Console(width=120, record=True, color_system=None)
    print_view(df, console)
    first = next(line for line in console.export_text().splitlines() if line.startswith("rnn-uni-128x2"))
    assert re.search(r"\d~", first)


def test_the_note_names_the_initializer_gap_and_the_option_that_removes_it():
    lines = differences(full_like_run())
    assert any("default initializers" in line and "rnn-uni-128x2 (keras 80.0% vs torch 90.0%)" in line
               and "--init keras" in line for line in lines)
    assert not any("initializers" in line for line in differences(full_like_run(init="keras")))


def test_a_run_that_mixes_machines_says_so():
    df = full_like_run()
    df.loc[df["adapter"] == "torch", "host"] = "other-node"
    assert any("mixes machines" in line for line in differences(df))
