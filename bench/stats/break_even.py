"""Compile cost and its break-even: after how many steps a compiled setup's training has cost less than
the same training uncompiled, from one run. Two kinds of pairs:

- an adapter and its eager twin (`adapters.AdapterInfo.eager`, e.g. torch-compile -> torch);
- one Keras adapter with Keras' compile switch on (or auto, where auto compiled) against the same
  adapter with it off (`run --jit-compile on,off`): XLA against tf.function on TF, jax.jit against eager
  JAX, torch.compile against eager torch on keras-torch. `compile_mode` says what each ran.

n steps cost the first step plus n - 1 steady steps (the case's median step). The compiled adapter
has paid back at the first n where

    first_c + (n - 1) * median_c <= first_e + (n - 1) * median_e,  so  n = 1 + ceil((first_c - first_e) / gain),

with gain = median_e - median_c per step; never when the compiled step is not faster. The eager twin's
own first step (allocation, kernel selection) is subtracted, which "compile time / gain" leaves in.
Only two cases of the same model, batch, dataset, seed, precision and device are paired, both timed;
with --repeat the medians over processes are used.

A break-even is a ratio of two small differences, so it comes with its interval: each side's steady step
has a 95% interval (over its processes' medians, a t-interval, where a side has 3 processes or more; else
the distribution-free interval of the median of its timed steps, from the binomial order statistics, which
knows only that process's noise), the gain's interval runs from the smaller eager bound minus the larger
compiled bound to the other way round, and the break-even's from the largest gain to the smallest. Where
the smallest gain is not positive, the upper end is "never": the run cannot tell the gain from its noise.
The compile cost (first steps) is one sample per process and enters as measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

import adapters
from bench.core.status import is_timed
from bench.stats.compare import timed_steps
from bench.stats.seeds import t_interval

# What makes two cases the same model trained the same way, apart from the adapter and its compile switch.
PAIR_COLUMNS = ("model_key", "batch_size", "dataset", "seed", "precision", "device")


def variant(adapter: str, jit_compile: str | None) -> str:
    """An adapter with its compile switch, as tables name it: 'keras', 'keras jit-on'."""
    return adapter if jit_compile in (None, "auto") or jit_compile != jit_compile else f"{adapter} jit-{jit_compile}"


def model_key(case_id: str) -> str:
    """The case id without its adapter and its jit part: what the two sides of a pair share."""
    return "/".join(p for p in case_id.split("/")[1:] if not p.startswith("jit-"))


@dataclass(frozen=True)
class BreakEven:
    model: str  # the row label it is shown under
    compiled: str
    eager: str
    compile_s: float  # the compiled first step minus its steady step
    gain_ms: float  # steady step of the eager twin minus the compiled one's (negative: compiled is slower)
    steps: int | None  # the first step count at which the compiled adapter has cost less; None: never
    gain_interval_ms: tuple[float, float] | None = None  # 95% interval of the gain, where step times were kept
    steps_interval: tuple[int | None, int | None] | None = None  # the break-even's interval; None in it: never


def break_even_steps(first_c_ms: float, median_c_ms: float, first_e_ms: float, median_e_ms: float) -> int | None:
    """The first n at which n compiled steps cost no more than n eager ones; None if that never happens."""
    extra = first_c_ms - first_e_ms
    if extra <= 0:
        return 1 if median_c_ms <= median_e_ms else None  # cheaper from the start, or only for a while
    gain = median_e_ms - median_c_ms
    if gain <= 0:
        return None
    return 1 + math.ceil(extra / gain)


def median_interval(steps_ms: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The distribution-free interval of a median: order statistics j and n - j + 1 (1-based), j the largest
    count with P(Binomial(n, 1/2) < j) <= (1 - level) / 2, so it covers at least `level`."""
    from scipy import stats

    x = np.sort(np.asarray(steps_ms, dtype=float))
    n = x.size
    j = max(1, int(stats.binom.ppf((1 - level) / 2, n, 0.5)))
    if stats.binom.cdf(j - 1, n, 0.5) > (1 - level) / 2:
        j -= 1
    if j < 1:
        return float(x[0]), float(x[-1])
    return float(x[j - 1]), float(x[n - j])


def steady_interval(rows: pd.DataFrame) -> tuple[float, float] | None:
    """95% interval of a side's steady step: over its processes' medians from 3 processes, else over the one
    process's timed steps; None where the step times were not kept."""
    if len(rows) >= 3:
        iv = t_interval(rows["step_time_ms_median"])
        return (iv.low, iv.high) if iv.half is not None else None
    if "step_times_ms" not in rows or rows["step_times_ms"].map(lambda v: v is None or len(v) == 0).any():
        return None
    steps = np.concatenate([timed_steps(r) for _, r in rows.iterrows()])
    return median_interval(steps) if steps.size >= 6 else None


