"""`bench ab`: the schedule, the pairing of cases, bad input, and small real A/A runs with fake adapters."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench.cli.main import main
from bench.execution.jobs import Job
from bench.stats.ab import AbCase, SideCase, judge, pair_cases, schedule
from tests.conftest import ROOT


def job(key: str) -> dict:
    return Job("case", key, {}, {}, 60.0).to_dict()


def test_the_sequential_schedule_alternates_which_side_goes_first():
    order = schedule(rounds=2, n_cases=2)
    assert order == [(0, 0, "base"), (0, 0, "head"), (0, 1, "head"), (0, 1, "base"),
                     (1, 0, "head"), (1, 0, "base"), (1, 1, "base"), (1, 1, "head")]
    # every case and side equally often in each position: drift adds as much to base as to head
    for i in range(2):
        firsts = [s for k, (r, c, s) in enumerate(order) if c == i and k % 2 == 0]
        assert sorted(firsts) == ["base", "head"]


def test_cases_pair_by_id_and_the_leftovers_are_named():
    base = {"jobs": [job("a"), job("b"), job("gone")]}
    head = {"jobs": [job("b"), job("a"), job("new")]}
    both, dropped, new = pair_cases(base, head)
    assert [c.case_id for c in both] == ["b", "a"] and dropped == ["gone"] and new == ["new"]


def _rows(medians, status="ok"):
    return {r: {"status": status, "warmup_steps": 0, "step_times_ms": [0.0] + list(m * (1 + 0.01 * np.arange(-5, 6)))}
            for r, m in enumerate(medians)}


def _case(base, head, **kw):
    return AbCase("c", SideCase(Job("case", "c", {}, {}, 1.0), _rows(base, **kw.get("b", {}))),
                  SideCase(Job("case", "c", {}, {}, 1.0), _rows(head, **kw.get("h", {}))))


def test_judge_finds_a_consistent_slowdown_and_ignores_noise():
    assert judge(_case([10, 11, 9.5, 10.2], [11, 12.1, 10.5, 11.2]), 5.0, 0.01, 0.25).verdict == "regression"
    assert judge(_case([10, 11, 9.5, 10.2], [10.1, 10.9, 9.6, 10.2]), 5.0, 0.01, 0.25).verdict == "unchanged"
    r = judge(_case([10, 11, 9.5, 10.2], [11, 12.1, 10.5, 11.2]), 5.0, 0.01, 0.25)
    assert r.method == "paired t-test on log process medians, 4 interleaved rounds" and 1.09 < r.ratio < 1.11


def test_a_case_still_open_after_every_round_and_slower_is_inconclusive_not_unchanged():
    noisy = _case([10, 11, 9.5, 10.2, 10.4, 9.8], [10.0, 13.2, 9.9, 11.9, 11.6, 10.2])  # +8%, p well above 0.01
    assert judge(noisy, 5.0, 0.01, 0.25).verdict == "unchanged"  # the fixed-rounds verdict, as before
    r = judge(noisy, 5.0, 0.01, 0.25, state="done")
    assert r.verdict == "inconclusive" and "still open after 6 rounds" in r.note and r.ratio > 1.05
    assert judge(noisy, 5.0, 0.01, 0.25, state="cleared").verdict == "unchanged"


def test_a_head_process_that_fails_where_base_is_ok_is_a_regression():
    case = AbCase("c", SideCase(Job("case", "c", {}, {}, 1.0), _rows([10, 10])),
                  SideCase(Job("case", "c", {}, {}, 1.0), {0: _rows([10])[0], 1: {"status": "timeout"}}))
    r = judge(case, 5.0, 0.01, 0.25)
    assert r.verdict == "regression" and "timeout" in r.note


@pytest.mark.parametrize("argv, fragments", [
    (["ab", "no-such-rev-xyz"], ["revision 'no-such-rev-xyz' does not exist", "HEAD~1"]),
    (["ab", "HEAD", "--rounds", "1"], ["--rounds 1", "at least 2"]),
    (["ab"], ["give BASE", "--base-python"]),
    (["ab", "--base-python", "/no/such/python"], ["--base-python '/no/such/python': no such executable"]),
    (["ab", "--base-python", "/bin/true"], ["is not a working Python 3 interpreter"]),
    (["ab", "HEAD", "--fail", "test_accuracy:5%"], ["ab judges step time only"]),
    (["ab", "HEAD", "--cpus", "99"], ["invalid value '99'", "cores this process may use"]),
])
def test_bad_input_exits_2_before_any_process(tmp_path, capsys, argv, fragments):
    code = main([*argv, "--out", str(tmp_path / "o")]) if argv[-2:] != ["--cpus", "99"] else None
    if code is None:
        with pytest.raises(SystemExit) as exc:
            main([*argv, "--out", str(tmp_path / "o")])
        code = exc.value.code
    assert code == 2
    err = capsys.readouterr().err
    for f in fragments:
        assert f in err
    assert not (tmp_path / "o").exists()


def test_a_python_without_the_packages_is_refused_naming_what_is_missing(tmp_path, capsys):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    code = main(["ab", "--base-python", str(tmp_path / "bare" / "bin" / "python"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "the base side" in err and "cannot plan the cases" in err and "No module named" in err


FAKE = ["--matrix", "smoke", "--cells", "lstm", "--dataset", "synthetic", "--max-steps", "20", "--quiet"]


def _worktrees(under: Path) -> list[str]:
    """ab's worktrees below `under`: each test gives its ab its own TMPDIR, so tests running at the
    same time (pytest-xdist) each see only their own."""
    out = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "rnnbench-ab-" in line and line.startswith(str(under))]


def _own_tmpdir(tmp_path: Path) -> tuple[Path, dict]:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return tmp, {**os.environ, "TMPDIR": str(tmp)}


@pytest.mark.parametrize("schedule_kind", ["pair", "sequential"])
def test_a_a_of_the_last_commit_against_the_working_tree_passes(tmp_path, fake_adapters, schedule_kind):
    tmp, env = _own_tmpdir(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "bench", "ab", "HEAD", "--adapters", "fake-ok", *FAKE, "--rounds",
                           "3", "--max-rounds", "3", "--schedule", schedule_kind, "--format", "json", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert not out["failed"] and len(out["comparisons"]) == 2  # lstm uni and bi
    assert {c["verdict"] for c in out["comparisons"]} <= {"unchanged", "inconclusive"}
    (ab_dir,) = (tmp_path / "ab").iterdir()
    saved = json.loads((ab_dir / "ab.json").read_text())
    assert saved["schedule"] == schedule_kind and all(len(v["base"]) == len(v["head"]) == 3
                                                      for v in saved["cases"].values())
    assert _worktrees(tmp) == []


def test_ctrl_c_removes_the_worktrees_and_stops_every_process(tmp_path, fake_adapters):
    from tests.e2e.test_runner import workers_started_by

    tmp, env = _own_tmpdir(tmp_path)
    # fake-hang's processes never finish on their own, so the signal always lands mid-run. ab starts with
    # SIGINT at its default, as at a terminal: a test run started in the background of a script inherits
    # SIGINT ignored, Python then installs no KeyboardInterrupt handler, and ab would run on to exit 0.
    proc = subprocess.Popen([sys.executable, "-m", "bench", "ab", "HEAD", "HEAD", "--adapters", "fake-hang", *FAKE,
                             "--out", str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not workers_started_by(proc.pid):
        time.sleep(0.2)
    assert workers_started_by(proc.pid) and proc.poll() is None
    assert len(_worktrees(tmp)) == 2  # both revisions checked out while it runs
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out[-2000:], err[-2000:])
    assert _worktrees(tmp) == [] and workers_started_by(proc.pid) == []


def test_worktrees_of_a_killed_ab_are_removed_by_the_next(tmp_path):
    import tempfile

    from bench.stats.ab import remove_stale_worktrees

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tmp = Path(tempfile.mkdtemp(prefix="rnnbench-ab-", dir=tmp_path))
    (tmp / "owner.pid").write_text(str(dead.pid))
    subprocess.run(["git", "worktree", "add", "--detach", str(tmp / "base"), "HEAD"], cwd=ROOT, check=True,
                   capture_output=True)
    assert len(_worktrees(tmp_path)) == 1
    # another ab running now (a live owner) keeps its worktrees; this dead owner's goes
    assert str(tmp / "base") in remove_stale_worktrees()
    assert _worktrees(tmp_path) == [] and not tmp.exists()


@pytest.mark.parametrize("width", [80, 100, 160])
def test_the_verdict_table_cuts_no_number_in_a_narrow_terminal(width):
    from rich.console import Console

    from bench.render.tables import ab_table
    from bench.stats.compare import Comparison

    ids = [f"{a}/{c}-uni-64x2/b64/synthetic/s0" for a in ("keras", "torch") for c in ("rnn", "gru", "lstm")]
    results = [Comparison(i, "step_time_ms_median", "inconclusive", 18.93, 19.64, 1.08, 1.02, 1.15, 0.00021,
                          note="still open after 12 rounds" if k == 0 else "") for k, i in enumerate(ids)]
    console = Console(width=width, record=True)
    console.print(ab_table(results, "base -> head", rounds={i: 4 + k for k, i in enumerate(ids)}, width=width))
    text = console.export_text()
    assert "…" not in text and "[1.020, 1.150]" in text and "0.00021" in text and "inconclusive" in text
    assert "still open after 12 rounds" in text  # a note column when wide, under the table when narrow
    assert ("19.64" in text) == (width >= 110)  # the medians need the wide table
