"""Which recurrent implementation Keras picks, from the documented rules (no framework import).

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


def keras_kernel_path(model: ModelSpec, gpu: bool, backend: str = "tensorflow") -> str:
    if backend != "tensorflow":
        return f"{GENERIC} ({backend} backend)"
    blockers = keras_cudnn_blockers(model, gpu)
    if not blockers:
        return "cudnn (fused CudnnRNNV3)"
    return f"{GENERIC} (tf.while_loop): " + "; ".join(blockers)
