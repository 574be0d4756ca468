"""`python -m bench parity`: prove that every adapter builds the same model.

For each cell x direction x depth, the parent draws one set of canonical weights and one batch;
each adapter, in its own process, builds the model (dropout off), loads the weights and reports
its logits, its loss and its weights after one plain-SGD step. The parent compares every adapter
with the first one:

- forward logits: max |difference| < 1e-5 (float32, CPU);
- the loss of the step: |difference| < 1e-5;
- the weight update: max |difference| < 1e-4, compared as new - old per canonical array, and
  within 1e-3 of each array's largest update (updates are small, so the relative bound is the sharp one).

Bias bookkeeping: Keras keeps one bias per gate for SimpleRNN and LSTM, PyTorch two (b_ih and
b_hh, which are only ever added, so the forward function is the same). Under gradient descent
both PyTorch biases receive the gradient, so the sum moves twice as far per step as Keras' one
bias: the b_hh update is therefore reported, not compared, for those cells.
"""

from __future__ import annotations

import base64
import io
from dataclasses import asdict, dataclass

import numpy as np

import adapters
from bench.core.canonical import CanonicalWeights, param_difference_note
from bench.core.errors import error_tail
from bench.core.specs import ModelSpec
from bench.execution.executors.base import Executor, describe_exit
from bench.execution.executors.local import LocalProcessExecutor
from bench.execution.jobs import Job, process_env
from bench.measure.parity import parity_specs

LOGITS_TOL, LOSS_TOL, WEIGHTS_TOL, UPDATE_REL_TOL = 1e-5, 1e-5, 1e-4, 1e-3
TIMEOUT_S = 900  # one adapter's process: every spec, built and stepped once


@dataclass(frozen=True)
class ParityRow:
    spec_key: str
    cell: str
    bidirectional: bool
    units: str
    adapter: str
    reference: str
    params: int
    reference_params: int
    params_note: str
    logits_diff: float
    loss_diff: float
    weights_diff: float
    ok: bool
    note: str
    compared: bool = True  # False: one side's model is a different function (note says why); not a mismatch


def parity_job(adapter_name: str, specs: list[ModelSpec], seed: int, threads: int) -> Job:
    return Job("parity", f"parity:{adapter_name}",
               {"adapter": adapter_name, "specs": [asdict(s) for s in specs], "seed": seed, "threads": threads},
               process_env(adapter_name, "cpu", threads), TIMEOUT_S)


def read_parity_result(adapter_name: str, result) -> dict[str, np.ndarray]:
    """The arrays an adapter's parity process sent back; RuntimeError naming the adapter if none."""
    if not result.payload or "npz" not in result.payload:
        _, why = describe_exit(result, TIMEOUT_S)
        raise RuntimeError(f"parity worker for {adapter_name!r} failed: {why}\n{error_tail(result.log, 15)}")
    with np.load(io.BytesIO(base64.b64decode(result.payload["npz"]))) as f:
        return {k: f[k] for k in f.files}


MIN_UPDATE = 1e-6  # the reference's SGD step must move the weights, or comparing updates proves nothing


