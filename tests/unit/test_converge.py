"""Convergence agreement (bench/stats/converge.py): generated curves with a known answer, exact Holm
values, and the checks `bench converge` makes before any work."""

import numpy as np
import pandas as pd
import pytest

from bench.cli.converge import check_convergence_cases
from bench.core.errors import BenchInputError
from bench.core.specs import Case, ModelSpec, TrainSpec
from bench.results.record import Record
from bench.results.store import to_frame
from bench.stats import converge as C
from bench.stats.multiplicity import holm

STEPS = [10, 20, 30, 40, 50]


def curves(rng, seeds, offset=0.0, framework_noise=1e-4, shift_from=0):
    """Per seed a loss curve (a decay with a seed-specific level) and its accuracy; `offset` is added to
    the loss (and taken off the accuracy) from evaluation `shift_from` on, as a framework that learns worse."""
    out = {}
    for s in seeds:
        level = np.random.default_rng(100 + s).normal(0, 0.05)  # what the seed decides: the same in every framework
        loss = 2.3 * np.exp(-np.arange(len(STEPS)) / 3) + 0.5 + level + rng.normal(0, framework_noise, len(STEPS))
        loss[shift_from:] += offset
        out[s] = (loss, 1 - loss / 3)
    return out


def frame(per_adapter: dict[str, dict[int, tuple]], cell="lstm") -> pd.DataFrame:
    rows = []
    for adapter, seeds in per_adapter.items():
        for seed, (loss, acc) in seeds.items():
            case = Case(adapter, ModelSpec(cell, (64, 64)), TrainSpec(seed=seed, eval_every=10), init="keras")
            rows.append(Record.for_case(case, "r", 2).with_measurements({
                "status": "ok", "curve_steps": STEPS, "curve_train_s": [0.1 * s for s in STEPS],
                "curve_test_accuracy": list(acc), "curve_test_loss": list(loss)}).to_row())
    return to_frame(rows)


def test_holm_adjusts_in_step_down_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]


@pytest.mark.parametrize("seed", range(20))
def test_the_same_training_in_two_frameworks_agrees(seed):
    rng = np.random.default_rng(seed)
    df = frame({"keras": curves(rng, range(3)), "torch": curves(rng, range(3))})
    (a,) = C.agreements(df)
    assert (a.model, a.reference, a.other, a.seeds, a.evaluations) == ("lstm-uni-64x2/b64/mnist-5k/s*/init-keras",
                                                                       "keras", "torch", 3, 5)
    assert a.verdict == "agree" and a.parted_at is None


def test_a_framework_that_learns_worse_from_the_third_evaluation_differs_there():
    rng = np.random.default_rng(0)
    df = frame({"keras": curves(rng, range(3)), "torch": curves(rng, range(3), offset=0.3, shift_from=2)})
    (a,) = C.agreements(df)
    assert a.verdict == "differ" and a.parted_at == 30 and a.p_value < 0.05
    loss = next(m for m in a.metrics if m.metric == "test loss")
    assert loss.largest == pytest.approx(0.3, abs=0.01) and loss.ratio > 1


def test_a_consistent_gap_smaller_than_the_margin_still_agrees():
    rng = np.random.default_rng(1)
    df = frame({"keras": curves(rng, range(4)), "torch": curves(rng, range(4), offset=0.005)})
    (a,) = C.agreements(df)
    assert a.p_value < 0.05  # the gap is real (every seed shows it) ...
    assert a.verdict == "agree" and a.parted_at is None  # ... and shown to be within the 0.02 margin
    assert a.reason.startswith("a real gap within the margin: test loss +0.00499")
    loss = next(m for m in a.metrics if m.metric == "test loss")
    assert loss.mean_gap == pytest.approx(0.005, abs=1e-3) and loss.p_equivalent < 0.05


