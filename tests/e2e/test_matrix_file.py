"""User matrix files: grid and list cases, and errors that name the file, the key and the valid values."""


import pytest

from bench.core.errors import BenchInputError
from bench.planning.matrices import Overrides, build_cases
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "matrix.toml"


def write(tmp_path, text: str) -> str:
    path = tmp_path / "m.toml"
    path.write_text(text)
    return str(path)


def test_the_example_file_expands_to_its_grid_and_its_case():
    cases, mdef = build_cases(str(EXAMPLE))
    assert mdef.name == "matrix" and mdef.timeout_s == 600 and mdef.origin == str(EXAMPLE)
    grid = [c for c in cases if not c.label]
    assert len(grid) == 8  # 2 adapters x 2 cells x units 32 at 1 and 2 layers
    assert {(c.adapter, c.model.cell, c.model.units) for c in grid} == {
        (a, cell, u) for a in ("keras", "torch") for cell in ("gru", "lstm") for u in ((32,), (32, 32))
    }
    assert all(c.train.max_steps == 100 and c.train.phase_rounds == 0 and c.dataset == "mnist-5k" for c in grid)
    (wide,) = [c for c in cases if c.label]
    assert wide.case_id == "wide:torch/lstm-bi-128x2-do0.2-0/b64/mnist-5k/s0"
    assert (wide.train.learning_rate, wide.train.lr_schedule, wide.train.lr_decay, wide.train.max_steps) == (
        2e-3, "inverse-time", 1e-4, 100)


def test_grid_units_may_be_one_list_per_model(tmp_path):
    path = write(tmp_path, '[grid]\nadapters = "torch"\ncells = ["rnn"]\nunits = [[8], [16, 4]]\n'
                           'bidirectional = [false, true]\nbatch_size = [32, 64]\n')
    cases, _ = build_cases(path, Overrides(max_steps=3))
    assert len(cases) == 8
    assert {c.model.units for c in cases} == {(8,), (16, 4)}
    assert {c.train.batch_size for c in cases} == {32, 64} and all(c.train.max_steps == 3 for c in cases)


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("[grid\nadapters = 1", ["invalid TOML", "line 1"]),
        ("datset = 'mnist'", ["top level: unknown key 'datset'", "'description', 'dataset'"]),
        ("dataset = 'cifar'", ["dataset: invalid value 'cifar'", "'mnist-5k', 'mnist'"]),
        ("timeout_s = -1\n[grid]\nadapters=['torch']\ncells=['rnn']\nunits=[8]", ["timeout_s: invalid value -1"]),
        ("[train]\nbatchsize = 3", ["[train]: unknown key 'batchsize'", "'batch_size'"]),
        ("[train]\nbatch_size = 0", ["[train]: TrainSpec.batch_size: invalid value 0"]),
        ("[grid]\nadapters = ['torch']\ncells = ['rnn']", ["[grid]: missing key 'units'"]),
        ("[grid]\nadapters = ['mxnet']\ncells=['rnn']\nunits=[8]", ["unknown adapter 'mxnet'", "'tf1-graph'"]),
        ("[grid]\nadapters = ['torch']\ncells=['cnn']\nunits=[8]", ["cell='cnn'", "'rnn', 'gru' or 'lstm'"]),
        ("[grid]\nadapters = ['torch']\ncells=['gru']\nunits=[8]\nactivation=['relu']",
         ["case 1", "fixed tanh activation"]),
        ("[[case]]\nadapter = 'torch'", ["[[case]] 1: missing key 'model'"]),
        ("[[case]]\nadapter = 'torch'\nmodel = { cell = 'lstm', unit = [8] }", ["[[case]] 1 model: unknown key 'unit'", "'units'"]),
        ("[[case]]\nlabel = 'x'\nadapter = 'torch'\nmodel = { cell = 'lstm', units = [8] }\ntrain = { lr = 1 }",
         ["[[case]] 1 ('x') train: unknown key 'lr'", "'learning_rate'"]),
        ("[[case]]\nadapter = 'tf1-graph'\nmodel = { cell = 'gru', units = [8] }\ninit = 'keras'",
         ["--init keras cannot load weights", "reset gate before"]),
        ("[[case]]\nadapter='torch'\nmodel={cell='rnn', units=[8]}\n[[case]]\nadapter='torch'\nmodel={cell='rnn', units=[8]}",
         ["cases 1 and 2 are both 'torch/rnn-uni-8x1/b64/mnist-5k/s0'", "distinct labels"]),
        ("description = 'nothing'", ["declares no cases"]),
    ],
)
def test_errors_name_the_file_the_key_and_the_valid_values(tmp_path, text, fragments):
    path = write(tmp_path, text)
    with pytest.raises(BenchInputError) as exc:
        build_cases(path)
    message = str(exc.value)
    assert path in message or "no such file" in message
    for fragment in fragments:
        assert fragment in message, message


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(BenchInputError, match="no such file"):
        build_cases(str(tmp_path / "none.toml"))


def test_a_user_matrix_runs_end_to_end_through_the_cli(tmp_path, fake_adapters, capsys):
    from bench.cli.main import main
    from bench.results.store import load_results

    path = write(tmp_path, 'dataset = "synthetic"\ntimeout_s = 60\n[train]\nmax_steps = 6\nwarmup_steps = 1\n'
                           '[grid]\nadapters = ["fake-ok"]\ncells = ["rnn", "gru"]\nunits = [4]\n'
                           '[[case]]\nlabel = "slow-lr"\nadapter = "fake-ok"\nmodel = { cell = "rnn", units = [4] }\n'
                           'train = { learning_rate = 1e-4 }\n')
    out = tmp_path / "out"
    assert main(["run", "--matrix", path, "--out", str(out), "--quiet"]) == 0
    (run_dir,) = (out / "runs").iterdir()
    df, meta = load_results(run_dir)
    assert sorted(df["case_id"]) == ["fake-ok/gru-uni-4x1/b64/synthetic/s0", "fake-ok/rnn-uni-4x1/b64/synthetic/s0",
                                     "slow-lr:fake-ok/rnn-uni-4x1/b64/synthetic/s0"]
    assert set(df["status"]) == {"ok"} and set(df["steps_run"]) == {6}
    assert df.set_index("label").loc["slow-lr", "learning_rate"] == 1e-4
    assert meta["matrix"] == "m" and meta["matrix_origin"] == path


def test_the_precision_example_holds_both_precisions_of_every_case():
    from bench.planning.matrices import Overrides, apply_overrides, get_matrix

    cases = apply_overrides(get_matrix(str(EXAMPLE.parent / "precision.toml")), Overrides())
    by_precision = {p: sorted(c.case_id.removesuffix("/bf16") for c in cases if c.train.precision == p)
                    for p in ("fp32", "bf16")}
    assert len(by_precision["fp32"]) == 6 and by_precision["fp32"] == by_precision["bf16"]
