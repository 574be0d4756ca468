"""Tests of one adapter's own behaviour (the shared contract is in test_adapters_contract.py)."""

import pytest

import adapters
from bench.core.specs import ModelSpec, TrainSpec
from tests.conftest import adapter_under_test, only_for


@only_for("keras")
def test_keras_reports_reference_d1_parameter_count():
    a = adapters.load("keras")
    a.setup("cpu", 1, 0)
    # docs/reference-cases.md, case D1: SimpleRNN(256) -> SimpleRNN(256) -> Dense(10) on 28 features
    model = a.build(ModelSpec("rnn", (256, 256)), TrainSpec())
    assert a.count_params(model) == 206_858
    assert [layer.count_params() for layer in model.layers[1:]] == [72_960, 131_328, 2_570]


@only_for("torch")
def test_torch_bidirectional_head_sees_forward_last_and_backward_final_state():
    import torch

    a = adapters.load("torch")
    a.setup("cpu", 1, 0)
    spec = ModelSpec("lstm", (6,), bidirectional=True)
    model = a.build(spec, TrainSpec()).eval()
    rnn = model.rnns[0]
    fwd = torch.nn.LSTM(28, 6, batch_first=True)
    bwd = torch.nn.LSTM(28, 6, batch_first=True)
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(fwd, name).copy_(getattr(rnn, name))
            getattr(bwd, name).copy_(getattr(rnn, name + "_reverse"))
        x = torch.randn(3, 28, 28)
        expected = model.head(torch.cat([fwd(x)[0][:, -1], bwd(x.flip(1))[0][:, -1]], dim=1))
        torch.testing.assert_close(model(x), expected)


@only_for("torch")
def test_torch_groups_uniform_layers_into_one_module():
    from adapters.torch_adapter import layer_groups

    assert layer_groups(ModelSpec("lstm", (128, 128))) == [(128, 2, 0.0)]
    assert layer_groups(ModelSpec("lstm", (256, 256), dropout=0.2)) == [(256, 1, 0.2), (256, 1, 0.2)]
    assert layer_groups(ModelSpec("gru", (256, 128), dropout=(0.3, 0.0))) == [(256, 1, 0.3), (128, 1, 0.0)]
    assert layer_groups(ModelSpec("rnn", (8, 8, 4))) == [(8, 2, 0.0), (4, 1, 0.0)]


@only_for("torch")
def test_torch_rejects_relu_lstm_before_any_work():
    info = adapters.get_info("torch")
    assert "fixed tanh activation" in info.unsupported_reason(ModelSpec("lstm", (8,), activation="relu"))
    assert info.unsupported_reason(ModelSpec("rnn", (8,), activation="relu")) is None


@only_for("torch", "torch-compile", "keras-torch")
@pytest.mark.parametrize("precision", ["tf32", "fp32", "tf32"])
def test_torch_tf32_settings_read_back_alike_through_the_legacy_and_the_new_api(precision):
    """Inductor and other libraries call the legacy readers; after rnnbench's settings none may raise
    (with only the new fp32_precision API set, they raise "mix of the legacy and new APIs")."""
    import torch

    from adapters.torch_common import set_torch_tf32, torch_tf32_state

    on = precision == "tf32"
    set_torch_tf32(on)
    try:
        assert torch.get_float32_matmul_precision() == ("high" if on else "highest")
        assert torch.backends.cuda.matmul.allow_tf32 is on and torch.backends.cudnn.allow_tf32 is on
        if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # torch >= 2.9: the new readers agree
            assert torch.backends.cuda.matmul.fp32_precision == ("tf32" if on else "ieee")
        assert torch_tf32_state().startswith("matmul tf32" if on else "matmul ieee")
    finally:
        set_torch_tf32(False)


