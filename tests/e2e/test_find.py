"""`bench find` on a scratch repository: four commits after GOOD, the third makes the fake adapter's step
three times slower; find names it, with ab against GOOD at each step, and leaves no worktree behind."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

FAKE = ["--adapters", "fake-ok", "--matrix", "smoke", "--cells", "lstm", "--dataset", "synthetic", "--max-steps", "20",
        "--rounds", "3", "--max-rounds", "3", "--quiet"]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@t"}).stdout.strip()


def scratch_repo(tmp_path: Path) -> Path:
    """This checkout's files (the working tree, as it is) as a new repository with a short history."""
    repo = tmp_path / "repo"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file():
            (repo / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, repo / f)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "good")
    for i in range(4):
        if i == 2:  # the regression: fake-ok's step sleeps 3 ms instead of 1
            path = repo / "tests" / "fake_adapters.py"
            path.write_text(path.read_text().replace("    step_s = 0.001\n", "    step_s = 0.003\n", 1))
        else:
            (repo / f"note{i}.txt").write_text(f"commit {i}\n")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", f"commit {i}")
    return repo


def test_find_names_the_commit_that_made_a_step_slower(tmp_path, fake_adapters):
    repo = scratch_repo(tmp_path)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.run([sys.executable, "-m", "bench", "find", "HEAD~4", "HEAD", *FAKE, "--format", "json",
                           "--out", str(tmp_path / "out")], cwd=repo, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(repo)})
    assert proc.returncode == 1, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    culprit = _git(repo, "rev-parse", "HEAD~1")
    assert out["first_bad"] == culprit
    tested = {s["commit"]: s for s in out["steps"]}
    assert tested[_git(repo, "rev-parse", "HEAD")]["bad"]  # BAD first: slower indeed
    assert tested[culprit]["bad"] and tested[culprit]["ratio"] > 2
    assert len(out["steps"]) <= 3  # BAD, then a binary search over 4 commits
    assert "rnnbench-ab-" not in _git(repo, "worktree", "list")  # every worktree removed


def test_bad_revisions_exit_2_before_any_work(tmp_path, capsys):
    from bench.cli.main import main

    out = tmp_path / "out"
    for argv, fragment in ((["HEAD", "HEAD~1"], "is not an ancestor of BAD"), (["nosuch", "HEAD"], "revision 'nosuch' does not exist"),
                           (["HEAD", "HEAD"], "are the same commit")):
        assert main(["find", *argv, "--out", str(out)]) == 2
        assert fragment in capsys.readouterr().err
    assert not out.exists()