def test_no_difference_found_is_not_agreement():
    """Three seeds whose gaps scatter by more than the margin: the t-test finds nothing (p well above alpha),
    and that is no evidence of agreement either."""
    rng = np.random.default_rng(3)
    ref = curves(rng, range(3))
    other = {s: (loss + g, acc - g / 3) for (s, (loss, acc)), g in zip(ref.items(), (0.05, -0.04, 0.01), strict=True)}
    (a,) = C.agreements(frame({"keras": ref, "torch": other}))
    loss = next(m for m in a.metrics if m.metric == "test loss")
    assert loss.p_value > 0.5 and loss.p_equivalent > 0.05
    assert loss.verdict == "inconclusive" and a.verdict == "inconclusive"


def test_tost_is_the_larger_of_the_two_one_sided_p_values():
    from scipy import stats

    g = np.array([0.001, 0.003, 0.002])
    se = g.std(ddof=1) / np.sqrt(3)
    low = 1 - stats.t.cdf((g.mean() + 0.02) / se, 2)  # against -margin, one-sided
    high = stats.t.cdf((g.mean() - 0.02) / se, 2)  # against +margin
    assert C.tost_p(g, 0.02) == pytest.approx(max(low, high), rel=1e-9)
    assert C.tost_p(np.full(3, 0.01), 0.02) == 0.0 and C.tost_p(np.full(3, 0.03), 0.02) == 1.0


def test_fewer_than_three_common_seeds_is_inconclusive_and_the_dropped_seeds_are_named():
    rng = np.random.default_rng(2)
    df = frame({"keras": curves(rng, [0, 1, 2]), "torch": curves(rng, [1, 2, 3])})
    (a,) = C.agreements(df)
    assert a.verdict == "inconclusive" and a.reason == "2 seed(s) finished in both; a verdict needs 3"
    assert a.dropped == {"keras": [0], "torch": [3]}


def case(adapter="keras", init="keras", seed=0, dropout=0.0, dataset="mnist-5k"):
    return Case(adapter, ModelSpec("gru", (64, 64), dropout=dropout), TrainSpec(seed=seed), dataset, init=init)


@pytest.mark.parametrize("cases, fragment", [
    ([case(init="framework"), case("torch", init="framework", seed=1)], "same starting weights"),
    ([case(), case(seed=1)], "two adapters or more; got keras"),
    ([case(), case("torch")], "3 seeds or more"),
    ([case(), case("torch"), case(seed=1), case("torch", seed=1)], "3 seeds or more"),
    ([case(dropout=0.2), case("torch", seed=1, dropout=0.2), case(seed=2, dropout=0.2)], "dropout"),
    ([case(dataset="synthetic"), case("torch", seed=1, dataset="synthetic"), case(seed=2, dataset="synthetic")],
     "real labels"),
])
def test_converge_refuses_what_cannot_be_compared(cases, fragment):
    with pytest.raises(BenchInputError, match=fragment):
        check_convergence_cases(cases)


def test_converge_command_bad_input_is_exit_2_before_any_work(tmp_path, capsys):
    from bench.cli.main import main

    assert main(["converge", "--adapters", "keras", "--out", str(tmp_path)]) == 2
    assert main(["converge", "--adapters", "keras,tf1-graph", "--cells", "gru", "--out", str(tmp_path)]) == 2
    assert "no canonical weights" in capsys.readouterr().err
    for option, value in (("--margin-loss", "0"), ("--margin-accuracy", "1.5"), ("--margin-loss", "nan")):
        assert main(["converge", option, value, "--out", str(tmp_path)]) == 2
        assert f"{option} " in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("width", [80, 100])
def test_the_agreement_table_fits_80_and_100_columns_without_cutting_a_number(width):
    from rich.console import Console

    from bench.render.converge import agreement_table

    rng = np.random.default_rng(3)
    found = C.agreements(pd.concat([frame({"keras": curves(rng, range(3)), "torch": curves(rng, range(3))}, cell=c)
                                    for c in ("rnn", "gru", "lstm")], ignore_index=True))
    console = Console(width=width, record=True, color_system=None)
    console.print(agreement_table(found, 0.05, C.MARGINS))
    text = console.export_text()
    assert "…" not in text and "lstm-uni-64x2" in text and "torch against keras" in text
    assert all(a.verdict in text for a in found)
