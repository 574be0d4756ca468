"""The results history (bench/results/history.py) and `bench history`: runs found at any depth and in
export files, ordered by commit date, one series per machine, the nightly --fail, and bad input."""

import json

import pytest

from bench.core.specs import Case, ModelSpec, TrainSpec
from bench.results.history import load_history
from bench.results.record import Record
from bench.results.store import save_run, to_frame

CASES = (Case("torch", ModelSpec("rnn", (64, 64)), TrainSpec(), "synthetic", sequence="random"),
         Case("keras", ModelSpec("rnn", (64, 64)), TrainSpec(), "synthetic", sequence="random"))


def write_run(root, i: int, ms: dict[str, float], cpu="AMD EPYC", date=None, matrix="ci", version="2.13.0",
              packages=None):
    run_id = f"20261201-{i:06d}-abcdef"
    rows = []
    for case in CASES:
        value = ms.get(case.adapter)
        rows.append(Record.for_case(case, run_id, 2).with_measurements({
            "status": "ok" if value else "failed", "step_time_ms_median": value, "cpu_model": cpu, "cpu_cores": 2,
            "framework_version": version,
            "step_times_ms": [value or 1.0] * 5, "warmup_steps": 0}).to_row())
    meta = {"run_id": run_id, "matrix": matrix, "threads": 2,
            "environment": {"cpu_model": cpu, "cpu_cores": 2, "gpu": {"available": False},
                            "packages": packages or {"numpy": "2.4.6"},
                            "git": {"commit": f"{i:040x}", "dirty": False,
                                    "commit_date": date or f"2026-12-{1 + i // 24:02d}T{i % 24:02d}:00:00+00:00"}}}
    (root / "runs" / run_id).mkdir(parents=True)
    save_run(root / "runs" / run_id, to_frame(rows), meta)
    return root / "runs" / run_id


def test_runs_at_any_depth_become_one_ordered_series_per_case_and_machine(tmp_path):
    for i, torch_ms in enumerate([10.0, 10.1, 9.9]):
        write_run(tmp_path / "ci-artifacts" / f"job{i}", i, {"torch": torch_ms, "keras": 20.0})
    write_run(tmp_path / "other", 5, {"torch": 30.0, "keras": 40.0}, cpu="Intel Xeon")
    points = load_history([str(tmp_path)])
    torch = points[(points["case_id"] == CASES[0].case_id)]
    assert torch.groupby("fingerprint").size().sort_values().tolist() == [1, 3]  # two machines, never mixed
    amd = torch[torch["machine"].str.startswith("AMD")]
    assert amd["step_time_ms"].tolist() == [10.0, 10.1, 9.9]  # in commit-date order
    assert amd["commit"].tolist() == [f"{i:040x}" for i in range(3)]
    assert len(load_history([str(tmp_path)], cases=["keras/*"])) == 4
    assert len(load_history([str(tmp_path)], matrix="ci")) == 8


def test_export_files_join_the_history(tmp_path):
    from bench.render.export import export
    from bench.results.store import load_results

    run = write_run(tmp_path / "a", 0, {"torch": 10.0, "keras": 20.0})
    df, meta = load_results(run)
    exported = tmp_path / "exp" / "bench.json"
    exported.parent.mkdir()
    exported.write_text(json.dumps(export(df, meta, "pytest-benchmark"), default=str))
    points = load_history([str(exported), str(run)])
    assert len(points) == 4 and points["fingerprint"].nunique() == 1  # the same machine either way
    gab = tmp_path / "gab.json"
    gab.write_text(json.dumps(export(df, meta, "github-action-benchmark")))
    from bench.core.errors import BenchInputError

    with pytest.raises(BenchInputError, match="holds no commit and no machine"):
        load_history([str(gab)])


@pytest.mark.parametrize("argv, fragment", [
    (["history", "{tmp}/nothing-here"], "no such file or directory"),
    (["history", "{tmp}/empty"], "holds no run"),
    (["history", "{tmp}/runs-two-machines", "--fail"], "points from 2 machines"),
    (["history", "{tmp}/runs-two-machines", "--machine", "zzz"], "no point of that machine"),
    (["history", "{tmp}/runs-two-machines", "--matrix", "nosuch"], "no step time to build a history from"),
    (["history", "{tmp}/runs-two-machines", "--min-magnitude", "5"], "a fraction between 0 and 1"),
    (["history", "{tmp}/runs-two-machines", "--by", "date"], "choose one of commit, version, version:PKG"),
    (["history", "{tmp}/runs-two-machines", "--by", "version:nosuch"], "no point records that version"),
])
def test_bad_input_is_exit_2_naming_the_value(tmp_path, capsys, argv, fragment):
    from bench.cli.main import main

    (tmp_path / "empty").mkdir()
    write_run(tmp_path / "runs-two-machines", 0, {"torch": 10.0, "keras": 20.0})
    write_run(tmp_path / "runs-two-machines", 1, {"torch": 30.0, "keras": 40.0}, cpu="Intel Xeon")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    assert fragment in capsys.readouterr().err


