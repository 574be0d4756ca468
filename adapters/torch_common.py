"""PyTorch settings and read-backs that every torch-based adapter shares (torch, torch-compile, Keras on
the torch backend): TF32 flags, cuDNN policy, and which aten RNN kernel actually ran.
"""

from __future__ import annotations

import torch


def set_torch_tf32(on: bool) -> None:
    """TF32 for float32 matmuls and cuDNN (conv and RNN) on or off, with the API of the installed torch.

    PyTorch's own defaults disagree with each other (matmul off, cuDNN on) and with TensorFlow's (on):
    rnnbench sets them all, so a precision means the same thing in every framework.
    """
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # torch >= 2.9; never mix with the old flags
        mode = "tf32" if on else "ieee"
        torch.backends.cuda.matmul.fp32_precision = mode
        torch.backends.cudnn.conv.fp32_precision = mode
        torch.backends.cudnn.rnn.fp32_precision = mode
    else:
        torch.backends.cuda.matmul.allow_tf32 = on
        torch.backends.cudnn.allow_tf32 = on


def torch_tf32_state() -> str:
    """The TF32 settings in force, read back from torch (not the request)."""
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        return (f"matmul {torch.backends.cuda.matmul.fp32_precision}, "
                f"cudnn rnn {torch.backends.cudnn.rnn.fp32_precision}")
    return (f"matmul tf32 {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}, "
            f"cudnn tf32 {'on' if torch.backends.cudnn.allow_tf32 else 'off'}")


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
