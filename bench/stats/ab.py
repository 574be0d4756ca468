"""`python -m bench ab BASE [HEAD]`: two versions measured side by side in one job, then judged.

A version is a checkout of rnnbench (a git revision, checked out into a temporary worktree; HEAD
defaults to the working tree) run by a Python interpreter (`--base-python`, `--python`; default:
this one), so the same command gates a code change (`ab HEAD~1`) and a framework upgrade (two
virtual environments). Each side plans its own cases with its own code (`bench plan --format
json`), so each measures what its version means by the matrix; cases are matched by case_id.

Every case runs as K fresh processes per side, in rounds, paired by round. Two schedules:

- `pair` (the default): a round's base and head processes of a case run at the same time, both
  pinned to the same CPU core, so they share it half and half and every slow phase of that core (on
  the CI VM: phases of seconds in which the core runs 1.3 to 1.9 times slower, from contention on its
  physical core) hits both alike and cancels out of their ratio. Pairs of different cases run on
  different cores at once. Each process runs single-threaded.
- `sequential`: one process at a time, base then head or head then base, alternating by round and
  case (A B B A ...), so slow drift cancels; the right schedule on a quiet, dedicated machine.

The statistics are between processes (bench/stats/processes.py), paired by round: the median of the
per-round ratios of process medians (head / base), a bootstrap interval over rounds (and steps within
processes), and a paired t-test on log process medians; the noise is the spread of the per-round ratios.
docs/measurements.md ("The gate") has the A/A and injected-slowdown measurements behind the defaults.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from bench.core.errors import BenchInputError
from bench.core.status import Status, is_timed
from bench.execution.executors.local import REPO_ROOT, LocalProcessExecutor
from bench.execution.jobs import BARRIER_VAR, Job
from bench.execution.worker import PROTOCOL
from bench.stats.compare import Comparison, compare_process_steps


@dataclass(frozen=True)
class Side:
    name: str  # "base" or "head"
    label: str  # what the reader should see, e.g. "HEAD~1 (3d4bdfe)" or "working tree"
    root: Path  # the checkout whose code runs
    python: str


SCHEDULES = ("pair", "sequential")
CPUS_VAR = "RNNBENCH_CPUS"  # the worker pins itself to these CPUs before anything else (bench/execution/worker.py)


@dataclass
class SideCase:
    job: Job
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)  # round -> that process's record

    def in_rounds(self) -> list[dict[str, Any]]:
        return [self.rows[r] for r in sorted(self.rows)]


@dataclass
class AbCase:
    case_id: str
    base: SideCase
    head: SideCase

    def steps(self, side: str) -> list[np.ndarray]:
        from bench.stats.compare import timed_steps

        return [timed_steps(r) for r in getattr(self, side).in_rounds()]


def _git(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def resolve_revision(rev: str) -> str:
    """The commit a revision names; BenchInputError naming the revision if there is none."""
    out = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if out.returncode != 0:
        raise BenchInputError(
            f"revision {rev!r} does not exist in this repository; give a commit, branch or tag that "
            "`git rev-parse` knows (e.g. HEAD~1, main, a commit id), or compare Python environments "
            "with --base-python/--python"
        )
    return out.stdout.strip()


def is_ancestor(older: str, newer: str) -> bool:
    return _git("merge-base", "--is-ancestor", older, newer).returncode == 0


def first_parent_path(good: str, bad: str) -> list[str]:
    """The commits after `good` up to `bad` along bad's first parents, oldest first (what a branch
    merged, one commit per merge)."""
    out = _git("rev-list", "--first-parent", "--reverse", f"{good}..{bad}")
    return out.stdout.split()


def default_branch() -> str:
    """The branch a pull request merges into: origin's HEAD where a clone knows it, else main or master."""
    out = _git("symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD")
    if out.returncode == 0 and out.stdout.strip():
        return out.stdout.strip()
    for name in ("main", "master"):
        if _git("rev-parse", "--verify", "--quiet", f"refs/heads/{name}").returncode == 0:
            return name
    raise BenchInputError("merge-base: this repository has no default branch (no origin/HEAD, main or master); "
                          "name one: merge-base:BRANCH")


