"""The loop as users get it (bench/measure/loop.py), time to target at the median pace, and what the view
says of a disturbed machine, a loop that ranks otherwise, and runs that do not show learning."""

import re

import pytest
from rich.console import Console

from bench.measure.curve import curve_columns
from bench.measure.loop import loop_columns
from bench.render.view import cells, differences, print_view
from tests.unit.test_view import full_like_run

MS = 1_000_000  # ns


def test_the_loop_window_runs_from_the_first_timed_step_to_the_last_less_the_evaluations():
    # step 0 (100 ms), one warm-up step, then four 10 ms steps with 2 ms between them and a 50 ms evaluation
    starts = [0, 110 * MS, 122 * MS, 134 * MS, 196 * MS, 208 * MS]
    durations = [100 * MS] + [10 * MS] * 5
    cols = loop_columns(starts, durations, warmup_steps=1, batch_size=64, eval_spans_ns=[(144 * MS, 194 * MS)])
    # window: 122 -> 218 ms = 96 ms, less the 50 ms evaluation: 46 ms for 4 steps of 40 ms
    assert cols["loop_steps"] == 4
    assert cols["loop_samples_per_s"] == pytest.approx(4 * 64 / 0.046)
    assert cols["loop_outside_steps_share"] == pytest.approx(1 - 40 / 46)
    assert loop_columns(starts[:2], durations[:2], warmup_steps=1, batch_size=64) == {}  # nothing timed


def test_time_to_target_counts_the_steps_at_the_median_pace_and_marks_a_disturbed_start():
    points = [(5, 3.0, 0.5), (10, 5.1, 0.92)]  # the steps as they came: 5.1 s to the target
    cols = curve_columns(points, 0.9, None, 0.0, pace_ms=(1000.0, 100.0))
    assert cols["steps_to_target"] == 10 and cols["time_to_target_s"] == pytest.approx(1.9)  # 1 s + 9 x 0.1 s
    assert cols["time_to_target_raw_s"] == 5.1 and cols["time_to_target_unsteady"] is True
    steady = curve_columns([(10, 1.95, 0.92)], 0.9, None, 0.0, pace_ms=(1000.0, 100.0))
    assert steady["time_to_target_unsteady"] is False


def _run():
    df = full_like_run()
    df["loop_samples_per_s"] = 64_000 / df["step_time_ms_median"]
    df["loop_outside_steps_share"] = 0.01
    keras_rnn = (df["adapter"] == "keras") & df["case_id"].str.contains("rnn-uni-128x2")
    df.loc[keras_rnn, ["loop_samples_per_s", "loop_outside_steps_share"]] = [400.0, 0.6]  # a slow loop
    torch_lstm = (df["adapter"] == "torch") & df["case_id"].str.contains("lstm-bi-256x2")
    df.loc[torch_lstm, ["disturbed", "other_cpu_cores", "disturbed_reason"]] = [True, 1.02, "other processes kept 1.02"]
    gru = (df["adapter"] == "keras") & df["case_id"].str.contains("gru-uni-128x2")
    df.loc[gru, ["status", "accuracy_reason"]] = ["inconclusive", "learning not shown at alpha 0.01: ..."]
    return df


def test_the_view_names_a_busy_case_a_loop_that_ranks_otherwise_and_an_unshown_learning():
    df = _run()
    _, _, grid = cells(df)
    assert grid[("lstm-bi-256x2", "torch")].disturbed and not grid[("lstm-bi-256x2", "keras")].disturbed
    assert grid[("gru-uni-128x2", "keras")].inconclusive and grid[("gru-uni-128x2", "keras")].ms is not None
    notes = differences(df)
    busy = [n for n in notes if "the machine was busy" in n]
    assert len(busy) == 1 and "lstm-bi-256x2 torch (1 of 1 process(es); up to 1.02 cores of other processes)" in busy[0]
    loop = [n for n in notes if n.startswith("the training loop as users get it")]
    assert len(loop) == 1 and "rnn-uni-128x2 (torch 467/s vs keras 400/s, keras 60% outside its steps)" in loop[0]
    assert any("learning not shown" in n and "gru-uni-128x2 keras" in n for n in notes)
    console = Console(width=120, record=True, color_system=None)
    print_view(df, console)
    text = " ".join(console.export_text().split())  # the legend wraps
    assert "# = the machine was busy" in text and "? = learning not shown" in text
    assert re.search(r"95\.0%\?", text)

