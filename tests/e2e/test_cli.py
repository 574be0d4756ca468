"""Bad input exits 2 before any work, naming the value and the valid choices, creating nothing."""

import os
import subprocess
import sys

import pytest

from bench.cli.main import main
from tests.conftest import ROOT, installed


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["--matrix", "nosuch"], ["unknown matrix 'nosuch'", "'smoke', 'full', 'ci', 'converge', 'scaling' or 'seeds'", ".toml"]),
        (["--matrix", "nosuch.toml"], ["'nosuch.toml': no such file", "examples/matrix.toml"]),
        (["--matrix", "seeds", "--cells", "rnn", "--adapters", "tf1-graph"], ["no case for the --adapters/--cells given", "tf1-graph/lstm"]),
        (["--matrix", "smoke", "--adapters", "tf1-graph", "--init", "keras"], ["--init keras cannot load weights", "reset gate before"]),
        (["--adapters", "keras,mxnet"], ["unknown adapter 'mxnet'", "'keras', 'torch', 'keras-jax', 'keras-torch', 'torch-compile', 'torch-compile-rnn' or 'tf1-graph'"]),
        (["--dataset", "cifar"], ["invalid choice: 'cifar'", "mnist-5k"]),
        (["--batch-size", "0"], ["--batch-size", "invalid value '0'", "positive integer"]),
        (["--epochs", "-3"], ["--epochs", "invalid value '-3'"]),
        (["--max-steps", "2.5"], ["--max-steps", "invalid value '2.5'"]),
        (["--timeout", "0"], ["--timeout", "positive number"]),
        (["--device", "tpu"], ["invalid choice: 'tpu'", "'cuda'"]),
        (["--cells", "cnn"], ["unknown cell 'cnn'", "'rnn', 'gru' or 'lstm'"]),
        (["--data-dir", "/no/such/dir", "--dataset", "mnist"], ["/no/such/dir", "not a directory"]),
        (["--matrix", "seeds", "--data-dir", "/no/such/dir"], ["/no/such/dir", "not a directory"]),
        (["--batch-size", "5000"], ["batch size 5000", "is larger than dataset 'mnist-5k'"]),
        (["--seed", "-1"], ["--seed", "integer >= 0"]),
        (["--resume", "/no/such/run"], ["--resume", "not a run directory"]),
        (["--no-such-option"], ["unrecognized arguments: --no-such-option"]),
        (["--precision", "fp64"], ["invalid choice: 'fp64'", "'fp32', 'tf32', 'bf16', 'fp16'"]),
        (["--matrix", "smoke", "--adapters", "keras,tf1-graph", "--precision", "bf16"],
         ["adapter 'tf1-graph'", "precision 'bf16' is not supported by tf1-graph", "it supports: fp32, tf32"]),
        # sequences and sweeps
        (["--matrix", "ci", "--sequence", "pixels"], ["--sequence 'pixels' reads images", "--timesteps T --features F"]),
        (["--timesteps", "100"], ["--timesteps/--features shape synthetic data", "dataset 'mnist-5k'", "pixels: 784x1"]),
        (["--sequence", "columns"], ["invalid choice: 'columns'", "'rows', 'pixels', 'permuted-pixels'"]),
        (["--sweep", "depth=1,2"], ["unknown axis 'depth'", "'units', 'timesteps', 'batch_size' or 'layers'"]),
        (["--sweep", "units=512..64"], ["the range 512..64 has no points"]),
        (["--matrix", "ci", "--sweep", "units=1..4096", "--sweep", "batch=1..4096", "--sweep", "timesteps=1..4096"],
         ["more than 200", "confirm with --yes"]),
        (["--sweep", "timesteps=7,14"], ["images have a fixed length"]),
        # seeds and the compile switch
        (["--seeds", "0"], ["--seeds", "a count N >= 1"]),
        (["--seeds", "1,-2"], ["seed -2 is negative"]),
        (["--seeds", "3,3"], ["seed 3 is given twice"]),
        (["--seed", "1", "--seeds", "2"], ["--seed 1 and --seeds 0,1: give one"]),
        (["--jit-compile", "maybe"], ["--jit-compile", "auto, on, off"]),
        (["--adapters", "torch", "--jit-compile", "on,off"], ["none of the adapters", "keras, keras-jax, keras-torch"]),
    ],
)
def test_bad_input_exits_2_and_creates_nothing(tmp_path, capsys, argv, fragments):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        code = main(["run", "--out", str(out), *argv])
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    for fragment in fragments:
        assert fragment in err
    assert not out.exists()


def test_cli_entry_point_exit_code_for_unknown_matrix(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--matrix", "nosuch", "--out", str(tmp_path / "o")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "valid matrices: 'smoke', 'full', 'ci', 'converge', 'scaling' or 'seeds'" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_list_shows_matrices_adapters_and_datasets(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("smoke", "full", "seeds", "FILE.toml", "keras", "torch", "tf1-graph", "mnist-5k (default)",
                 "fashion-mnist", "synthetic"):
        assert word in out