def steps_interval(extra_ms: float, gain_ms: tuple[float, float]) -> tuple[int | None, int | None]:
    """The break-even's range from the gain's interval (extra: the compiled first step minus the eager one)."""
    def at(gain: float) -> int | None:
        if extra_ms <= 0:
            return 1 if gain >= 0 else None
        return 1 + math.ceil(extra_ms / gain) if gain > 0 else None

    lo, hi = at(gain_ms[1]), at(gain_ms[0])
    return lo, hi


def eager_twins() -> dict[str, str | None]:
    """Adapter name -> the adapter that runs its models eagerly (None: it compiles nothing of its own)."""
    return {name: info.eager for name, info in adapters.registry().items()}


def break_evens(df: pd.DataFrame, eager_of: Mapping[str, str | None] | None = None,
                labels: pd.Series | None = None) -> list[BreakEven]:
    """Every (compiled adapter, model) of the run whose eager twin ran the same case, in row order.

    `eager_of` maps adapter names to their eager twin (default: the adapter registry's); `labels`
    names each row's model (the view's row labels; default: the case id without its adapter)."""
    eager_of = eager_twins() if eager_of is None else eager_of
    if df.empty:
        return []
    ok = df[df["status"].map(is_timed)].copy()
    if ok.empty:
        return []
    ok["model_key"] = ok["case_id"].map(model_key)
    ok["_label"] = labels.loc[ok.index] if labels is not None else ok["model_key"]
    ok["_jit"] = ok["jit_compile"].fillna("auto") if "jit_compile" in ok else "auto"
    ok["_mode"] = ok["compile_mode"].fillna("") if "compile_mode" in ok else ""
    groups = ok.groupby(["adapter", "_jit", *PAIR_COLUMNS], sort=False, dropna=False)
    per = groups.agg(first=("first_step_ms", "median"), median=("step_time_ms_median", "median"),
                     label=("_label", "first"), mode=("_mode", "first"))
    intervals = {key: steady_interval(g) for key, g in groups}
    out = []
    for (adapter, jit, *key), row in per.iterrows():
        twins = []
        eager = eager_of.get(adapter)
        if eager and jit == "auto":
            twins.append((eager, "auto"))
        if jit != "off" and (adapter, "off", *key) in per.index and per.loc[(adapter, "off", *key)]["mode"] != row["mode"]:
            twins.append((adapter, "off"))  # the same adapter uncompiled (auto counts where it compiled)
        for twin_adapter, twin_jit in twins:
            if (twin_adapter, twin_jit, *key) not in per.index:
                continue
            twin = per.loc[(twin_adapter, twin_jit, *key)]
            if any(pd.isna(v) for v in (row["first"], row["median"], twin["first"], twin["median"])):
                continue
            mine, theirs = intervals.get((adapter, jit, *key)), intervals.get((twin_adapter, twin_jit, *key))
            gain_iv = (theirs[0] - mine[1], theirs[1] - mine[0]) if mine and theirs else None
            out.append(BreakEven(
                model=row["label"], compiled=variant(adapter, jit), eager=variant(twin_adapter, twin_jit),
                compile_s=(row["first"] - row["median"]) / 1000.0,
                gain_ms=float(twin["median"] - row["median"]),
                steps=break_even_steps(row["first"], row["median"], twin["first"], twin["median"]),
                gain_interval_ms=gain_iv,
                steps_interval=steps_interval(row["first"] - twin["first"], gain_iv) if gain_iv else None,
            ))
    return out


def describe(b: BreakEven) -> str:
    """One model's break-even in words, e.g. 'lstm-uni-32x2 after 1,234 steps (95%: 1,100 to 1,400; compile
    12.3 s, 0.80 ms/step faster)'; an interval reaching "never" says the gain is within this run's noise."""
    speed = f"{abs(b.gain_ms):.2f} ms/step {'faster' if b.gain_ms >= 0 else 'slower'}"
    when = "never" if b.steps is None else f"after {b.steps:,} step{'s' if b.steps != 1 else ''}"
    interval = ""
    if b.steps_interval is not None:
        lo, hi = b.steps_interval
        if lo is None:  # even the largest gain in the interval never pays back
            interval = "95%: never at any gain in the interval; "
        elif hi is None:
            interval = f"95%: {lo:,} steps to never, not within this run's noise; "
        elif lo != hi or lo != b.steps:
            interval = f"95%: {lo:,} to {hi:,} steps; "
    return f"{b.model} {when} ({interval}compile {b.compile_s:.1f} s, {speed})"