def resolve_base(text: str, head_commit: str | None = None) -> tuple[str, str]:
    """(commit, label) of the base revision; `merge-base[:BRANCH]` is the merge base of the head (HEAD for
    the working tree) with BRANCH, default the default branch: what a pull request changes."""
    if text != "merge-base" and not text.startswith("merge-base:"):
        commit = resolve_revision(text)
        return commit, f"{text} ({commit[:9]})"
    branch = text.partition(":")[2] or default_branch()
    branch_commit = resolve_revision(branch)
    out = _git("merge-base", head_commit or "HEAD", branch_commit)
    if out.returncode != 0 or not out.stdout.strip():
        raise BenchInputError(f"{text}: {branch!r} and {'the head' if head_commit else 'HEAD'} have no common ancestor")
    commit = out.stdout.strip()
    return commit, f"merge-base with {branch} ({commit[:9]})"


def check_python(path: str, option: str) -> str:
    exe = shutil.which(path) if os.sep not in path else path
    if not exe or not os.path.isfile(exe) or not os.access(exe, os.X_OK):
        raise BenchInputError(f"{option} {path!r}: no such executable; give the python of a virtual environment, "
                              "e.g. .venv-torch214/bin/python")
    probe = subprocess.run([exe, "-c", "import sys; print(sys.version_info[0])"], capture_output=True, text=True,
                           timeout=60)
    if probe.returncode != 0 or probe.stdout.strip() != "3":
        raise BenchInputError(f"{option} {path!r} is not a working Python 3 interpreter")
    return exe


def remove_stale_worktrees() -> list[str]:
    """Worktrees an earlier `ab` left behind when it was killed outright (SIGKILL runs no cleanup):
    each temporary directory names its owner's pid; those whose owner is gone are removed."""
    out = _git("worktree", "list", "--porcelain").stdout
    removed = []
    for line in out.splitlines():
        if not line.startswith("worktree ") or "rnnbench-ab-" not in line:
            continue
        path = Path(line.split(" ", 1)[1])
        owner = path.parent / "owner.pid"
        try:
            pid = int(owner.read_text())
            os.kill(pid, 0)
            continue  # its ab is still running
        except (OSError, ValueError):
            pass
        _git("worktree", "remove", "--force", str(path))
        shutil.rmtree(path.parent, ignore_errors=True)
        removed.append(str(path))
    _git("worktree", "prune")
    return removed


@contextlib.contextmanager
def worktrees() -> Iterator[Callable[[str, str], Path]]:
    """Check revisions out into temporary worktrees; all are removed on exit, Ctrl-C included (and
    by the next `ab` if this one was killed outright)."""
    remove_stale_worktrees()
    made: list[Path] = []
    tmp = Path(tempfile.mkdtemp(prefix="rnnbench-ab-"))
    (tmp / "owner.pid").write_text(str(os.getpid()))

    def add(name: str, commit: str) -> Path:
        path = tmp / name
        out = _git("worktree", "add", "--detach", "--force", str(path), commit)
        if out.returncode != 0:
            raise BenchInputError(f"cannot check out {commit[:12]} into a worktree: {out.stderr.strip()}")
        made.append(path)
        return path

    try:
        yield add
    finally:
        for path in made:
            _git("worktree", "remove", "--force", str(path))
        _git("worktree", "prune")
        shutil.rmtree(tmp, ignore_errors=True)