def compare_spec(spec: ModelSpec, ref: str, r: dict[str, np.ndarray], name: str, a: dict[str, np.ndarray]) -> ParityRow:
    """One adapter's measurements against the reference adapter's, for one spec."""
    logits = float(np.max(np.abs(a["logits"] - r["logits"])))
    loss = float(abs(a["loss"] - r["loss"]))
    both_two = bool(a["two_biases"]) and bool(r["two_biases"])
    keys = [k for k in r if k.startswith("delta/") and (both_two or not k.endswith(".b_hh"))]
    weights = max(float(np.max(np.abs(a[k] - r[k]))) for k in keys)
    moved = max(float(np.max(np.abs(r[k]))) for k in keys if ".w_" in k)
    # Updates are small (lr x gradient), so also bound the error relative to each array's update:
    # a wrong gate order or a missed gradient term fails this long before the absolute bound.
    relative = max(float(np.max(np.abs(a[k] - r[k])) / max(np.max(np.abs(r[k])), 1e-12)) for k in keys)
    ok = (logits < LOGITS_TOL and loss < LOSS_TOL and weights < WEIGHTS_TOL and relative < UPDATE_REL_TOL
          and moved > MIN_UPDATE)
    notes = []
    if not both_two:
        notes.append("b_hh update not compared: one side keeps a single bias, so the other's two biases "
                     "move twice as far per SGD step")
    if moved <= MIN_UPDATE:
        notes.append(f"the SGD step did not move the kernels (max {moved:.1e}): nothing was compared")
    p_ref, p = int(r["params"]), int(a["params"])
    keras_p, torch_p = (p_ref, p) if ref == "keras" else (p, p_ref)
    params_note = param_difference_note(spec, keras_p, torch_p) if {ref, name} == {"keras", "torch"} else ""
    return ParityRow(spec_label(spec), spec.cell, spec.bidirectional, ",".join(map(str, spec.units)), name, ref, p, p_ref,
                     params_note, logits, loss, weights, ok, "; ".join(notes))


def spec_label(spec: ModelSpec) -> str:
    """The model's key, with its input shape where it is not 28 timesteps of 28 features."""
    shape = (spec.timesteps, spec.input_size)
    return spec.key if shape == (28, 28) else f"{spec.key} t{shape[0]}x{shape[1]}"


def spec_arrays(arrays: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
    """One spec's measurements out of an adapter's parity result (keys are prefixed `i/`)."""
    prefix = f"{i}/"
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def compare(specs: list[ModelSpec], results: dict[str, dict[str, np.ndarray]]) -> list[ParityRow]:
    """Every adapter against the first one that measured the spec (adapters whose model is a
    different function for a spec measured nothing for it, and get a 'not compared' row)."""
    names = list(results)
    rows = []
    for i, spec in enumerate(specs):
        per = {n: spec_arrays(results[n], i) for n in names}
        measured = [n for n in names if per[n]]
        ref = measured[0] if measured else names[0]
        for n in names:
            if n == ref:
                continue
            rows.append(compare_spec(spec, ref, per[ref], n, per[n]) if n in measured else _not_compared(spec, n, ref))
    return rows


def _not_compared(spec: ModelSpec, name: str, ref: str) -> ParityRow:
    reasons = [r for r in (adapters.get_info(n).noncanonical_reason(spec) for n in (name, ref)) if r]
    nan = float("nan")
    return ParityRow(spec_label(spec), spec.cell, spec.bidirectional, ",".join(map(str, spec.units)), name, ref, -1, -1,
                     "", nan, nan, nan, True, "not compared: " + "; ".join(reasons), compared=False)


def measure_adapters(adapter_names: list[str], specs: list[ModelSpec], seed: int, threads: int,
                     executor: Executor | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Each adapter's parity measurements, each in its own process through the executor (a timeout
    kills its process group)."""
    executor = executor or LocalProcessExecutor()
    results = {}
    try:
        for name in adapter_names:
            future = executor.submit(parity_job(name, specs, seed, threads))
            results[name] = read_parity_result(name, future.result())
    except BaseException:
        executor.cancel_all()
        raise
    return results


def run_parity(adapter_names: list[str], seed: int, threads: int, executor: Executor | None = None) -> list[ParityRow]:
    """Every parity spec in every adapter, compared with the first adapter."""
    specs = parity_specs()
    return compare(specs, measure_adapters(adapter_names, specs, seed, threads, executor))


def roundtrip_ok(weights: CanonicalWeights, back: CanonicalWeights, merged: bool) -> bool:
    """get_weights(set_weights(w)) == w (with biases merged where the framework keeps one)."""
    expected = weights.merged_biases() if merged else weights
    a, b = expected.arrays(), back.arrays()
    return a.keys() == b.keys() and all(np.allclose(a[k], b[k], atol=1e-7) for k in a)
