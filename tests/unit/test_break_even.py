"""Compile break-even: exact step counts, pairing only the same case, and the view's note."""

import pytest
from rich.console import Console

from bench.core.specs import Case, ModelSpec, TrainSpec
from bench.render.view import print_view
from bench.results.record import Record
from bench.results.store import to_frame
from bench.stats.break_even import BreakEven, break_even_steps, break_evens, describe, eager_twins


@pytest.mark.parametrize("first_c, median_c, first_e, median_e, steps", [
    (1000.0, 10.0, 20.0, 12.0, 491),  # 1000 + 490 * 10 == 20 + 490 * 12: paid back exactly at 491
    (1001.0, 10.0, 20.0, 12.0, 492),  # 1 ms more: step 491 is 1 ms short
    (1000.0, 10.0, 20.0, 10.0, None),  # no gain per step: never
    (1000.0, 12.0, 20.0, 10.0, None),  # the compiled step is slower
    (10.0, 5.0, 20.0, 10.0, 1),  # cheaper from the first step
    (10.0, 12.0, 20.0, 10.0, None),  # cheaper first step, slower after: never pays back for good
])
def test_break_even_is_the_first_step_count_where_compiling_has_cost_less(first_c, median_c, first_e, median_e, steps):
    assert break_even_steps(first_c, median_c, first_e, median_e) == steps
    if steps is not None:  # the definition, checked at n and n - 1
        n = steps
        assert first_c + (n - 1) * median_c <= first_e + (n - 1) * median_e
        if n > 1:
            assert first_c + (n - 2) * median_c > first_e + (n - 2) * median_e


def test_the_registry_names_torch_as_the_eager_twin_of_both_compiled_torch_adapters():
    twins = eager_twins()
    assert twins["torch-compile"] == twins["torch-compile-rnn"] == "torch"
    assert twins["torch"] is None and twins["keras"] is None


def _row(adapter, cell="lstm", batch=64, first=None, median=None, status="ok", rep=0):
    case = Case(adapter, ModelSpec(cell, (32, 32)), TrainSpec(batch_size=batch, max_steps=30))
    measured = {"status": status, "step_time_ms_median": median, "first_step_ms": first, "host": "vm", "cpu_model": "cpu"}
    return Record.for_case(case, "r", 2, rep).with_measurements(measured).to_row()


def test_only_the_same_case_of_the_eager_twin_is_paired_and_repeats_use_medians():
    df = to_frame([
        _row("torch", "lstm", first=20.0, median=12.0),
        _row("torch-compile", "lstm", first=990.0, median=10.0, rep=0),
        _row("torch-compile", "lstm", first=1000.0, median=10.0, rep=1),
        _row("torch-compile", "lstm", first=1010.0, median=10.0, rep=2),  # median first step: 1000
        _row("keras", "lstm", first=900.0, median=11.0),  # not a compiled adapter of torch
        _row("torch", "gru", batch=32, first=20.0, median=12.0),  # another batch: not the same case
        _row("torch-compile", "gru", first=500.0, median=5.0),
        _row("torch", "rnn", status="failed"),
        _row("torch-compile", "rnn", first=500.0, median=5.0),
    ])
    found = break_evens(df)
    assert found == [BreakEven(model="lstm-uni-32x2/b64/mnist-5k/s0", compiled="torch-compile", eager="torch",
                               compile_s=0.99, gain_ms=2.0, steps=491)]
    assert describe(found[0]) == "lstm-uni-32x2/b64/mnist-5k/s0 after 491 steps (compile 1.0 s, 2.00 ms/step faster)"
    slower = BreakEven("m", "torch-compile", "torch", 3.0, -0.25, None)
    assert describe(slower) == "m never (compile 3.0 s, 0.25 ms/step slower)"


def test_the_view_says_when_compiling_pays_back():
    df = to_frame([_row("torch", "lstm", first=20.0, median=12.0), _row("torch-compile", "lstm", first=1000.0, median=10.0)])
    console = Console(width=200, record=True, color_system=None)
    print_view(df, console)
    text = console.export_text()
    assert "compile break-even of torch-compile against torch" in text
    assert "lstm-uni-32x2 after 491 steps (compile 1.0 s, 2.00 ms/step faster)" in text


