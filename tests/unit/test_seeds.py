"""Seeds as an axis (`run --seeds`): the statistics over seeds with exact values, the matrix expanded
seed by seed, and the view, `compare` and the report agreeing on which accuracy gaps are real."""

import argparse
import math

import pandas as pd
import pytest
from rich.console import Console

from bench.core.errors import BenchInputError
from bench.core.specs import Case, ModelSpec, TrainSpec
from bench.planning.matrices import Overrides, build_cases
from bench.planning.plan import RunOptions, plan_cases
from bench.results.record import Record
from bench.results.store import to_frame
from bench.stats import seeds as S


def test_t_interval_has_the_students_t_half_width():
    acc = S.t_interval([0.8, 0.9, 1.0])
    # mean 0.9, s = 0.1, sem = 0.1 / sqrt(3); t(0.975, 2) = 4.302653
    assert acc.mean == pytest.approx(0.9)
    assert acc.half == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-6)
    assert (acc.low, acc.high, acc.n) == (pytest.approx(0.9 - acc.half), pytest.approx(0.9 + acc.half), 3)
    one = S.t_interval([0.7, float("nan")])
    assert (one.mean, one.half, one.n) == (0.7, None, 1)
    assert S.t_interval([]).n == 0


def test_welch_p_matches_scipy_and_handles_no_spread():
    from scipy import stats

    a, b = [0.90, 0.91, 0.93], [0.80, 0.86, 0.84]
    assert S.welch_p(a, b) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert S.welch_p([0.5, 0.5], [0.5, 0.5]) == 1.0
    assert S.welch_p([0.5, 0.5], [0.6, 0.6]) == 0.0
    assert S.welch_p([0.5], [0.6, 0.7]) is None


def test_seedless_id_replaces_only_the_seed():
    assert S.seedless_id("keras/rnn-uni-32x2/b64/mnist-5k/s12/init-keras") == "keras/rnn-uni-32x2/b64/mnist-5k/s*/init-keras"
    assert S.seedless_id("A1:keras/rnn-uni-512x2-relu/b64/mnist/s0") == "A1:keras/rnn-uni-512x2-relu/b64/mnist/s*"
    assert S.is_seed_part("s3") and not S.is_seed_part("s") and not S.is_seed_part("lstm-uni-64x2")


def test_time_to_target_is_the_median_of_the_seeds_that_reached_it():
    rows = pd.DataFrame({"seed": [0, 1, 2], "test_accuracy": [0.9, 0.92, 0.85],
                         "time_to_target_s": [10.0, 14.0, float("nan")]})
    reached = S.time_to_target(rows)
    assert (reached.median_s, reached.reached, reached.seeds) == (12.0, 2, 3)
    assert reached.text() == "12.0s 2/3"
    assert S.Reached(None, 0, 3).text() == "- 0/3" and S.Reached(4.0, 1, 1).text() == "4.0s"


def test_seeds_expand_every_case_seed_by_seed():
    cases, _ = build_cases("smoke", Overrides(cells=("rnn",), seeds=(0, 1, 2)))
    assert [c.train.seed for c in cases] == [0] * 4 + [1] * 4 + [2] * 4  # seeds outermost
    assert len({c.case_id for c in cases}) == 12
    with pytest.raises(BenchInputError, match="--seed 3 and --seeds 0,1: give one"):
        plan_cases(RunOptions(matrix="smoke", overrides=Overrides(seed=3, seeds=(0, 1))))


@pytest.mark.parametrize("text, seeds", [("3", (0, 1, 2)), ("4,7", (4, 7)), ("5,", (5,)), ("1", (0,))])
def test_seeds_option_is_a_count_or_a_list(text, seeds):
    from bench.cli.run import seed_list

    assert seed_list(text) == seeds


@pytest.mark.parametrize("text, fragment", [("0", "a count N >= 1"), ("-2", "a count N >= 1"), ("1,-1", "seed -1 is negative"),
                                            ("1,2,1", "seed 1 is given twice"), ("x", "invalid value 'x'"), (",", "invalid")])
def test_bad_seeds_name_the_value_and_what_is_allowed(text, fragment):
    from bench.cli.run import seed_list

    with pytest.raises(argparse.ArgumentTypeError, match=fragment):
        seed_list(text)


def seeds_run(accuracies: dict[tuple[str, str], list[float]], init: str = "framework") -> pd.DataFrame:
    """Records of (adapter, cell) -> one accuracy per seed."""
    rows = []
    for (adapter, cell), accs in accuracies.items():
        for seed, acc in enumerate(accs):
            case = Case(adapter, ModelSpec(cell, (64, 64)), TrainSpec(seed=seed), init=init)
            rows.append(Record.for_case(case, "r", 2).with_measurements({
                "status": "ok", "step_time_ms_median": 10.0 + seed, "step_time_cv": 0.01, "test_accuracy": acc,
                "time_to_target_s": 5.0 + seed if acc >= 0.9 else None, "host": "vm", "cpu_model": "cpu",
                "step_times_ms": [10.0 + seed + 0.01 * (i % 5) for i in range(20)], "warmup_steps": 0,
            }).to_row())
    return to_frame(rows)


RUN = {("keras", "rnn"): [0.90, 0.91, 0.92], ("torch", "rnn"): [0.80, 0.82, 0.81],   # a real gap
       ("keras", "gru"): [0.93, 0.90, 0.95], ("torch", "gru"): [0.94, 0.91, 0.92]}   # noise


