"""Baseline vs current: a noise-aware regression gate for CI.

A step-time change is called a regression only when it is larger than the threshold AND
statistically significant (Mann-Whitney U on the raw per-step times), and neither side is too
noisy to judge (CV above a limit gives `inconclusive`). The ratio of medians comes with a
bootstrap confidence interval. Scalar fields (throughput, accuracy, memory) have one number per
run, so for them only the threshold applies.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import BenchInputError, choices_text

# field -> +1 if larger is worse (time, memory), -1 if smaller is worse (throughput, accuracy)
FIELDS = {
    "step_time_ms_median": +1,
    "throughput_samples_per_s": -1,
    "test_accuracy": -1,
    "gpu_mem_peak_mb": +1,
    "cpu_rss_peak_mb": +1,
}
# From A/A runs of the `ci` matrix on the 2-core CI machine (README, "The regression gate"): a
# case's median moved by up to 15% between identical runs, so 25% is the smallest round threshold
# that never failed an A/A comparison, with margin. Quiet machines can afford a tighter --fail.
DEFAULT_FAIL = "step_time_ms_median:25%"
DEFAULT_ALPHA = 0.01
DEFAULT_CV_LIMIT = 0.25
BOOTSTRAP_RESAMPLES = 2000
VERDICTS = ("regression", "missing", "inconclusive", "improvement", "unchanged", "new")
FAILING = ("regression", "missing")


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


def timed_steps(row: pd.Series, scale: float = 1.0) -> np.ndarray:
    """The raw step times after step 0 and the warm-up steps, divided by `scale`."""
    times = np.asarray(row["step_times_ms"], dtype=float)
    warmup = row.get("warmup_steps")
    warmup = 0 if warmup is None or pd.isna(warmup) else int(warmup)
    return times[1 + warmup :] / scale


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


def cv(x: np.ndarray) -> float:
    return float(np.std(x) / np.mean(x)) if x.size and np.mean(x) > 0 else math.inf


def compare_step_times(
    case_id: str,
    base: np.ndarray,
    cur: np.ndarray,
    pct: float,
    alpha: float = DEFAULT_ALPHA,
    cv_limit: float = DEFAULT_CV_LIMIT,
) -> Comparison:
    """Verdict on two samples of step times (already past warm-up)."""
    from scipy.stats import mannwhitneyu

    field = "step_time_ms_median"
    if base.size < 5 or cur.size < 5:
        return Comparison(case_id, field, "inconclusive", note=f"too few timed steps ({base.size} vs {cur.size}; need 5 each)")
    bm, cm = float(np.median(base)), float(np.median(cur))
    ratio = cm / bm
    lo, hi = bootstrap_ratio_ci(base, cur)
    p = float(mannwhitneyu(cur, base, alternative="two-sided").pvalue)
    noisy = max(cv(base), cv(cur))
    if noisy > cv_limit:
        return Comparison(
            case_id,
            field,
            "inconclusive",
            bm,
            cm,
            ratio,
            lo,
            hi,
            p,
            f"too noisy to decide: CV {noisy:.2f} > {cv_limit:.2f}",
        )
    limit = pct / 100
    significant = p < alpha
    if ratio > 1 + limit and significant:
        verdict = "regression"
    elif ratio < 1 - limit and significant:
        verdict = "improvement"
    else:
        verdict = "unchanged"
    return Comparison(case_id, field, verdict, bm, cm, ratio, lo, hi, p)


def compare_scalar(case_id: str, field: str, base: Any, cur: Any, pct: float) -> Comparison:
    if base is None or cur is None or pd.isna(base) or pd.isna(cur) or base == 0:
        return Comparison(case_id, field, "inconclusive", note=f"{field} not measured on both sides")
    ratio = float(cur) / float(base)
    change = (ratio - 1) * FIELDS[field]  # > 0 means worse
    limit = pct / 100
    verdict = "regression" if change > limit else "improvement" if change < -limit else "unchanged"
    return Comparison(case_id, field, verdict, float(base), float(cur), ratio)


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
    """Every case present in either run, against every threshold."""
    bscale, cscale = _scale(base_meta, normalize, "baseline"), _scale(cur_meta, normalize, "current")
    b_rows = {r["case_id"]: r for _, r in base.iterrows()}
    c_rows = {r["case_id"]: r for _, r in cur.iterrows()}
    out: list[Comparison] = []
    for case_id in list(b_rows) + [c for c in c_rows if c not in b_rows]:
        b, c = b_rows.get(case_id), c_rows.get(case_id)
        if c is None:
            out.append(Comparison(case_id, "-", "missing", note="not in current run"))
            continue
        if b is None:
            out.append(Comparison(case_id, "-", "new", note="not in baseline"))
            continue
        if b["status"] == "ok" and c["status"] != "ok":
            out.append(
                Comparison(case_id, "status", "regression", note=f"ok in baseline, {c['status']} now")
            )
            continue
        if c["status"] != "ok":
            out.append(
                Comparison(case_id, "status", "inconclusive", note=f"{b['status']} in baseline, {c['status']} now")
            )
            continue
        if b["status"] != "ok":
            out.append(
                Comparison(case_id, "status", "improvement", note=f"{b['status']} in baseline, ok now")
            )
            continue
        for t in thresholds:
            if t.field == "step_time_ms_median":
                out.append(
                    compare_step_times(case_id, timed_steps(b, bscale), timed_steps(c, cscale), t.pct, alpha, cv_limit)
                )
            else:
                out.append(compare_scalar(case_id, t.field, b[t.field], c[t.field], t.pct))
    return out


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


def gate_failed(results: list[Comparison]) -> bool:
    return any(r.verdict in FAILING for r in results)
