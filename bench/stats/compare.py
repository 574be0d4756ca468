"""Baseline vs current: a noise-aware regression gate for CI.

A step-time change is called a regression only when it is larger than the threshold AND
statistically significant, and neither side is too noisy to judge (CV above a limit gives
`inconclusive`). Two methods, named in every result:

- between processes (bench/stats/processes.py), when both runs hold K >= 3 processes of the case
  (`run --repeat K`): the ratio of the medians of process medians, a hierarchical bootstrap interval
  and Welch's t-test on log process medians. This is the method that sees small changes reliably.
- within one process (the fallback): Mann-Whitney U on the raw per-step times and a bootstrap
  interval of the ratio of medians. Steps of one process are not independent samples of the code's
  speed, so this method needs a large threshold (the default 25%) to stay quiet across processes.

Scalar fields (throughput, accuracy, memory) are judged by the threshold alone, on the median over
a case's processes; when both runs hold two seeds or more of a case (`run --seeds N`), by the threshold
and Welch's t-test over the per-seed values at the view's alpha (bench/stats/seeds.py), so a gap the
view calls noise is never a regression here. A case's seeds are one case: every seed's process is one
more process of its step time. For two versions measured side by side in one job, use `bench ab`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from bench.core.errors import BenchInputError, choices_text
from bench.core.spread import cv_or_inf
from bench.core.status import is_timed
from bench.measure.steps import timed_times
from bench.results.columns import gate_fields
from bench.stats.seeds import ALPHA as SEEDS_ALPHA
from bench.stats.seeds import per_seed, seedless_id, welch_p

BOOTSTRAP_RESAMPLES = 2000  # the bootstrap interval of the within-process fallback (one process a side)

# field -> +1 if larger is worse (time, memory), -1 if smaller is worse (throughput, accuracy)
# The gate fields: +1 where larger is worse, -1 where larger is better (declared with their columns).
FIELDS = gate_fields()
# From A/A runs of the `ci` matrix on the 2-core CI machine (docs/gate.md; docs/measurements.md): a
# case's median moved by up to 15% between identical runs, so 25% is the smallest round threshold
# that never failed an A/A comparison, with margin. Quiet machines can afford a tighter --fail.
DEFAULT_FAIL = "step_time_ms_median:25%"
DEFAULT_ALPHA = 0.01
DEFAULT_CV_LIMIT = 0.25
MIN_PROCESSES = 3  # per side, for the between-process method
VERDICTS = ("regression", "missing", "inconclusive", "improvement", "unchanged", "new")
FAILING_VERDICTS = ("regression", "missing")  # verdicts that fail the gate (statuses: core.status)
WITHIN = "Mann-Whitney U on the timed steps"


@dataclass(frozen=True)
class Threshold:
    field: str
    pct: float  # relative change, in percent, that counts as a regression

    @classmethod
    def parse(cls, text: str) -> Threshold:
        m = re.fullmatch(r"\s*([a-z0-9_]+)\s*:\s*([0-9]+(?:\.[0-9]+)?)\s*%\s*", text)
        if not m:
            raise BenchInputError(
                f"--fail {text!r}: expected FIELD:PCT%, e.g. --fail step_time_ms_median:10%; "
                f"fields: {choices_text(FIELDS)}"
            )
        field, pct = m.group(1), float(m.group(2))
        if field not in FIELDS:
            raise BenchInputError(f"--fail {text!r}: unknown field {field!r}; fields: {choices_text(FIELDS)}")
        if pct <= 0:
            raise BenchInputError(f"--fail {text!r}: the percentage must be > 0")
        return cls(field, pct)


@dataclass(frozen=True)
class Comparison:
    case_id: str
    field: str
    verdict: str
    baseline: float | None = None
    current: float | None = None
    ratio: float | None = None  # current / baseline
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    note: str = ""
    method: str = ""  # how the step-time verdict was reached


def timed_steps(row: pd.Series, scale: float = 1.0) -> np.ndarray:
    """The raw step times the record's statistics came from (after step 0 and the warm-up steps,
    without the settling steps after curve evaluations), divided by `scale`."""
    warmup = row.get("warmup_steps")
    warmup = 0 if warmup is None or pd.isna(warmup) else int(warmup)
    untimed = row.get("untimed_steps")
    untimed = () if untimed is None or (np.isscalar(untimed) and pd.isna(untimed)) else untimed  # older records: none
    return timed_times(row["step_times_ms"], warmup, untimed) / scale


def bootstrap_ratio_ci(
    base: np.ndarray, cur: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of median(cur) / median(base), resampling each side."""
    rng = np.random.default_rng(seed)
    b = np.median(rng.choice(base, (resamples, base.size)), axis=1)
    c = np.median(rng.choice(cur, (resamples, cur.size)), axis=1)
    ratios = c / b
    lo, hi = np.percentile(ratios, [50 * (1 - level), 100 - 50 * (1 - level)])
    return float(lo), float(hi)