def test_the_view_puts_a_models_seeds_in_one_row_with_intervals_and_marks_real_gaps():
    from bench.render.view import cells, differences, print_view

    df = seeds_run(RUN)
    models, adapters, grid = cells(df)
    assert models == ["rnn-uni-64x2", "gru-uni-64x2"] and adapters == ["keras", "torch"]
    rnn_torch = grid[("rnn-uni-64x2", "torch")]
    assert rnn_torch.processes == 3 and rnn_torch.ms == 11.0  # step time from every seed's process
    assert rnn_torch.accuracy.mean == pytest.approx(0.81) and rnn_torch.lower
    assert not grid[("gru-uni-64x2", "keras")].lower and not grid[("gru-uni-64x2", "torch")].lower
    assert grid[("rnn-uni-64x2", "keras")].tta.text() == "6.0s 3/3"
    console = Console(width=160, record=True, color_system=None)
    print_view(df, console)
    text = " ".join(console.export_text().split())  # the legend wraps
    assert "81.0±2.5%↓" in text and "91.0±2.5%" in text
    assert "mean ± 95% t-interval over 3 seeds" in text
    notes = differences(df)
    assert any(n.startswith("significant accuracy gaps (Welch's t-test over 3 seeds, Holm over the run's pairs of "
                            "adapters, alpha 0.05): rnn-uni-64x2 (torch 81.0±2.5% vs keras 91.0±2.5%, Holm p=")
               and "starting weights differ" in n for n in notes)
    assert any(n.startswith("accuracy gaps not significant with 3 seeds") and "gru-uni-64x2" in n for n in notes)
    assert not any("within noise" in n for n in notes)


def test_gap_p_values_are_holm_adjusted_over_every_pair_of_the_run():
    """Two models, three adapters: the family is 2 x 3 pairs, though the view shows 2 x 2 gaps to the best."""
    from bench.stats.multiplicity import holm
    from bench.stats.seeds import accuracy_gaps, welch_p

    run = {**RUN, ("keras-jax", "rnn"): [0.88, 0.90, 0.86], ("keras-jax", "gru"): [0.92, 0.93, 0.90]}
    gaps = accuracy_gaps(seeds_run(run).assign(_model=lambda d: d["cell"]))
    assert len(gaps) == 4
    raw = {}
    for cell in ("rnn", "gru"):
        accs = {a: run[(a, cell)] for a in ("keras", "torch", "keras-jax")}
        for a, b in (("keras", "torch"), ("keras", "keras-jax"), ("torch", "keras-jax")):
            raw[(cell, *sorted((a, b)))] = welch_p(accs[a], accs[b])
    adjusted = dict(zip(raw, holm(list(raw.values())), strict=True))
    for g in gaps:
        key = (g.model, *sorted((g.best, g.other)))
        assert g.p_raw == raw[key] and g.p_value == adjusted[key] >= g.p_raw


def test_with_the_same_starting_weights_a_real_gap_is_named_as_such():
    from bench.render.view import differences

    notes = differences(seeds_run(RUN, init="keras"))
    assert any(n.startswith("significant accuracy gaps with identical starting weights") for n in notes)
    assert not any("starting weights differ" in n for n in notes)


def test_one_seed_says_how_to_tell_noise_from_a_gap():
    from bench.render.view import differences

    notes = differences(seeds_run({k: v[:1] for k, v in RUN.items()}))
    assert any("--seeds 3 tells which accuracy gaps" in n for n in notes)


def test_compare_judges_accuracy_over_seeds_with_the_views_test():
    from bench.stats.compare import Threshold, compare_runs

    base = seeds_run({("keras", "rnn"): [0.90, 0.91, 0.92]})
    worse = seeds_run({("keras", "rnn"): [0.80, 0.81, 0.82]})
    noisy = seeds_run({("keras", "rnn"): [0.70, 0.95, 0.85]})  # mean 0.833, far beyond 5% but noise
    t = [Threshold("test_accuracy", 5.0)]
    (real,) = compare_runs(base, worse, t)
    assert real.verdict == "regression" and real.case_id == "keras/rnn-uni-64x2/b64/mnist-5k/s0,1,2"
    assert real.method == "Welch's t-test over 3 vs 3 seeds, alpha 0.05" and real.p_value < 0.05
    (noise,) = compare_runs(base, noisy, t)
    assert noise.verdict == "unchanged" and "within the spread between seeds" in noise.note
    # step time: each seed's process is a process of the case (3 a side: the between-process method)
    (steps,) = compare_runs(base, worse, [Threshold("step_time_ms_median", 5.0)])
    assert steps.method == "Welch t-test on log process medians, 3 vs 3 processes" and steps.verdict == "unchanged"


def test_the_report_draws_one_panel_per_model_with_a_band_over_seeds():
    pytest.importorskip("matplotlib")
    from bench.render import html

    df = seeds_run(RUN)
    df["curve_steps"] = [[10, 20]] * len(df)
    df["curve_train_s"] = [[1.0 + i, 2.0 + i] for i in range(len(df))]
    df["curve_test_accuracy"] = [[0.5, a] for a in df["test_accuracy"]]
    chart = html.chart_time_to_accuracy(df)
    bands = html.curve_bands(chart.data).set_index(["model", "adapter", "step"])
    rnn_torch = bands.loc[("rnn-uni-64x2", "torch", 20)]
    assert (rnn_torch["low"], rnn_torch["high"], rnn_torch["seeds"]) == (0.80, 0.82, 3)
    assert rnn_torch["accuracy"] == pytest.approx(0.81)
    assert chart.svg.count("rnn-uni-64x2") >= 1 and "bands the lowest to the highest seed" in chart.caption
    pareto = html.chart_accuracy_vs_time(df)
    assert list(pareto.data["number"]) == [1, 2, 3, 4] and pareto.data["test_accuracy_half"].notna().all()
