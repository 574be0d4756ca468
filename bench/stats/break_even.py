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
Only two cases of the same model, batch, dataset, seed, precision and device are paired, both ok;
with --repeat the medians over processes are used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

import adapters

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


def break_even_steps(first_c_ms: float, median_c_ms: float, first_e_ms: float, median_e_ms: float) -> int | None:
    """The first n at which n compiled steps cost no more than n eager ones; None if that never happens."""
    extra = first_c_ms - first_e_ms
    if extra <= 0:
        return 1 if median_c_ms <= median_e_ms else None  # cheaper from the start, or only for a while
    gain = median_e_ms - median_c_ms
    if gain <= 0:
        return None
    return 1 + math.ceil(extra / gain)


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
    ok = df[df["status"] == "ok"].copy()
    if ok.empty:
        return []
    ok["model_key"] = ok["case_id"].map(model_key)
    ok["_label"] = labels.loc[ok.index] if labels is not None else ok["model_key"]
    ok["_jit"] = ok["jit_compile"].fillna("auto") if "jit_compile" in ok else "auto"
    ok["_mode"] = ok["compile_mode"].fillna("") if "compile_mode" in ok else ""
    per = ok.groupby(["adapter", "_jit", *PAIR_COLUMNS], sort=False, dropna=False).agg(
        first=("first_step_ms", "median"), median=("step_time_ms_median", "median"), label=("_label", "first"),
        mode=("_mode", "first"))
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
            out.append(BreakEven(
                model=row["label"], compiled=variant(adapter, jit), eager=variant(twin_adapter, twin_jit),
                compile_s=(row["first"] - row["median"]) / 1000.0,
                gain_ms=float(twin["median"] - row["median"]),
                steps=break_even_steps(row["first"], row["median"], twin["first"], twin["median"]),
            ))
    return out


def describe(b: BreakEven) -> str:
    """One model's break-even in words, e.g. 'lstm-uni-32x2 after 1,234 steps (compile 12.3 s, 0.80 ms/step faster)'."""
    speed = f"{abs(b.gain_ms):.2f} ms/step {'faster' if b.gain_ms >= 0 else 'slower'}"
    when = "never" if b.steps is None else f"after {b.steps:,} step{'s' if b.steps != 1 else ''}"
    return f"{b.model} {when} (compile {b.compile_s:.1f} s, {speed})"
