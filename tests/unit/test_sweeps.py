"""Sweeps, sequence shapes and cost curves: exact values for the parsing, the expansion, the fits and
the crossovers; the view's and the report's sweep tables from a hand-made run."""

import math

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from bench.core.errors import BenchInputError
from bench.core.specs import PERMUTATION_SEED, Case, ModelSpec, TrainSpec
from bench.planning.matrices import Overrides, build_cases
from bench.planning.sweep import MAX_CASES, Sweep, expand, parse_sweep
from bench.results.record import Record
from bench.results.store import to_frame
from bench.stats.scaling import Crossover, crossovers, fit_exponent, sweep_series


@pytest.mark.parametrize("text, axis, values", [
    ("units=32..256", "units", (32, 64, 128, 256)),
    ("units=32..1024/6", "units", (32, 64, 128, 256, 512, 1024)),
    ("units=10..1000/3", "units", (10, 100, 1000)),
    ("batch=64,16,32", "batch_size", (16, 32, 64)),
    ("layers=1,2,3", "layers", (1, 2, 3)),
    ("timesteps=7..112", "timesteps", (7, 14, 28, 56, 112)),
])
def test_sweep_values_are_a_list_a_doubling_range_or_n_geometric_points(text, axis, values):
    assert parse_sweep(text) == Sweep(axis, values)


