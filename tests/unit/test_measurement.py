"""Exact-value tests of the FLOP model, the Keras kernel-path rules and the phase split."""

import pytest

from adapters.kernel_rules import keras_cudnn_blockers, keras_path_from_calls
from bench.core.specs import ModelSpec
from bench.measure.flops import forward_flops_per_example, train_flops_per_step
from bench.measure.phases import measure_phases


def test_flops_of_one_layer_rnn_by_hand():
    # 28 steps x 2 x 1 gate x (28*4 + 4*4) + head 2*4*10
    spec = ModelSpec("rnn", (4,))
    assert forward_flops_per_example(spec) == 28 * 2 * (28 * 4 + 16) + 80 == 7248
    assert train_flops_per_step(spec, batch_size=2) == 3 * 2 * 7248


def test_flops_of_stacked_bidirectional_lstm_by_hand():
    spec = ModelSpec("lstm", (3, 2), bidirectional=True)
    layer1 = 2 * 28 * 2 * 4 * (28 * 3 + 3 * 3)  # two directions, input 28
    layer2 = 2 * 28 * 2 * 4 * (6 * 2 + 2 * 2)  # input = both directions of layer 1
    head = 2 * 4 * 10
    assert forward_flops_per_example(spec) == layer1 + layer2 + head == 48912


def test_gru_has_three_gates():
    assert (
        forward_flops_per_example(ModelSpec("gru", (8,))) * 4 - 4 * 160
        == (forward_flops_per_example(ModelSpec("lstm", (8,))) - 160) * 3
    )


@pytest.mark.parametrize(
    "spec, gpu, expected",
    [
        (ModelSpec("lstm", (256, 256)), True, "cudnn (fused CudnnRNNV3)"),
        (ModelSpec("gru", (256,), bidirectional=True), True, "cudnn (fused CudnnRNNV3)"),
        (ModelSpec("lstm", (256,), dropout=0.2), True, "cudnn (fused CudnnRNNV3)"),  # Dropout layers are outside
        # reference cases A1 and D2: relu takes Keras off cuDNN
        (
            ModelSpec("rnn", (512, 512), activation="relu"),
            True,
            "generic step loop (tf.while_loop): SimpleRNN has no cuDNN kernel; activation='relu' (cuDNN needs 'tanh')",
        ),
        (
            ModelSpec("lstm", (256, 256), activation="relu"),
            True,
            "generic step loop (tf.while_loop): activation='relu' (cuDNN needs 'tanh')",
        ),
        (ModelSpec("lstm", (128,)), False, "generic step loop (tf.while_loop): no GPU"),
    ],
)
def test_keras_tf_kernel_path_when_cudnn_declines(spec, gpu, expected):
    outcome = "ran" if expected.startswith("cudnn") else "declined"  # TF's lstm/gru run only as cuDNN
    calls = [] if spec.cell == "rnn" else [(spec.cell, outcome)] * spec.layers
    assert keras_path_from_calls(calls, spec, gpu, "tensorflow") == expected


def test_keras_blockers_empty_only_when_cudnn_applies():
    assert keras_cudnn_blockers(ModelSpec("gru", (8,)), gpu=True) == []


LSTM2, GRU2 = ModelSpec("lstm", (8, 8)), ModelSpec("gru", (8, 8))


@pytest.mark.parametrize("calls, spec, gpu, backend, expected", [
    ([("lstm", "ran")] * 2, LSTM2, True, "tensorflow", "cudnn (fused CudnnRNNV3)"),
    ([("lstm", "ran")] * 2, LSTM2, True, "jax", "cudnn (jax.experimental.rnn lstm)"),
    # a bidirectional layer: the fused two-direction attempt declined, each direction then ran cuDNN
    ([("bidirectional_lstm", "declined"), ("lstm", "ran"), ("lstm", "ran")], LSTM2, True, "jax",
     "cudnn (jax.experimental.rnn lstm)"),
    ([("bidirectional_lstm", "ran")], ModelSpec("lstm", (8,), True), True, "jax",
     "cudnn (jax.experimental.rnn lstm, both directions)"),
    # Keras' JAX GRU is its own lax.scan on any device, not cuDNN and not the cell loop
    ([("gru", "ran")] * 2, GRU2, False, "jax",
     "lax.scan GRU of Keras' jax backend (input projections hoisted out of the loop; not cuDNN)"),
    ([("lstm", "declined")] * 2, LSTM2, False, "jax", "generic step loop (lax.scan over the cell): no GPU"),
    ([("lstm", "declined: cuDNN LSTM failed: bad shape")], ModelSpec("lstm", (8,)), True, "jax",
     "generic step loop (lax.scan over the cell): cuDNN LSTM failed: bad shape"),
    ([], ModelSpec("rnn", (8,)), True, "jax", "generic step loop (lax.scan over the cell): SimpleRNN has no fused kernel"),
    # one layer fused, one not: both named
    ([("lstm", "ran"), ("lstm", "declined: masked")], LSTM2, True, "jax",
     "cudnn (jax.experimental.rnn lstm); generic step loop (lax.scan over the cell): masked"),
])
def test_keras_kernel_path_is_named_from_what_keras_called(calls, spec, gpu, backend, expected):
    assert keras_path_from_calls(calls, spec, gpu, backend) == expected


def test_phase_split_is_difference_of_medians(monkeypatch):
    # A fake clock: each phase call advances it by a fixed cost, so the split is exact.
    clock = {"ns": 0}
    monkeypatch.setattr("bench.measure.phases.time.perf_counter_ns", lambda: clock["ns"])

    def costs(ms):
        def call():
            clock["ns"] += int(ms * 1e6)

        return call

    fns = {"forward": costs(2.0), "forward_backward": costs(6.5), "step": costs(7.0)}
    out = measure_phases(fns, rounds=5, warmup=1)
    assert out == {"forward_ms": 2.0, "backward_ms": 4.5, "optimizer_ms": 0.5}
