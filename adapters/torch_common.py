"""PyTorch settings and read-backs that every torch-based adapter shares (torch, torch-compile, Keras on
the torch backend): TF32 flags, cuDNN policy, and which aten RNN kernel actually ran.
"""

from __future__ import annotations

import torch


def set_torch_tf32(on: bool) -> None:
    """TF32 for float32 matmuls and cuDNN (conv and RNN) on or off, the same for every reader.

    PyTorch's own defaults disagree with each other (matmul off, cuDNN on) and with TensorFlow's (on):
    rnnbench sets them all, so a precision means the same thing in every framework. It sets them
    through the global API (`torch.set_float32_matmul_precision`, `torch.backends.cudnn.allow_tf32`),
    which keeps the legacy and the new per-backend readers consistent. Setting only the new
    `fp32_precision` attributes (torch >= 2.9) makes every legacy reader raise "mix of the legacy and new
    APIs" (checked on CPU with torch 2.13.0 and 2.14.1: `torch.get_float32_matmul_precision()` after
    matmul "tf32", `torch.backends.cudnn.allow_tf32` after cudnn "ieee"), and Inductor and other
    libraries still read the legacy values (pytorch issues 166387, 196728).
    """
    torch.set_float32_matmul_precision("high" if on else "highest")  # "high": TF32 matmuls
    torch.backends.cudnn.allow_tf32 = on


def torch_tf32_state() -> str:
    """The TF32 settings in force, read back from torch (not the request), through the legacy readers
    that the new API's users (Inductor among them) also call: they must not raise."""
    matmul = torch.get_float32_matmul_precision()  # highest = IEEE float32, high = TF32
    return (f"matmul {'tf32' if matmul == 'high' else 'ieee' if matmul == 'highest' else matmul} "
            f"(float32_matmul_precision {matmul}), cudnn tf32 {'on' if torch.backends.cudnn.allow_tf32 else 'off'}")


def torch_kernel_policy() -> str:
    return (f"cudnn.benchmark={torch.backends.cudnn.benchmark}, "
            f"cudnn.deterministic={torch.backends.cudnn.deterministic}")


def profiled_kernel_path(run, gpu: bool) -> str:
    """Read off the profiler which aten RNN implementation `run()` actually executed."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    with profile(activities=activities) as prof:
        run()
    names = {e.key for e in prof.key_averages()}
    if any("_cudnn_rnn" in n for n in names):
        return "cudnn (aten::_cudnn_rnn)"
    if any("mkldnn_rnn" in n for n in names):
        return "onednn (aten::mkldnn_rnn_layer)"
    cells = sorted(n for n in names if n in ("aten::rnn_tanh", "aten::rnn_relu", "aten::gru", "aten::lstm"))
    if cells:
        return "generic step loop (" + ", ".join(cells) + ", one matmul pair per timestep)"
    if any(n.startswith(("Torch-Compiled Region", "CompiledFunction")) for n in names):
        return "compiled graph (inductor kernels, no aten RNN op)"
    return "generic step loop (matmul and element-wise ops per timestep)"