@pytest.mark.parametrize("text, fragment", [
    ("depth=1,2", "unknown axis 'depth'; valid axes: 'units', 'timesteps', 'batch_size' or 'layers'"),
    ("units=256..32", "the range 256..32 has no points"),
    ("units=64", "1 point(s); a sweep needs two or more"),
    ("units=33..60", "1 point(s)"),  # 33, then 66 > 60: one point
    ("units=32,32", "given twice"),
    ("units=0,8", "0 is not a positive integer"),
    ("units=a,b", "'a' is not an integer"),
    ("units", "unknown axis"),
])
def test_a_bad_sweep_names_the_value_and_what_is_allowed(text, fragment):
    with pytest.raises(BenchInputError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        parse_sweep(text)


def test_several_sweeps_go_one_axis_at_a_time_and_the_centre_is_one_case():
    base = [Case("torch", ModelSpec("lstm", (64,), timesteps=28), TrainSpec(batch_size=64), "synthetic",
                 sequence="random")]
    cases = expand(base, (Sweep("units", (32, 64, 128)), Sweep("batch_size", (32, 64))))
    ids = {c.case_id: c.sweep_axes for c in cases}
    assert len(cases) == 4  # 3 widths + 1 more batch size: (64 units, batch 64) is the shared centre
    assert ids["torch/lstm-uni-64x1/b64/synthetic/s0"] == ("units", "batch_size")
    assert ids["torch/lstm-uni-32x1/b64/synthetic/s0"] == ("units",)
    assert ids["torch/lstm-uni-64x1/b32/synthetic/s0"] == ("batch_size",)
    layers = expand(base, (Sweep("layers", (1, 3)),))
    assert [c.model.units for c in layers] == [(64,), (64, 64, 64)]
    with pytest.raises(BenchInputError, match="axis 'units' is swept twice"):
        expand(base, (Sweep("units", (1, 2)), Sweep("units", (3, 4))))


def test_the_matrix_with_a_sweep_is_checked_before_any_work():
    cases, _ = build_cases("ci", Overrides(sweeps=(parse_sweep("timesteps=7..56"),), cells=("rnn",)))
    assert sorted({c.model.timesteps for c in cases}) == [7, 14, 28, 56]
    assert {c.case_id.split("/")[4] for c in cases if c.model.timesteps != 28} == {"t7x28", "t14x28", "t56x28"}
    with pytest.raises(BenchInputError, match="images have a fixed length"):
        build_cases("smoke", Overrides(sweeps=(parse_sweep("timesteps=7..56"),)))
    big = Overrides(sweeps=(parse_sweep("units=1..4096"), parse_sweep("batch=1..4096"), parse_sweep("timesteps=1..4096")))
    with pytest.raises(BenchInputError, match=f"more than {MAX_CASES}: run fewer points or adapters, or confirm with --yes"):
        build_cases("ci", big)
    assert len(build_cases("ci", Overrides(**{**big.__dict__, "confirmed": True}))[0]) > MAX_CASES


def test_sequences_fix_the_shape_of_images_and_synthetic_data_takes_any():
    pixels, _ = build_cases("smoke", Overrides(sequence="permuted-pixels", cells=("lstm",)))
    assert {(c.sequence, c.model.timesteps, c.model.input_size) for c in pixels} == {("permuted-pixels", 784, 1)}
    assert pixels[0].case_id == "keras/lstm-uni-32x2/b64/mnist-5k/permuted-pixels/s0"
    row = Record.for_case(pixels[0], "r", 2)
    assert (row.sequence, row.timesteps, row.features, row.permutation_seed) == ("permuted-pixels", 784, 1, PERMUTATION_SEED)
    synthetic, _ = build_cases("ci", Overrides(timesteps=100, features=3))
    assert {(c.sequence, c.model.timesteps, c.model.input_size) for c in synthetic} == {("random", 100, 3)}
    with pytest.raises(BenchInputError, match="--sequence 'pixels' reads images; dataset 'synthetic' is random data"):
        build_cases("ci", Overrides(sequence="pixels"))
    with pytest.raises(BenchInputError, match="--timesteps/--features shape synthetic data; dataset 'mnist-5k'"):
        build_cases("smoke", Overrides(timesteps=100))
    with pytest.raises(BenchInputError, match="784 timesteps x 1 features for sequence 'pixels'"):
        Case("torch", ModelSpec("rnn", (8,)), sequence="pixels")


def test_pixels_are_read_in_order_and_the_permutation_is_fixed():
    from bench.data import as_sequence, pixel_permutation

    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    assert as_sequence(images, "rows") is images
    pixels = as_sequence(images, "pixels")
    assert pixels.shape == (2, 784, 1) and pixels[1, 29, 0] == images[1, 1, 1]
    perm = pixel_permutation()
    assert sorted(perm) == list(range(784)) and (perm == pixel_permutation()).all()  # a permutation, always the same
    permuted = as_sequence(images, "permuted-pixels")
    assert permuted[0, 5, 0] == images[0].reshape(-1)[perm[5]]


def test_synthetic_data_is_generated_at_the_cases_shape():
    from bench.data import load, resolve

    d = load(resolve("synthetic"), "random", 9, 3)
    assert d.x_train.shape[1:] == (9, 3) and d.x_test.shape[1:] == (9, 3)
    assert d.sha256 != load(resolve("synthetic"), "random", 28, 28).sha256


def test_fit_exponent_is_the_log_log_slope_with_a_t_interval():
    exact = fit_exponent([16, 32, 64, 128], [1.0, 4.0, 16.0, 64.0])
    assert exact.exponent == pytest.approx(2.0) and exact.low == pytest.approx(2.0) and exact.points == 4
    noisy = fit_exponent([1, 2, 4, 8, 16], [1.0, 2.2, 3.9, 8.5, 15.0])
    assert noisy.low < noisy.exponent < noisy.high and 0.9 < noisy.exponent < 1.1
    assert fit_exponent([1, 2], [1.0, 2.0]).low is None  # two points: a slope, no interval
    assert fit_exponent([1], [1.0]) is None


def test_a_crossover_is_interpolated_in_log_log_space():
    (c,) = crossovers([64, 128, 256], {"keras": [1.0, 2.0, 8.0], "torch": [2.0, 3.0, 4.0]})
    # log(2/3) / (log(2/3) - log(8/4)) of the way from 128 to 256, in log space
    frac = math.log(2 / 3) / (math.log(2 / 3) - math.log(2))
    assert c == Crossover(pytest.approx(128 * 2**frac), "keras", "torch")
    assert c.text("units", "rnn-uni") == "keras is faster below about 170 units for rnn-uni, torch above"
    assert crossovers([1, 2], {"a": [1.0, 2.0], "b": [3.0, 4.0]}) == []


def sweep_run() -> pd.DataFrame:
    rows = []
    for units, keras_ms, torch_ms in ((32, 1.0, 2.0), (64, 2.0, 2.5), (128, 4.0, 3.0), (256, 16.0, 6.0)):
        for adapter, ms in (("keras", keras_ms), ("torch", torch_ms)):
            case = Case(adapter, ModelSpec("rnn", (units,)), TrainSpec(), "synthetic", sequence="random",
                        sweep_axes=("units",))
            rows.append(Record.for_case(case, "r", 2).with_measurements({
                "status": "ok", "step_time_ms_median": ms, "cpu_rss_peak_mb": 300.0 + units, "host": "vm",
                "cpu_model": "cpu"}).to_row())
    return to_frame(rows)


def test_the_view_of_a_sweep_is_one_table_per_axis_with_fits_and_crossovers():
    from bench.render.view import print_view

    (series,) = sweep_series(sweep_run())
    assert (series.axis, series.family, series.values) == ("units", "rnn-uni, 1 layer, T=28, batch 64", (32, 64, 128, 256))
    assert series.times == {"keras": [1.0, 2.0, 4.0, 16.0], "torch": [2.0, 2.5, 3.0, 6.0]}
    console = Console(width=100, record=True, color_system=None)
    print_view(sweep_run(), console, title="scaling")
    text = console.export_text()
    assert "units sweep: rnn-uni, 1 layer, T=28, batch 64" in text
    assert "keras is faster below about 87 units for rnn-uni, torch above" in " ".join(text.split())
    flat = " ".join(text.split())  # rich wraps the notes at the console's width
    assert "step time ~ units^b" in flat and "the FLOP model's b at large sizes: 2" in flat
    assert max(len(line) for line in text.splitlines()) <= 100


def test_the_report_draws_the_sweep_on_log_log_axes():
    pytest.importorskip("matplotlib")
    from bench.render import html

    chart = html.chart_sweeps(sweep_run())
    assert chart is not None and chart.key == "sweeps"
    keras = chart.data[chart.data["adapter"] == "keras"]
    assert list(keras["value"]) == [32, 64, 128, 256] and list(keras["memory_mb"]) == [332.0, 364.0, 428.0, 556.0]
    assert html.chart_sweeps(sweep_run().assign(sweep_axes="")) is None


def test_a_ranking_within_ten_percent_is_a_tie_not_a_crossover():
    # keras clearly faster at 8, a tie at 16 (2% apart), torch clearly faster at 32: one crossover,
    # interpolated between 8 and 32 across the tie
    (c,) = crossovers([8, 16, 32], {"keras": [1.0, 2.0, 4.0], "torch": [1.2, 1.96, 3.0]})
    assert (c.below, c.above) == ("keras", "torch") and 8 < c.at < 32
    # flips inside the band are no crossing at all
    assert crossovers([8, 16, 32], {"keras": [1.0, 1.08, 1.0], "torch": [1.07, 1.0, 1.09]}) == []