def test_show_of_missing_path_is_bad_input(tmp_path, capsys):
    assert main(["show", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


def _finished_run(tmp_path, status="ok"):
    from bench.core.specs import Case, ModelSpec
    from bench.results.record import Record
    from bench.results.store import save_run, to_frame

    rec = Record.for_case(Case("torch", ModelSpec("gru", (8,))), "r1", 1).with_measurements({"status": status})
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    save_run(run_dir, to_frame([rec.to_row()]), {"run_id": "r1"})
    return run_dir


def test_baseline_copies_a_clean_run(tmp_path):
    run_dir = _finished_run(tmp_path)
    assert main(["baseline", str(run_dir), "--name", "ci-cpu", "--root", str(tmp_path / "b")]) == 0
    assert sorted(p.name for p in (tmp_path / "b" / "ci-cpu").iterdir()) == ["meta.json", "results.csv", "results.parquet"]


@pytest.mark.parametrize("case, fragment", [("failed-run", "not ok"), ("bad-name", "use letters"), ("no-run", "not a finished run")])
def test_baseline_rejects_bad_input(tmp_path, capsys, case, fragment):
    run_dir = _finished_run(tmp_path, status="failed" if case == "failed-run" else "ok")
    name = "a/b" if case == "bad-name" else "x"
    path = tmp_path / "nothing" if case == "no-run" else run_dir
    assert main(["baseline", str(path), "--name", name, "--root", str(tmp_path / "b")]) == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def _prepare(argv):
    from bench.cli.main import build_parser
    from bench.cli.run import run_options
    from bench.planning.plan import prepare_run

    return prepare_run(run_options(build_parser().parse_args(["run", *argv])))


def test_seeds_falls_back_to_the_bundled_subset_and_says_so(monkeypatch, tmp_path):
    from bench import data

    real = data.resolve

    def no_full_mnist(name, data_dir=None, download=True):
        if name == "mnist":
            raise data.DataError("mnist: not here")
        return real(name, data_dir, download)

    monkeypatch.setattr(data, "resolve", no_full_mnist)
    plan = _prepare(["--matrix", "seeds", "--max-steps", "20", "--out", str(tmp_path)])
    assert plan.source.name == "mnist-5k" and {c.dataset for c in plan.cases} == {"mnist-5k"}
    notices = plan.meta["notices"]
    assert len(notices) == 1 and "NOT comparable with the reported figures" in notices[0]
    assert not (tmp_path / "runs").exists()


def test_seeds_uses_full_mnist_when_it_is_here(monkeypatch, tmp_path):
    from bench import data

    monkeypatch.setattr(data, "resolve", lambda name, data_dir=None, download=True: data.DataSource(name, "here", "test"))
    plan = _prepare(["--matrix", "seeds", "--out", str(tmp_path)])
    assert plan.source.name == "mnist" and {c.dataset for c in plan.cases} == {"mnist"} and plan.meta["notices"] == []


def test_every_command_prints_its_help(capsys):
    """argparse formats help strings with %: a bare '25%' in one crashed `--help` of compare and ab."""
    import argparse

    from bench.cli.main import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert {"run", "ab", "compare", "report", "export", "show"} <= set(sub.choices)
    for name, command in sub.choices.items():
        text = command.format_help()
        assert text.startswith(f"usage: python -m bench {name}")
    with pytest.raises(SystemExit) as exit_:
        main(["compare", "--help"])
    assert exit_.value.code == 0 and "step_time_ms_median:25%" in capsys.readouterr().out


@pytest.mark.skipif(not installed("torch"), reason="torch not installed")
def test_doctor_probes_an_adapter_in_its_own_process_and_writes_nothing(tmp_path):
    import json

    run = lambda *a: subprocess.run([sys.executable, "-m", "bench", "doctor", "--adapters", "torch", *a],  # noqa: E731
                                    cwd=tmp_path, capture_output=True, text=True, timeout=300,
                                    env={**os.environ, "PYTHONPATH": str(ROOT)})
    proc = run("--format", "json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    torch = report["adapters"]["torch"]
    assert torch["framework"] == "torch" and set(torch["kernel_path"]) == {"lstm", "gru"}
    assert torch["precisions"]["fp32"] == "ok" and report["machine"]["cpu_cores"] >= 1
    assert list(tmp_path.iterdir()) == []  # nothing written
    if not report["gpu"].get("available"):  # the normal state on a CPU machine: reported, and exit 1 for cuda
        assert "NVML unavailable" in report["gpu"]["reason"]
        cuda = run("--device", "cuda")
        assert cuda.returncode == 1 and "--device cuda: no GPU can be measured here" in cuda.stdout
