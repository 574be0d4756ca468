"""Which recurrent implementation Keras ran, named from what it called (no framework import here).

The Keras adapter probes one training forward pass and records which of the backend's fused
recurrent functions the layers called (`keras.src.backend.lstm`, `gru`, `bidirectional_lstm`,
`bidirectional_gru`) and whether each ran or declined (NotImplementedError: the layer then falls back
to its generic step loop). `keras_path_from_calls` names the path from that record; the TF rules below
only explain why TF declined.

Keras 3.15's backends: TF runs LSTM and GRU through cuDNN (CudnnRNNV3) on a GPU; JAX runs LSTM (and
a bidirectional LSTM) through cuDNN via jax.experimental.rnn on a GPU, and GRU through its own
lax.scan with the input projection of every timestep hoisted out of the loop, on any device; SimpleRNN
has no fused function anywhere.

Keras 3 on TensorFlow (keras/src/layers/rnn/lstm.py and gru.py, and cudnn_ok in
keras/src/backend/tensorflow/rnn.py) uses the fused cuDNN kernel only when a GPU is available
and: activation is tanh, recurrent_activation is sigmoid, unroll is False, use_bias is True,
use_cudnn is "auto" or True, recurrent_dropout is 0, and for GRU reset_after is True. SimpleRNN
has no cuDNN path. A cuDNN layer also turns XLA off for the whole model (cuDNN ops are not XLA
compatible), so the model falls back to a plain tf.function.
"""

from __future__ import annotations

from bench.core.specs import ModelSpec

GENERIC = "generic step loop"


def keras_cudnn_blockers(model: ModelSpec, gpu: bool) -> list[str]:
    """Why Keras cannot use cuDNN for this model ([] means it does). Our layers keep Keras'
    defaults for recurrent_activation, unroll, use_bias, reset_after and recurrent_dropout, so
    only the cell, the activation and the device can fail the rules here."""
    blockers = []
    if model.cell == "rnn":
        blockers.append("SimpleRNN has no cuDNN kernel")
    if model.activation != "tanh":
        blockers.append(f"activation={model.activation!r} (cuDNN needs 'tanh')")
    if not gpu:
        blockers.append("no GPU")
    return blockers


FUSED_FUNCTIONS = ("lstm", "gru", "bidirectional_lstm", "bidirectional_gru")
_RAN = {
    ("tensorflow", "lstm"): "cudnn (fused CudnnRNNV3)",
    ("tensorflow", "gru"): "cudnn (fused CudnnRNNV3)",
    ("tensorflow", "bidirectional_lstm"): "cudnn (fused CudnnRNNV3, both directions)",
    ("tensorflow", "bidirectional_gru"): "cudnn (fused CudnnRNNV3, both directions)",
    ("jax", "lstm"): "cudnn (jax.experimental.rnn lstm)",
    ("jax", "bidirectional_lstm"): "cudnn (jax.experimental.rnn lstm, both directions)",
    ("jax", "gru"): "lax.scan GRU of Keras' jax backend (input projections hoisted out of the loop; not cuDNN)",
}


def keras_path_from_calls(calls: list[tuple[str, str]], model: ModelSpec, gpu: bool, backend: str) -> str:
    """The kernel path from what the layers called: (function, "ran" or "declined[: why]") per call.

    A bidirectional layer first tries its fused two-direction function and, when that declines, each
    direction's own; so a declined bidirectional attempt decides nothing, the calls after it do."""
    deciding = [(fn, out) for fn, out in calls if out == "ran" or not fn.startswith("bidirectional_")]
    ran = list(dict.fromkeys(_RAN.get((backend, fn), f"{backend} {fn}") for fn, out in deciding if out == "ran"))
    declined = [out.partition(": ")[2] for _, out in deciding if out != "ran"]
    if ran and not declined:
        return "; ".join(ran)
    loop = {"tensorflow": "tf.while_loop", "jax": "lax.scan over the cell"}.get(backend, f"{backend} backend")
    if backend == "tensorflow":
        why = keras_cudnn_blockers(model, gpu) or ["Keras' TF backend declined cuDNN"]
    elif not calls:
        why = ["SimpleRNN has no fused kernel"] if model.cell == "rnn" else ["no fused function was called"]
    else:
        why = [r for r in declined if r] or (["no GPU"] if not gpu else ["the backend declined its fused function"])
    return "; ".join([*ran, f"{GENERIC} ({loop}): " + "; ".join(dict.fromkeys(why))])
