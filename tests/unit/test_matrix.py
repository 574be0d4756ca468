import pytest

from bench.core.errors import BenchInputError
from bench.planning.matrices import MATRICES, Overrides, build_cases


def test_smoke_is_both_adapters_by_every_cell_and_direction():
    cases, mdef = build_cases("smoke")
    assert len(cases) == 12
    assert {(c.adapter, c.model.cell, c.model.bidirectional) for c in cases} == {
        (a, cell, bi) for a in ("keras", "torch") for cell in ("rnn", "gru", "lstm") for bi in (False, True)
    }
    assert len({c.case_id for c in cases}) == 12


def test_full_has_two_widths():
    cases, _ = build_cases("full")
    assert len(cases) == 24
    assert {c.model.units for c in cases} == {(128, 128), (256, 256)}


def test_overrides_apply():
    cases, _ = build_cases(
        "smoke",
        Overrides(
            adapters=("torch",), cells=("lstm",), dataset="synthetic", batch_size=32, max_steps=5, seed=7, device="cpu"
        ),
    )
    assert len(cases) == 2
    c = cases[0]
    assert (c.adapter, c.dataset, c.train.batch_size, c.train.max_steps, c.train.seed, c.device) == (
        "torch",
        "synthetic",
        32,
        5,
        7,
        "cpu",
    )


def test_epochs_override_clears_step_limit():
    cases, _ = build_cases("smoke", Overrides(epochs=2))
    assert cases[0].train.epochs == 2 and cases[0].train.max_steps is None


def test_bad_names_list_valid_choices():
    with pytest.raises(BenchInputError, match="unknown matrix 'nosuch'; valid matrices: 'smoke', 'full', 'ci', 'converge', 'scaling' or 'seeds', or the path"):
        build_cases("nosuch")
    with pytest.raises(BenchInputError, match="unknown adapter 'mxnet'; valid adapters: 'keras', 'torch', 'keras-jax', 'keras-torch', 'torch-compile', 'torch-compile-rnn' or 'tf1-graph'"):
        build_cases("smoke", Overrides(adapters=("mxnet",)))
    with pytest.raises(BenchInputError, match="unknown cell 'cnn'; valid cells: 'rnn', 'gru' or 'lstm'"):
        build_cases("smoke", Overrides(cells=("cnn",)))


def test_matrices_are_documented():
    assert all(m.description for m in MATRICES.values())
