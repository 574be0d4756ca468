"""A results history: every saved run under the given directories as one table of points, one per
(case, machine, commit or framework version, run), ordered by commit date or by version, never mixing
machines.

Runs are found by their files (`results.parquet` beside a `meta.json`, at any depth: `results/runs/`,
the run directories a CI job keeps as artifacts, a single run) and `bench export --format
pytest-benchmark` files (they carry their commit, machine and every step). DuckDB reads all the parquet
files in one query, whatever their schema version (`union_by_name`), and takes each case's median step
time over its processes; meta.json says on what machine and at what commit each run ran.

A point's machine fingerprint is what makes step times comparable: CPU model and cores, GPUs, the
threads every framework was given, the precision and the device asked for. Points of different
fingerprints are different series.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import subprocess
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.errors import BenchInputError
from bench.results.store import META_FILE, PARQUET_FILE

POINT_COLUMNS = ["case_id", "adapter", "fingerprint", "machine", "commit", "commit_date", "run_id", "run_time",
                 "matrix", "step_time_ms", "processes", "source", "framework_version", "packages"]
# How a history is ordered and what names its points: by commit (date), by the case's own framework version
# (a framework upgrade at one commit), or by one package's version (e.g. numpy under every framework).
ORDERS = ("commit", "version", "version:PKG")


def fingerprint(cpu_model: Any, cpu_cores: Any, gpus: Sequence[str], threads: Any, precision: Any,
                device: Any) -> tuple[str, str]:
    """(a short id, the words) of the machine and settings a step time depends on."""
    def known(v: Any) -> bool:
        return v is not None and not pd.isna(v)

    cpu = f"{cpu_model} x{int(cpu_cores)}" if known(cpu_model) and known(cpu_cores) else \
        (str(cpu_model) if known(cpu_model) else "unknown CPU")
    words = f"{cpu}; GPU {', '.join(gpus) or 'none'}; {threads} threads; {precision}; device {device}"
    return hashlib.sha256(words.encode()).hexdigest()[:10], words


def run_time(run_id: str, meta: dict[str, Any]) -> str | None:
    """When the run started (UTC, ISO), from its id (YYYYmmdd-HHMMSS-...)."""
    try:
        return datetime.strptime(run_id[:15], "%Y%m%d-%H%M%S").replace(tzinfo=timezone.utc).isoformat()
    except ValueError:
        return meta.get("datetime")


def commit_dates(commits: Sequence[str], repo: Path | None = None) -> dict[str, str]:
    """Committer dates of the commits this repository knows (older runs' meta.json has no date)."""
    known = [c for c in dict.fromkeys(commits) if c]
    if not known:
        return {}
    out = subprocess.run(["git", "show", "-s", "--format=%H %cI", *known], cwd=repo or Path(__file__).resolve().parents[2],
                         capture_output=True, text=True, timeout=60)
    dates = {}
    for line in out.stdout.splitlines():
        commit, _, date = line.partition(" ")
        if len(commit) == 40 and date:
            dates[commit] = date
    if out.returncode != 0:  # one unknown commit fails the batch: ask one by one
        for c in known:
            if c not in dates:
                single = subprocess.run(["git", "show", "-s", "--format=%cI", c], cwd=repo or Path(__file__).resolve().parents[2],
                                        capture_output=True, text=True, timeout=30)
                if single.returncode == 0 and single.stdout.strip():
                    dates[c] = single.stdout.strip()
    return dates


def find_sources(paths: Sequence[str]) -> tuple[list[Path], list[Path]]:
    """(run directories, pytest-benchmark export files) under the given paths; BenchInputError naming the
    path when one does not exist or holds neither."""
    runs, exports = [], []
    for text in paths:
        path = Path(text)
        if not path.exists():
            raise BenchInputError(f"{text!r}: no such file or directory; give run directories, directories that "
                                  "hold runs (e.g. results/runs) or `bench export --format pytest-benchmark` files")
        if path.is_file():
            if path.name == PARQUET_FILE:
                runs.append(path.parent)
            elif path.suffix == ".json":
                exports.append(path)
            else:
                raise BenchInputError(f"{text!r} is neither a run's {PARQUET_FILE} nor an export JSON file")
            continue
        found = sorted(p.parent for p in path.rglob(PARQUET_FILE) if (p.parent / META_FILE).is_file())
        found = [r for r in found if "baselines" not in r.parts or r == path]  # committed baselines are not history
        if not found:
            raise BenchInputError(f"{text!r} holds no run (no {PARQUET_FILE} beside a {META_FILE} at any depth)")
        runs += found
    return list(dict.fromkeys(runs)), exports


def _case_medians(run_dirs: list[Path]) -> pd.DataFrame:
    """One row per (run directory, case): the median over its ok processes, by DuckDB over every parquet."""
    import duckdb

    files = [str(d / PARQUET_FILE) for d in run_dirs]
    con = duckdb.connect()
    try:
        # union_by_name fills a column that some files lack, not one that none has (older schemas)
        have = {row[0] for row in con.execute("DESCRIBE SELECT * FROM read_parquet(?, union_by_name = true)",
                                              [files]).fetchall()}
        optional = ", ".join(f"any_value({c}) AS {c}" if c in have else f"NULL AS {c}"
                             for c in ("threads", "precision", "device", "cpu_model", "cpu_cores", "framework_version"))
        return con.execute(
            f"""
            SELECT filename, case_id, any_value(adapter) AS adapter,
                   median(step_time_ms_median) FILTER (WHERE status = 'ok') AS step_time_ms,
                   count(*) FILTER (WHERE status = 'ok') AS processes, {optional}
            FROM read_parquet(?, union_by_name = true, filename = true)
            GROUP BY filename, case_id
            """,
            [files],
        ).df()
    except duckdb.Error as exc:
        raise BenchInputError(f"cannot read the runs' {PARQUET_FILE} files: {exc}") from exc
    finally:
        con.close()


def points_from_runs(run_dirs: list[Path]) -> pd.DataFrame:
    if not run_dirs:
        return pd.DataFrame(columns=POINT_COLUMNS)
    per_case = _case_medians(run_dirs)
    rows = []
    metas = {str(d / PARQUET_FILE): json.loads((d / META_FILE).read_text(encoding="utf-8")) for d in run_dirs}
    for _, r in per_case.iterrows():
        meta = metas[r["filename"]]
        env = meta.get("environment") or {}
        gpus = [g.get("name", "") for g in ((env.get("gpu") or {}).get("gpus") or [])]
        fp, words = fingerprint(env.get("cpu_model") or r["cpu_model"], env.get("cpu_cores") or r["cpu_cores"], gpus,
                                meta.get("threads", r["threads"]), r["precision"] or "fp32", r["device"])
        git = env.get("git") or {}
        run_id = meta.get("run_id") or Path(r["filename"]).parent.name
        rows.append({"case_id": r["case_id"], "adapter": r["adapter"], "fingerprint": fp, "machine": words,
                     "commit": git.get("commit"), "commit_date": git.get("commit_date"), "run_id": run_id,
                     "run_time": run_time(run_id, meta), "matrix": meta.get("matrix"),
                     "step_time_ms": r["step_time_ms"], "processes": int(r["processes"]),
                     "source": str(Path(r["filename"]).parent), "framework_version": r["framework_version"],
                     "packages": env.get("packages") or {}})
    return pd.DataFrame(rows, columns=POINT_COLUMNS)


def points_from_export(path: Path) -> pd.DataFrame:
    """A `bench export --format pytest-benchmark` file: its commit, machine and each case's median."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BenchInputError(f"{path}: not a readable JSON file ({exc})") from exc
    if isinstance(doc, list):
        raise BenchInputError(f"{path}: a github-action-benchmark file holds no commit and no machine, so it cannot "
                              "be placed in a history; export with --format pytest-benchmark, or give the run directory")
    if not isinstance(doc, dict) or "benchmarks" not in doc or "machine_info" not in doc:
        raise BenchInputError(f"{path}: not a pytest-benchmark file of `bench export` (no benchmarks, no machine_info)")
    machine, commit = doc["machine_info"], doc.get("commit_info") or {}
    rows = []
    for b in doc["benchmarks"]:
        extra = b.get("extra_info") or {}
        medians = extra.get("process_median_ms") or []
        threads, precision, device = extra.get("threads"), extra.get("precision") or "fp32", extra.get("device_asked")
        fp, words = fingerprint((machine.get("cpu") or {}).get("brand_raw"), (machine.get("cpu") or {}).get("count"),
                                machine.get("gpus") or [], threads, precision, device)
        step = float(pd.Series(medians).median()) if medians else float(b["stats"]["median"]) * 1e3
        rows.append({"case_id": b["name"], "adapter": (b.get("params") or {}).get("adapter"), "fingerprint": fp,
                     "machine": words, "commit": commit.get("id"), "commit_date": commit.get("time"),
                     "run_id": commit.get("run_id") or path.stem, "run_time": doc.get("datetime"),
                     "matrix": commit.get("matrix"), "step_time_ms": step, "processes": len(medians) or 1,
                     "source": str(path), "framework_version": (extra.get("framework") or "").partition(" ")[2] or None,
                     "packages": machine.get("packages") or {}})
    return pd.DataFrame(rows, columns=POINT_COLUMNS)


def validate_order(by: str) -> str:
    """`by` as given, or BenchInputError naming the valid choices."""
    if by in ("commit", "version") or (by.startswith("version:") and by.split(":", 1)[1].strip()):
        return by
    raise BenchInputError(f"--by {by!r}: choose one of {', '.join(ORDERS)} (e.g. version:numpy)")


def _version_key(text: str) -> tuple:
    """A sort key that orders release numbers as numbers (2.9 before 2.10), local tags (+cpu) aside."""
    from packaging.version import InvalidVersion, Version

    try:
        return (0, Version(text), "")
    except InvalidVersion:
        return (1, Version("0"), text)


def order_points(points: pd.DataFrame, by: str = "commit") -> pd.DataFrame:
    """The points in history order with a `label` naming each one: by commit date (then run time), or by
    version (the case's framework, or a package: `version:numpy`), commits and run times breaking ties.
    A point that lacks the version asked for is left out; BenchInputError when none has it."""
    validate_order(by)
    order = points.assign(_when=points["commit_date"].fillna(points["run_time"]))
    # case_id last: the cases of one run share its time, and DuckDB's GROUP BY returns them in any order
    order = order.sort_values(["_when", "run_time", "case_id"], kind="stable").drop(columns="_when")
    if by == "commit":
        return order.assign(label=order["commit"]).reset_index(drop=True)
    if by == "version":
        label = order["framework_version"]
    else:
        package = by.split(":", 1)[1].strip()
        label = order["packages"].map(lambda p: (p or {}).get(package) if isinstance(p, dict) else None)
    order = order.assign(label=label)[label.notna()]
    if order.empty:
        raise BenchInputError(f"--by {by}: no point records that version (runs record their framework's version "
                              "and, in meta.json, the versions of the packages they loaded)")
    key = order["label"].map(_version_key)
    order = order.assign(_key=key).sort_values("_key", kind="stable").drop(columns="_key")
    return order.reset_index(drop=True)


def load_history(paths: Sequence[str], matrix: str | None = None, cases: Sequence[str] = (),
                 by: str = "commit") -> pd.DataFrame:
    """Every point under `paths`, filtered by matrix and case patterns (fnmatch, e.g. 'torch/*'), in history
    order (`order_points`). BenchInputError when nothing is left, naming what was read."""
    validate_order(by)
    run_dirs, exports = find_sources(paths)
    frames = [points_from_runs(run_dirs)] + [points_from_export(p) for p in exports]
    points = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else \
        pd.DataFrame(columns=POINT_COLUMNS)
    if matrix is not None:
        points = points[points["matrix"] == matrix]
    if cases:
        points = points[points["case_id"].map(lambda c: any(fnmatch.fnmatchcase(c, p) or p == c for p in cases))]
    points = points[points["step_time_ms"].notna()]
    if points.empty:
        what = f"{len(run_dirs)} run(s) and {len(exports)} export file(s)"
        filters = " with " + " and ".join(filter(None, [f"--matrix {matrix}" if matrix else "",
                                                         f"--case {', '.join(cases)}" if cases else ""])) \
            if matrix or cases else ""
        raise BenchInputError(f"no step time to build a history from: {what} read{filters}")
    missing = points["commit_date"].isna() & points["commit"].notna()
    if missing.any():
        dates = commit_dates(points.loc[missing, "commit"].tolist())
        points.loc[missing, "commit_date"] = points.loc[missing, "commit"].map(dates)
    return order_points(points, by)


def series(points: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """One series per (case, machine fingerprint), in history order."""
    return {(c, f): g.reset_index(drop=True) for (c, f), g in points.groupby(["case_id", "fingerprint"], sort=False)}