def test_the_nightly_gate_fails_on_a_newest_slowdown_and_plots_it(tmp_path, capsys):
    from bench.cli.main import main

    for i in range(14):  # 8 runs, then 6 runs 20% slower: enough points for a permutation p well below 0.01
        write_run(tmp_path, i, {"torch": 10.0 * (1.2 if i >= 8 else 1.0) * (1 + 0.002 * (i % 3)), "keras": 20.0})
    plot = tmp_path / "history.svg"
    assert main(["history", str(tmp_path), "--fail", "--plot", str(plot), "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    torch = next(s for s in out["series"] if s["case_id"].startswith("torch"))
    (change,) = torch["changes"]
    assert change["first_after"] == f"{8:040x}" and change["ratio"] == pytest.approx(1.2, abs=0.01)
    assert torch["newest_is_slowdown"] and out["failed"]
    assert plot.read_text().startswith("<svg") and f"{100 * (change['ratio'] - 1):+.1f}%" in plot.read_text()
    assert main(["history", str(tmp_path), "--case", "keras/*", "--fail"]) == 0


def test_the_report_shows_the_history_of_the_runs_cases_on_its_machine(tmp_path):
    pytest.importorskip("matplotlib")
    from bench.cli.report import write_report

    for i in range(12):  # 6 against 6: a permutation test can reach p < 0.01 (4 against 5 cannot: 2/126)
        write_run(tmp_path / "hist", i, {"torch": 10.0 if i < 6 else 12.0, "keras": 20.0})
    write_run(tmp_path / "hist", 20, {"torch": 99.0, "keras": 99.0}, cpu="Intel Xeon")  # another machine: left out
    last = write_run(tmp_path / "now", 13, {"torch": 12.0, "keras": 20.0})
    path, charts = write_report([last], tmp_path / "r.html", history=[str(tmp_path / "hist")])
    page = path.read_text()
    assert charts == 8 and 'data-chart="history"' in page and "+20.0%" in page
    assert "Intel" not in page.split('data-chart="history"')[1].split("</figure>")[0]


def test_a_framework_upgrade_at_one_commit_is_a_history_by_version(tmp_path, capsys):
    from bench.cli.main import main

    # 12 runs of one commit; torch 2.10.0 (20% slower) was run before 2.9.1, so only version order shows
    # the step, and 2.10 must sort after 2.9 as a number, not as text
    versions = ["2.10.0"] * 6 + ["2.9.1"] * 6
    for i, v in enumerate(versions):
        write_run(tmp_path, i, {"torch": (12.0 if v == "2.10.0" else 10.0) * (1 + 0.002 * (i % 3)), "keras": 20.0},
                  date="2026-12-01T00:00:00+00:00", version=v, packages={"numpy": f"2.{i // 6}.0"})
    assert main(["history", str(tmp_path), "--case", "torch/*", "--by", "version", "--format", "json"]) == 0
    (torch,) = json.loads(capsys.readouterr().out)["series"]
    assert torch["labels"] == ["2.9.1"] * 6 + ["2.10.0"] * 6 and torch["by"] == "version"
    (change,) = torch["changes"]
    assert change["first_after"] == "2.10.0" and change["ratio"] == pytest.approx(1.2, abs=0.01)
    assert main(["history", str(tmp_path), "--case", "torch/*", "--by", "version:numpy"]) == 0
    out = capsys.readouterr().out
    assert "first version after each" in out and "% at 2.1.0" in out  # numpy 2.1.0 came with torch 2.9.1: faster


@pytest.mark.parametrize("width", [80, 100])
def test_the_history_table_cuts_no_number_in_a_narrow_terminal(width):
    from rich.console import Console

    from bench.render.history import history_table
    from bench.stats.changes import Change, SeriesChanges

    step = Change(9, 3.29, 3.795, 0.0005)
    found = [SeriesChanges("torch/rnn-uni-64x2/b64/synthetic/s0", fp, "m", 17, tuple(f"{i:040x}" for i in range(17)),
                           tuple([3.3] * 9 + [3.8] * 8), (step,)) for fp in ("d6f4fc3d80", "a1b2c3d4e5")]
    for series in (found, found[:1]):  # two machines (a machine column) and one (none)
        console = Console(width=width, record=True)
        console.print(history_table(series, 0.05, 0.01, 3))
        text = console.export_text()
        assert "…" not in text and "+15.3%" in text and "(p=0.0005)" in text and "3.80" in text
        assert "segments of 3 points or more" in text  # the settings, not cropped
        assert ("a1b2c3d4e5" in text) == (len(series) == 2)