def verdict(ratio: float, p: float, noise: float, pct: float, alpha: float, cv_limit: float) -> tuple[str, str]:
    """(verdict, note) of a step-time ratio: beyond the threshold and significant, or not."""
    if noise > cv_limit:
        return "inconclusive", f"too noisy to decide: CV {noise:.2f} > {cv_limit:.2f}"
    limit = pct / 100
    if ratio > 1 + limit and p < alpha:
        return "regression", ""
    if ratio < 1 - limit and p < alpha:
        return "improvement", ""
    return "unchanged", ""


def compare_step_times(
    case_id: str,
    base: np.ndarray,
    cur: np.ndarray,
    pct: float,
    alpha: float = DEFAULT_ALPHA,
    cv_limit: float = DEFAULT_CV_LIMIT,
) -> Comparison:
    """Verdict on two samples of step times (already past warm-up), within processes."""
    from scipy.stats import mannwhitneyu

    field = "step_time_ms_median"
    if base.size < 5 or cur.size < 5:
        return Comparison(case_id, field, "inconclusive", note=f"too few timed steps ({base.size} vs {cur.size}; need 5 each)",
                          method=WITHIN)
    bm, cm = float(np.median(base)), float(np.median(cur))
    ratio = cm / bm
    lo, hi = bootstrap_ratio_ci(base, cur)
    p = float(mannwhitneyu(cur, base, alternative="two-sided").pvalue)
    v, note = verdict(ratio, p, max(cv_or_inf(base), cv_or_inf(cur)), pct, alpha, cv_limit)
    return Comparison(case_id, field, v, bm, cm, ratio, lo, hi, p, note, WITHIN)


def compare_process_steps(case_id: str, base: list[np.ndarray], cur: list[np.ndarray], pct: float, paired: bool,
                          alpha: float = DEFAULT_ALPHA, cv_limit: float = DEFAULT_CV_LIMIT) -> Comparison:
    """Verdict on two sides given as the timed steps of each of their processes."""
    from bench.stats.processes import compare_processes, process_medians

    too_short = [s.size for s in base + cur if s.size < 3]
    if too_short:
        return Comparison(case_id, "step_time_ms_median", "inconclusive", note="a process has fewer than 3 timed steps")
    r = compare_processes(base, cur, paired)
    v, note = verdict(r.ratio, r.p_value, r.noise, pct, alpha, cv_limit)
    return Comparison(case_id, "step_time_ms_median", v, float(np.median(process_medians(base))),
                      float(np.median(process_medians(cur))), r.ratio, r.ci_low, r.ci_high, r.p_value, note, r.method)


def compare_scalar(case_id: str, field: str, base: Any, cur: Any, pct: float) -> Comparison:
    if base is None or cur is None or pd.isna(base) or pd.isna(cur) or base == 0:
        return Comparison(case_id, field, "inconclusive", note=f"{field} not measured on both sides")
    ratio = float(cur) / float(base)
    change = (ratio - 1) * FIELDS[field]  # > 0 means worse
    limit = pct / 100
    verdict = "regression" if change > limit else "improvement" if change < -limit else "unchanged"
    return Comparison(case_id, field, verdict, float(base), float(cur), ratio)


def compare_over_seeds(case_id: str, field: str, base: pd.DataFrame, cur: pd.DataFrame, pct: float) -> Comparison:
    """A scalar field over seeds: the mean per side, a regression only beyond the threshold and with
    Welch's p < the view's alpha (bench/stats/seeds.py)."""
    b, c = per_seed(base, field), per_seed(cur, field)
    if not b or not c:
        return Comparison(case_id, field, "inconclusive", note=f"{field} not measured on both sides")
    bm, cm = float(np.mean(b)), float(np.mean(c))
    if bm == 0:
        return Comparison(case_id, field, "inconclusive", note=f"{field} is 0 in the baseline")
    ratio = cm / bm
    p = welch_p(b, c)
    change = (ratio - 1) * FIELDS[field]  # > 0 means worse
    limit = pct / 100
    significant = p is not None and p < SEEDS_ALPHA
    verdict = ("regression" if change > limit else "improvement" if change < -limit else "unchanged") \
        if significant else "unchanged"
    note = "" if significant or abs(change) <= limit else f"beyond {pct:g}% but within the spread between seeds"
    return Comparison(case_id, field, verdict, bm, cm, ratio, p_value=p, note=note,
                      method=f"Welch's t-test over {len(b)} vs {len(c)} seeds, alpha {SEEDS_ALPHA:g}")