def plan_side(side: Side, case_args: list[str]) -> dict[str, Any]:
    """The side's own jobs for the matrix (`bench plan --format json` run by that checkout and python)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(side.root), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([side.python, "-m", "bench", "plan", *case_args, "--format", "json"], cwd=side.root,
                         capture_output=True, text=True, env=env, timeout=600)
    tail = "\n".join(out.stderr.strip().splitlines()[-6:])
    if out.returncode != 0:
        if "invalid choice: 'plan'" in out.stderr:
            tail = "that version predates `bench plan` (and so `bench ab`); choose a later revision"
        raise BenchInputError(f"the {side.name} side ({side.label}, {side.python}) cannot plan the cases:\n{tail}")
    try:
        plan = json.loads(out.stdout)
    except ValueError as exc:
        raise BenchInputError(f"the {side.name} side ({side.label}) printed no plan: {exc}") from exc
    if plan.get("protocol") != PROTOCOL:
        raise BenchInputError(f"the {side.name} side ({side.label}) speaks worker protocol {plan.get('protocol')}, "
                              f"this one {PROTOCOL}; compare revisions of the same protocol")
    unusable = {a: v["why"] for a, v in plan.get("adapters", {}).items() if not v["usable"]}
    if unusable:
        raise BenchInputError(f"the {side.name} side ({side.label}, {side.python}) cannot run adapter(s): "
                              + "; ".join(f"{a}: {why}" for a, why in unusable.items()))
    return plan


def pair_cases(base_plan: dict, head_plan: dict) -> tuple[list[AbCase], list[str], list[str]]:
    """Cases both sides plan (in head's order), and the case ids only one side has."""
    base_jobs = {j["key"]: Job.from_dict(j) for j in base_plan["jobs"]}
    head_jobs = {j["key"]: Job.from_dict(j) for j in head_plan["jobs"]}
    both = [AbCase(k, SideCase(base_jobs[k]), SideCase(head_jobs[k])) for k in head_jobs if k in base_jobs]
    return both, [k for k in base_jobs if k not in head_jobs], [k for k in head_jobs if k not in base_jobs]


def schedule(rounds: int, n_cases: int) -> list[tuple[int, int, str]]:
    """(round, case index, side) in the order they run: per round and case, base-head or head-base,
    alternating with the round and the case, so that any linear drift adds as much to each side."""
    return ordered([(r, i) for r in range(rounds) for i in range(n_cases)])


def ordered(work: list[tuple[int, int]]) -> list[tuple[int, int, str]]:
    """(round, case index, side) for each (round, case) of `work`, the sides alternating as in schedule()."""
    order = []
    for r, i in work:
        first, second = ("base", "head") if (r + i) % 2 == 0 else ("head", "base")
        order += [(r, i, first), (r, i, second)]
    return order


def _job(case: AbCase, side: str, r: int, ab_id: str, cpu: int | None) -> Job:
    job = getattr(case, side).job
    # A pair: pinned to one core, and held at the start barrier until both are built, so neither
    # trains alone while the other is still importing its framework.
    env = {**job.env, **({CPUS_VAR: str(cpu), BARRIER_VAR: "1"} if cpu is not None else {})}
    return Job(job.kind, f"{job.key}#{side}{r}", {**job.payload, "run_id": f"{ab_id}-{side}", "repeat": r}, env,
               job.timeout_s, job.device)


def _row(case: AbCase, result) -> dict[str, Any]:
    row = (result.payload or {}).get("record") or {
        "case_id": case.case_id, "status": Status.TIMEOUT.value if result.timed_out else Status.FAILED.value,
        "error": result.failure or result.log[-2000:], "step_times_ms": [], "warmup_steps": 0}
    row["wall_time_s"] = result.wall_time_s
    return row


def run_ab(sides: dict[str, Side], cases: list[AbCase], rounds: int, ab_id: str, schedule_kind: str = "pair",
           cpus: list[int] | None = None, on_process: Callable[[int, int, str, dict], None] | None = None,
           work: list[tuple[int, int]] | None = None) -> None:
    """Run every scheduled process (`work`: the (round, case index) pairs to run; default every case in
    rounds 0..rounds-1); each record goes to its case, side and round."""
    work = [(r, i) for r in range(rounds) for i in range(len(cases))] if work is None else work
    from concurrent.futures import FIRST_COMPLETED, wait

    executors = {name: LocalProcessExecutor(python=s.python, root=s.root, parallel=2 * len(cpus or [0]))
                 for name, s in sides.items()}

    def done(r: int, i: int, side: str, result) -> None:
        row = _row(cases[i], result)
        getattr(cases[i], side).rows[r] = row
        if on_process:
            on_process(r, i, side, row)

    try:
        if schedule_kind == "sequential":
            for r, i, side in ordered(work):
                done(r, i, side, executors[side].submit(_job(cases[i], side, r, ab_id, None)).result())
            return
        pending = list(work)
        free, running = list(cpus or [0]), {}
        while pending or running:
            while pending and free:  # a pair per free core: base and head together, pinned to it
                (r, i), cpu = pending.pop(0), free.pop(0)
                _start_pair(executors, cases[i], r, i, ab_id, cpu, running)
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                r, i, side, cpu, pair = running.pop(future)
                pair.ended(side)
                done(r, i, side, future.result())
                if not any(v[:2] == (r, i) for v in running.values()):
                    free.append(cpu)  # both processes of the pair are done: the core is free
    except BaseException:
        for ex in executors.values():
            ex.cancel_all()
        raise


class _Pair:
    """The start barrier of a pair: both released once both are built, or the survivor at once
    when its partner ended early (a crash must not leave the other waiting)."""

    def __init__(self, executors: dict) -> None:
        import threading

        self.executors, self.futures, self.ready = executors, {}, set()
        self.lock = threading.Lock()

    def is_ready(self, side: str) -> None:
        with self.lock:
            self.ready.add(side)
        self.release_if_ready()

    def release_if_ready(self) -> None:
        with self.lock:
            go = self.ready == {"base", "head"} and len(self.futures) == 2
        if go:
            for s, f in self.futures.items():
                self.executors[s].release(f)

    def ended(self, side: str) -> None:
        for s, f in self.futures.items():
            if s != side:
                self.executors[s].release(f)


def _start_pair(executors: dict, case: AbCase, r: int, i: int, ab_id: str, cpu: int, running: dict) -> None:
    pair = _Pair(executors)
    order = ("base", "head") if (r + i) % 2 == 0 else ("head", "base")  # who is started first alternates
    for side in order:
        future = executors[side].submit(_job(case, side, r, ab_id, cpu), on_ready=lambda s=side: pair.is_ready(s))
        pair.futures[side] = future
        running[future] = (r, i, side, cpu, pair)
    pair.release_if_ready()  # in case both were ready before the second future was known


def run_adaptive(sides: dict[str, Side], cases: list[AbCase], rule, ab_id: str, schedule_kind: str = "pair",
                 cpus: list[int] | None = None, on_process: Callable[[int, int, str, dict], None] | None = None,
                 on_round: Callable[[int, dict[str, str]], None] | None = None) -> dict[str, str]:
    """Every case for rule.min_rounds rounds, then one more round at a time for the cases whose answer is
    still open (bench/stats/sequential.py), up to rule.max_rounds; returns each case's last state."""
    states = {c.case_id: "open" for c in cases}
    r = 0
    while True:
        todo = [i for i, c in enumerate(cases) if states[c.case_id] == "open"]
        rounds = range(r, rule.min_rounds) if r < rule.min_rounds else range(r, r + 1)
        run_ab(sides, cases, 0, ab_id, schedule_kind, cpus, on_process, work=[(k, i) for k in rounds for i in todo])
        r = rounds[-1] + 1
        for i in todo:
            states[cases[i].case_id] = state(cases[i], rule)
        if on_round:
            on_round(r, states)
        if "open" not in states.values():
            return states


def state(case: AbCase, rule) -> str:
    """The sequential rule's state of a case; a process that failed on either side decides it (judge says how)."""
    from bench.stats.sequential import log_ratios

    if any(not is_timed(r["status"]) for side in (case.base, case.head) for r in side.in_rounds()):
        return "done"
    base, head = case.steps("base"), case.steps("head")
    if any(s.size < 3 for s in base + head):
        return "done"
    return rule.decide(log_ratios(base, head))


def judge(case: AbCase, pct: float, alpha: float, cv_limit: float, state: str | None = None) -> Comparison:
    """The case's verdict over all its rounds (failed processes decide first). A case that used every
    round still open (`state` 'done') and reads slower than the threshold without reaching significance is
    `inconclusive`, not `unchanged`: it was neither cleared nor convicted, and the reader should know."""
    b_bad = [r["status"] for r in case.base.in_rounds() if not is_timed(r["status"])]
    h_bad = [r["status"] for r in case.head.in_rounds() if not is_timed(r["status"])]
    if h_bad and not b_bad:
        return Comparison(case.case_id, "status", "regression", note=f"{len(h_bad)} head process(es) {h_bad[0]}, base ok")
    if h_bad or b_bad:
        return Comparison(case.case_id, "status", "inconclusive",
                          note=f"base: {len(b_bad)} process(es) not ok; head: {len(h_bad)} not ok")
    result = compare_process_steps(case.case_id, case.steps("base"), case.steps("head"), pct, True, alpha, cv_limit)
    if state == "done" and result.verdict == "unchanged" and result.ratio and result.ratio > 1 + pct / 100:
        return replace(result, verdict="inconclusive", note=(
            f"still open after {len(case.base.rows)} rounds: {100 * (result.ratio - 1):+.1f}% but p = "
            f"{result.p_value:.2g}, not below {alpha:.2g}; rerun with more --max-rounds to settle it"))
    return result


def new_ab_id() -> str:
    return datetime.now(timezone.utc).strftime("ab-%Y%m%d-%H%M%S")


def save(out_dir: Path, sides: dict[str, Side], cases: list[AbCase], results: list[Comparison], extra: dict) -> Path:
    """ab.json: the sides, every process's record and the verdicts (the raw data behind the table)."""
    from bench.results.store import atomic_write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "ab.json", {
        "sides": {k: {"label": s.label, "root": str(s.root), "python": s.python} for k, s in sides.items()},
        "cases": {c.case_id: {"base": c.base.in_rounds(), "head": c.head.in_rounds()} for c in cases},
        "comparisons": [r.__dict__ for r in results],
        "finished": time.time(),
        **extra,
    })
    return out_dir / "ab.json"


def describe_python(python: str) -> str:
    return python if python != sys.executable else "this python"