@only_for("keras", "keras-jax", "keras-torch", "torch", "torch-compile", "torch-compile-rnn")
def test_setup_cpu_on_a_host_that_pretends_to_have_a_gpu_trains_on_the_cpu(monkeypatch, adapter_name):
    """In-process callers (these tests, parity) ask for setup("cpu"): the adapter must hide the GPU itself,
    not rely on the runner's CUDA_VISIBLE_DEVICES=-1."""
    a = adapters.load(adapter_name)
    calls = []
    if adapter_name == "keras":
        import tensorflow as tf

        fake = tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")
        real_list = tf.config.list_physical_devices
        monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [fake] if kind == "GPU" else real_list(kind))
        monkeypatch.setattr(tf.config, "set_visible_devices", lambda devices, kind=None: calls.append(("visible", devices, kind)))
        monkeypatch.setattr(tf.config.experimental, "set_memory_growth", lambda d, on: calls.append(("growth", d)))
    elif adapter_name == "keras-jax":
        import jax

        monkeypatch.setattr(jax, "devices", lambda *a: (_ for _ in ()).throw(AssertionError("asked for a GPU")))
    else:
        import torch

        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    a.setup("cpu", threads=1, seed=0)
    assert a.uses_gpu() is False
    if adapter_name == "keras":
        assert calls == [("visible", [], "GPU")]  # hidden, and no memory growth asked for a hidden card
    elif adapter_name == "keras-jax":
        import jax

        assert jax.config.jax_platforms == "cpu"
    elif adapter_name == "keras-torch":
        from keras.src.backend.torch import core

        assert core.DEFAULT_DEVICE == "cpu"
    else:
        assert a.device.type == "cpu"


@only_for("keras", "keras-jax")
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_keras_kernel_path_is_what_the_layers_called_on_this_cpu(adapter_name, cell):
    import numpy as np
    from keras.src import backend as keras_backend

    a = adapters.load(adapter_name)
    a.setup("cpu", 1, 0)
    spec = ModelSpec(cell, (4, 3), bidirectional=True)
    model = a.build(spec, TrainSpec())
    x, y = np.zeros((4, 28, 28), np.float32), np.zeros(4, np.int64)
    before = {n: getattr(keras_backend, n, None) for n in ("lstm", "gru", "bidirectional_lstm")}
    path = a.kernel_path(model, x, y)
    assert {n: getattr(keras_backend, n, None) for n in before} == before  # the probe put Keras back
    if cell == "gru" and adapter_name == "keras-jax":
        assert path.startswith("lax.scan GRU of Keras' jax backend")  # on any device
    elif cell == "rnn":
        assert path.startswith("generic step loop") and "SimpleRNN" in path
    else:
        assert path.startswith("generic step loop") and "no GPU" in path


@only_for("torch-compile", "torch-compile-rnn")
def test_compiled_inference_runs_through_the_compiled_module():
    """torch-compile's inference is compiled (it called the raw module before, so its infer_* figures were
    eager PyTorch's): Dynamo compiles a graph at the first inference call, and the path column says so."""
    import numpy as np
    from torch._dynamo.utils import counters

    from bench.core.batching import BatchPlan
    from bench.core.dataset import Dataset
    from bench.core.timer import StepTimer

    a = adapters.load(adapter_under_test())
    a.setup("cpu", 1, 0)
    spec, train = ModelSpec("gru", (8,), timesteps=4), TrainSpec(batch_size=8, max_steps=2)
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 4, 28), dtype=np.float32), rng.integers(0, 10, 16)
    model = a.build(spec, train)
    a.fit(model, Dataset("t", x, y, x, y, "t", "0"), train, BatchPlan(16, 8, 1, 2, 0), StepTimer())
    graphs = counters["stats"]["unique_graphs"]
    out = a.logits(model, x[:1])
    assert counters["stats"]["unique_graphs"] > graphs  # an inference graph was compiled
    assert out.shape == (1, 10)
    model.eval()
    import torch

    with torch.no_grad():
        np.testing.assert_allclose(out, model(torch.from_numpy(x[:1])).numpy(), atol=1e-5)
    assert a.inference_path(model).startswith("compiled: torch.compile")
    assert "0 graph(s)" not in a.inference_path(model)


@only_for("tf1-graph")
def test_tf1_on_a_gpu_fetches_a_read_ordered_after_the_update_so_the_clock_waits_for_it():
    """On a GPU, Session.run may return before the update's kernels ran; the GPU graph fetches a variable read
    ordered after the train op (its value is the updated one). On the CPU nothing is added."""
    import numpy as np

    from adapters.tf1_adapter import GraphModel

    spec, train = ModelSpec("lstm", (4,), timesteps=4), TrainSpec(batch_size=8, learning_rate=0.1)
    assert GraphModel(spec, train, 1, 0, gpu=False).step_done is None
    model = GraphModel(spec, train, 1, 0, gpu=True)  # no GPU here: the same graph runs on the CPU
    rng = np.random.default_rng(0)
    before = model.read(model.head_b)
    _, _, _, done = model.session.run([model.loss, model.correct, model.train_op, model.step_done],
                                      model.feed(rng.random((8, 4, 28), dtype=np.float32), rng.integers(0, 10, 8), True))
    after = model.read(model.head_b)
    assert not np.array_equal(before, after) and np.array_equal(done, after)
