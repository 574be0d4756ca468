"""Analytic training FLOPs of one step, for achieved FLOP/s.

Counted: the matrix multiplies, which dominate a recurrent step. For each layer l, each
direction and each timestep, a cell with G gates (RNN 1, GRU 3, LSTM 4) computes
    G x (x_t @ W_ih  +  h_{t-1} @ W_hh)   ->   2 * G * (in_l * H_l + H_l * H_l) FLOPs per example,
and the head adds 2 * in_head * classes. Training costs about 3x the forward pass (the backward
pass computes gradients for both the inputs and the weights: 2x forward), so

    train_flops_per_step = 3 * batch * (T * sum_{l,dir} 2 * G * (in_l * H_l + H_l^2) + 2 * in_head * C).

Not counted: element-wise gate math, the loss, and the optimizer (O(params) per step), all small
next to the matmuls for H >= 32; the figure is therefore a slight undercount, the usual
convention (as in nanoGPT's and PaLM's MFU estimates).
"""

from __future__ import annotations

from bench.core.columns import columns
from bench.core.specs import GATES, ModelSpec

COLUMNS = columns(
    "what ran",
    ("train_gflop_per_step", "float", "analytic training GFLOP of one step (this module's formula)", {"unit": "GFLOP", "fmt": ".3g"}),
    ("achieved_gflops", "float", "train_gflop_per_step at the median step time", {"unit": "GFLOP/s", "fmt": ".1f", "better": "higher"}),
    ("pct_of_sgemm", "float", "achieved_gflops as a share of this machine's float32 matmul speed (the run's calibration, on the CPU)", {"unit": "%", "fmt": ".1f", "better": "higher"}),
    ("pct_of_sgemm_reason", "str", "why pct_of_sgemm is empty (a GPU case: the calibration is the CPU's)"),
)


def forward_flops_per_example(model: ModelSpec) -> int:
    dirs = 2 if model.bidirectional else 1
    total, in_size = 0, model.input_size
    for h in model.units:
        total += dirs * model.timesteps * 2 * GATES[model.cell] * (in_size * h + h * h)
        in_size = dirs * h
    return total + 2 * in_size * model.num_classes


def train_flops_per_step(model: ModelSpec, batch_size: int) -> int:
    return 3 * batch_size * forward_flops_per_example(model)


def sgemm_share(achieved_gflops: float, sgemm_gflops: float | None, on_gpu: bool) -> dict[str, float | str | None]:
    """pct_of_sgemm, or why there is none. The run's SGEMM calibration runs on the CPU (NumPy), so it
    says nothing about a GPU case's speed: such a row gets a reason, not a share of the wrong device."""
    if on_gpu:
        return {"pct_of_sgemm": None, "pct_of_sgemm_reason": "a GPU case: the run's SGEMM calibration is the CPU's"}
    if not sgemm_gflops or achieved_gflops != achieved_gflops:
        return {"pct_of_sgemm": None, "pct_of_sgemm_reason": "no SGEMM calibration or no timed steps"}
    return {"pct_of_sgemm": 100 * achieved_gflops / sgemm_gflops}