def case_groups(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """A run's rows by case, a case's seeds together (its rows are every process of every seed)."""
    return {k: g for k, g in df.groupby(df["case_id"].map(seedless_id), sort=False)}


def _shown_id(key: str, b: pd.DataFrame | None, c: pd.DataFrame | None) -> str:
    """The case id when the case has one seed in both runs, else the id with its seeds listed."""
    ids = sorted(set().union(*(set(g["case_id"]) for g in (b, c) if g is not None)))
    if len(ids) == 1:
        return ids[0]
    seeds = sorted(set().union(*(set(g["seed"]) for g in (b, c) if g is not None)))
    return key.replace("/s*", "/s" + ",".join(str(int(s)) for s in seeds), 1)


def _scale(meta: dict[str, Any], normalize: bool, side: str) -> float:
    if not normalize:
        return 1.0
    cal = (meta or {}).get("calibration") or {}
    if not cal.get("sgemm_ms"):
        raise BenchInputError(f"--normalize: the {side} run has no SGEMM calibration in its meta.json")
    return float(cal["sgemm_ms"])


def compare_runs(
    base: pd.DataFrame,
    cur: pd.DataFrame,
    thresholds: list[Threshold],
    base_meta: dict | None = None,
    cur_meta: dict | None = None,
    normalize: bool = False,
    alpha: float = DEFAULT_ALPHA,
    cv_limit: float = DEFAULT_CV_LIMIT,
) -> list[Comparison]:
    """Every case present in either run, against every threshold (a case's rows are its processes)."""
    bscale, cscale = _scale(base_meta, normalize, "baseline"), _scale(cur_meta, normalize, "current")
    b_groups, c_groups = case_groups(base), case_groups(cur)
    out: list[Comparison] = []
    for key in list(b_groups) + [c for c in c_groups if c not in b_groups]:
        b, c = b_groups.get(key), c_groups.get(key)
        case_id = _shown_id(key, b, c)
        if c is None:
            out.append(Comparison(case_id, "-", "missing", note="not in current run"))
            continue
        if b is None:
            out.append(Comparison(case_id, "-", "new", note="not in baseline"))
            continue
        b_status, c_status = _case_status(b), _case_status(c)
        if b_status == "ok" and c_status != "ok":
            out.append(Comparison(case_id, "status", "regression", note=f"ok in baseline, {c_status} now"))
            continue
        if c_status != "ok":
            out.append(Comparison(case_id, "status", "inconclusive", note=f"{b_status} in baseline, {c_status} now"))
            continue
        if b_status != "ok":
            out.append(Comparison(case_id, "status", "improvement", note=f"{b_status} in baseline, ok now"))
            continue
        on_gpu = normalize and any(g["gpu_name"].notna().any() for g in (b, c) if "gpu_name" in g)
        for t in thresholds:
            if t.field == "step_time_ms_median" and on_gpu:  # the calibration is a CPU SGEMM: no scale for a GPU
                out.append(Comparison(case_id, t.field, "inconclusive", note="ran on a GPU: --normalize scales by "
                                      "the runs' CPU SGEMM calibration, which says nothing about a GPU"))
                continue
            if t.field != "step_time_ms_median":
                if b["seed"].nunique() > 1 and c["seed"].nunique() > 1:
                    out.append(compare_over_seeds(case_id, t.field, b, c, t.pct))
                else:
                    out.append(compare_scalar(case_id, t.field, b[t.field].median(), c[t.field].median(), t.pct))
                continue
            b_steps = [timed_steps(r, bscale) for _, r in b.iterrows()]
            c_steps = [timed_steps(r, cscale) for _, r in c.iterrows()]
            if len(b_steps) >= MIN_PROCESSES and len(c_steps) >= MIN_PROCESSES:
                res = compare_process_steps(case_id, b_steps, c_steps, t.pct, False, alpha, cv_limit)
            else:  # one process (or two) per side: the steps, pooled
                res = compare_step_times(case_id, np.concatenate(b_steps), np.concatenate(c_steps), t.pct, alpha,
                                         cv_limit)
                if len(b_steps) > 1 or len(c_steps) > 1:
                    res = replace(res, method=f"{WITHIN}, pooled over {len(b_steps)} vs {len(c_steps)} processes "
                                  f"(between-process statistics need {MIN_PROCESSES} a side)")
            hot = _throttled(b, "baseline") + _throttled(c, "current")
            if hot:  # a GPU that slowed its clocks measured its cooling or power limit, not the code
                res = replace(res, verdict="inconclusive", note="GPU throttled while timed: " + "; ".join(hot))
            busy = _disturbed(b, "baseline") + _disturbed(c, "current")
            if busy:  # other processes shared the machine: the step times measured the sharing too
                res = replace(res, verdict="inconclusive", note="the machine was busy while timed: " + "; ".join(busy))
            out.append(res)
    return out


def _throttled(rows: pd.DataFrame, side: str) -> list[str]:
    if "gpu_throttled" not in rows:
        return []
    hot = rows[rows["gpu_throttled"].eq(True)]
    return [f"{side} ({', '.join(sorted(set(hot['gpu_throttle_reasons'].dropna())))})"] if len(hot) else []


def _disturbed(rows: pd.DataFrame, side: str) -> list[str]:
    if "disturbed" not in rows:
        return []
    busy = rows[rows["disturbed"].eq(True)]
    return [f"{side} ({'; '.join(sorted(set(busy['disturbed_reason'].dropna())))})"] if len(busy) else []


def _case_status(rows: pd.DataFrame) -> str:
    """A case is ok when every one of its processes timed its steps (ok, or inconclusive: learning not shown,
    which judges accuracy, not speed); else the first other status."""
    bad = [s for s in rows["status"] if not is_timed(s)]
    return bad[0] if bad else "ok"


def environment_differences(base_meta: dict, cur_meta: dict) -> list[str]:
    """Human-readable differences in what the two runs were measured on."""
    be, ce = (base_meta or {}).get("environment") or {}, (cur_meta or {}).get("environment") or {}
    diffs = []
    for key in ("cpu_model", "cpu_cores", "python"):
        if be.get(key) != ce.get(key):
            diffs.append(f"{key}: {be.get(key)!r} -> {ce.get(key)!r}")
    bp, cp = be.get("packages") or {}, ce.get("packages") or {}
    for pkg in sorted(set(bp) | set(cp)):
        if bp.get(pkg) != cp.get(pkg):
            diffs.append(f"{pkg}: {bp.get(pkg)} -> {cp.get(pkg)}")
    if (base_meta or {}).get("threads") != (cur_meta or {}).get("threads"):
        diffs.append(f"threads: {(base_meta or {}).get('threads')} -> {(cur_meta or {}).get('threads')}")
    bg, cg = (be.get("gpu") or {}).get("gpus"), (ce.get("gpu") or {}).get("gpus")
    if [g.get("name") for g in bg or []] != [g.get("name") for g in cg or []]:
        diffs.append(f"gpus: {bg} -> {cg}")
    return diffs


# What makes two step times comparable at all: the same processor and accelerators.
MACHINE_KEYS = ("cpu_model", "cpu_cores")


def machine_differences(base_meta: dict, cur_meta: dict) -> list[str]:
    """The environment differences that make step times of the two runs incomparable."""
    be, ce = (base_meta or {}).get("environment") or {}, (cur_meta or {}).get("environment") or {}
    diffs = [f"{k}: {be.get(k)!r} -> {ce.get(k)!r}" for k in MACHINE_KEYS if be.get(k) != ce.get(k)]
    bg, cg = ((e.get("gpu") or {}).get("gpus") or [] for e in (be, ce))
    if [g.get("name") for g in bg] != [g.get("name") for g in cg]:
        diffs.append(f"gpus: {[g.get('name') for g in bg]} -> {[g.get('name') for g in cg]}")
    return diffs


def mixed_machines(df: pd.DataFrame) -> str | None:
    """Says which hosts and processors one run's cases ran on, when there is more than one."""
    hosts = sorted(map(str, df["host"].dropna().unique())) if "host" in df else []
    cpus = sorted(map(str, df["cpu_model"].dropna().unique())) if "cpu_model" in df else []
    if len(hosts) > 1 or len(cpus) > 1:
        return f"{', '.join(hosts)}; {', '.join(cpus)}"
    return None


def not_comparable(results: list[Comparison], reason: str) -> list[Comparison]:
    """Timing verdicts of runs from different machines become `inconclusive` (accuracy still counts)."""
    timing = {"step_time_ms_median", "throughput_samples_per_s"}
    return [replace(r, verdict="inconclusive", note=f"other machine ({reason})")
            if r.field in timing and r.verdict in ("regression", "improvement", "unchanged") else r
            for r in results]


def gate_failed(results: list[Comparison]) -> bool:
    return any(r.verdict in FAILING_VERDICTS for r in results)