def _jit_row(adapter, jit, mode, first, median, cell="lstm"):
    case = Case(adapter, ModelSpec(cell, (32, 32)), TrainSpec(max_steps=30, jit_compile=jit))
    return Record.for_case(case, "r", 2).with_measurements({
        "status": "ok", "step_time_ms_median": median, "first_step_ms": first, "compile_mode": mode,
        "host": "vm", "cpu_model": "cpu"}).to_row()


def test_keras_with_its_compile_switch_on_is_paired_with_the_same_adapter_off():
    df = to_frame([
        _jit_row("keras", "on", "xla", 3000.0, 8.0), _jit_row("keras", "off", "tf.function", 1000.0, 10.0),
        _jit_row("keras", "auto", "tf.function", 1000.0, 10.0),  # auto did not compile here: no pair
        _jit_row("keras-jax", "auto", "jax.jit (xla)", 2000.0, 5.0), _jit_row("keras-jax", "off", "eager", 50.0, 40.0),
    ])
    found = {(b.compiled, b.eager): b for b in break_evens(df)}
    assert set(found) == {("keras jit-on", "keras jit-off"), ("keras-jax", "keras-jax jit-off")}
    assert found[("keras jit-on", "keras jit-off")].steps == 1001  # 2000 ms more, 2 ms a step back
    assert found[("keras-jax", "keras-jax jit-off")].steps == 1 + 56  # 1950 / 35 = 55.7
    assert found[("keras jit-on", "keras jit-off")].model == "lstm-uni-32x2/b64/mnist-5k/s0"


def test_the_view_shows_each_compile_mode_as_its_own_column_group():
    df = to_frame([_jit_row("keras", "on", "xla", 3000.0, 8.0), _jit_row("keras", "off", "tf.function", 1000.0, 10.0),
                   _row("torch", "lstm", first=20.0, median=12.0)])
    console = Console(width=200, record=True, color_system=None)
    print_view(df, console)
    text = console.export_text()
    assert "keras jit-on" in text and "keras jit-off" in text
    from bench.render.view import cells

    assert cells(df)[0] == ["lstm-uni-32x2"]  # one row: the modes are columns
    assert "compile break-even of keras jit-on against keras jit-off" in text
    assert "lstm-uni-32x2 after 1,001 steps (compile 3.0 s, 2.00 ms/step faster)" in text


def test_the_median_interval_is_the_binomial_order_statistics():
    import numpy as np
    from scipy import stats

    from bench.stats.break_even import median_interval

    x = np.arange(1.0, 21.0)  # n = 20: P(B <= 5) = 0.0207 <= 0.025 < P(B <= 6), so j = 6: x(6) and x(15)
    assert median_interval(x[::-1]) == (6.0, 15.0)
    assert 1 - 2 * stats.binom.cdf(5, 20, 0.5) >= 0.95
    assert median_interval(np.array([3.0, 1.0, 2.0])) == (1.0, 3.0)  # too few steps for better: the range


def test_the_break_even_interval_runs_from_the_largest_gain_to_the_smallest():
    from bench.stats.break_even import steps_interval

    assert steps_interval(980.0, (1.0, 4.0)) == (1 + 245, 1 + 980)
    assert steps_interval(980.0, (-0.5, 4.0)) == (246, None)  # the gain may be nothing: up to never
    assert steps_interval(980.0, (-2.0, -0.5)) == (None, None)
    assert steps_interval(-5.0, (0.0, 1.0)) == (1, 1)


def test_a_break_even_from_a_gain_within_the_noise_says_so():
    import numpy as np

    def row(adapter, first, level, spread):
        r = _row(adapter, "lstm", first=first, median=level)
        r["step_times_ms"] = list(level + spread * np.sin(np.arange(40.0))) + [level]
        r["warmup_steps"] = 0
        return r

    found = break_evens(to_frame([row("torch", 20.0, 12.0, 0.05), row("torch-compile", 1000.0, 10.0, 0.05)]))
    (b,) = found
    assert b.steps == 491 and b.steps_interval[0] < 491 < b.steps_interval[1]
    assert "95%: " in describe(b) and "to never" not in describe(b)
    (noisy,) = break_evens(to_frame([row("torch", 20.0, 12.0, 3.0), row("torch-compile", 1000.0, 10.0, 3.0)]))
    assert noisy.steps == 491 and noisy.steps_interval[1] is None
    assert "steps to never, not within this run's noise" in describe(noisy)
