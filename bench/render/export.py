"""Step times in the formats CI dashboards already read.

- pytest-benchmark's saved-run JSON: `pytest-benchmark compare FILE` and `--benchmark-compare`
  read it; one benchmark per case, its data the timed steps (seconds) of all its processes, the
  statistics computed by pytest-benchmark's own `Stats` so they match what it would compute.
- github-action-benchmark's `customSmallerIsBetter`: a JSON list of {name, unit, value, range, extra},
  one entry per case, value the median step time in ms (the median of process medians with
  --repeat K), range the p10-p90 spread.
"""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from bench.core.errors import BenchInputError
from bench.core.status import is_timed
from bench.stats.compare import timed_steps

FORMATS = ("pytest-benchmark", "github-action-benchmark")


def _ok_groups(df: pd.DataFrame):
    ok = df[df["status"].map(is_timed)]
    if ok.empty:
        raise BenchInputError("the run has no case with status ok: there are no step times to export")
    return ok.groupby("case_id", sort=False)


def pytest_benchmark_json(df: pd.DataFrame, meta: dict[str, Any]) -> dict[str, Any]:
    try:
        import pytest_benchmark
        from pytest_benchmark.stats import Stats
    except ImportError as exc:
        raise BenchInputError("--format pytest-benchmark needs the pytest-benchmark package: pip install pytest-benchmark") from exc
    env = meta.get("environment") or {}
    git = env.get("git") or {}
    benchmarks = []
    for case_id, rows in _ok_groups(df):
        first = rows.iloc[0]
        stats = Stats()
        for _, row in rows.iterrows():
            for ms in timed_steps(row):
                stats.update(float(ms) / 1e3)
        as_dict = stats.as_dict()
        as_dict.update(data=list(stats.data), iterations=1)
        benchmarks.append({
            "group": first["adapter"],
            "name": case_id,
            "fullname": f"rnnbench::{case_id}",
            "params": {k: _plain(first[k]) for k in ("adapter", "cell", "bidirectional", "units", "batch_size", "dataset")},
            "param": case_id,
            "extra_info": {
                "processes": len(rows),
                "process_median_ms": [_plain(v) for v in rows["step_time_ms_median"]],
                "warmup_steps": _plain(first["warmup_steps"]),
                "first_step_ms": _plain(first["first_step_ms"]),
                "framework": f"{first['framework']} {first['framework_version']}",
                "device": first["device_name"],
                # what `bench history` needs to place the point on its machine's series
                "threads": _plain(first["threads"]),
                "precision": _plain(first["precision"]),
                "device_asked": _plain(first["device"]),
            },
            "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": len(stats.data),
                        "max_time": None, "min_time": None, "warmup": True},
            "stats": as_dict,
        })
    return {
        "machine_info": {
            "node": env.get("hostname") or platform.node(),
            "processor": env.get("cpu_model"),
            "machine": platform.machine(),
            "python_implementation": platform.python_implementation(),
            "python_version": env.get("python"),
            "cpu": {"brand_raw": env.get("cpu_model"), "count": env.get("cpu_cores")},
            "packages": env.get("packages"),
            "gpus": [g.get("name") for g in ((env.get("gpu") or {}).get("gpus") or [])],
        },
        "commit_info": {"id": git.get("commit"), "dirty": git.get("dirty"), "project": "rnnbench",
                        "time": git.get("commit_date"), "run_id": meta.get("run_id"), "matrix": meta.get("matrix")},
        "benchmarks": benchmarks,
        "datetime": datetime.now(timezone.utc).isoformat(),
        "version": pytest_benchmark.__version__,
    }


def github_action_benchmark(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for case_id, rows in _ok_groups(df):
        medians = rows["step_time_ms_median"].astype(float)
        steps = np.concatenate([timed_steps(r) for _, r in rows.iterrows()])
        p10, p90 = np.percentile(steps, [10, 90])
        first = rows.iloc[0]
        out.append({
            "name": case_id,
            "unit": "ms/step",
            "value": round(float(np.median(medians)), 4),
            "range": f"{p10:.3f}-{p90:.3f} (p10-p90)",
            "extra": f"{len(rows)} process(es); {first['framework']} {first['framework_version']} on {first['device_name']}",
        })
    return out


def export(df: pd.DataFrame, meta: dict[str, Any], fmt: str) -> Any:
    if fmt == "pytest-benchmark":
        return pytest_benchmark_json(df, meta)
    if fmt == "github-action-benchmark":
        return github_action_benchmark(df)
    raise BenchInputError(f"unknown export format {fmt!r}; valid formats: {', '.join(FORMATS)}")


def _plain(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    return v.item() if hasattr(v, "item") else v
