"""Contract tests, run over every built-in adapter (skipped cleanly when its framework is missing)."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

import adapters
from adapters.base import Adapter
from bench.batching import BatchPlan
from bench.specs import ModelSpec, TrainSpec
from bench.timing import StepTimer
from tests.conftest import installed, same_backend_adapters

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
ADAPTERS = same_backend_adapters()  # the others run in a subprocess with their backend set


def rnn_params(cell: str, in_size: int, h: int, biases: int) -> int:
    """Weights of one recurrent layer, one direction: gates * (input kernel + recurrent kernel + biases)."""
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    return gates * (in_size * h + h * h + biases * h)


def expected_params(adapter: str, spec: ModelSpec) -> int:
    # Keras keeps one bias per gate, except GRU with reset_after=True (its default), which keeps
    # an input and a recurrent bias like PyTorch. PyTorch keeps b_ih and b_hh for every cell.
    biases = 2 if adapter.startswith("torch") or spec.cell == "gru" else 1
    dirs = 2 if spec.bidirectional else 1
    total, in_size = 0, spec.input_size
    for h in spec.units:
        total += dirs * rnn_params(spec.cell, in_size, h, biases)
        in_size = dirs * h
    return total + in_size * spec.num_classes + spec.num_classes


SPECS = [
    ModelSpec(cell, units, bi)
    for cell in ("rnn", "gru", "lstm")
    for units, bi in (((8,), False), ((8, 6), True), ((5, 5, 7), False))
]


@pytest.fixture(scope="module", params=ADAPTERS)
def adapter(request) -> Adapter:
    a = adapters.load(request.param)
    a.setup("cpu", threads=1, seed=0)
    return a


def test_adapter_implements_the_abstract_contract(adapter):
    assert isinstance(adapter, Adapter)
    assert not getattr(type(adapter), "__abstractmethods__", None)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.key)
def test_param_count_matches_hand_formula(adapter, spec):
    model = adapter.build(spec, TrainSpec())
    assert adapter.count_params(model) == expected_params(adapter.name, spec)


def test_fit_times_every_planned_step_and_evaluate_is_sane(adapter, tiny_data):
    train = TrainSpec(batch_size=16, epochs=2, max_steps=6, warmup_steps=1, eval_batch_size=8)
    spec = ModelSpec("lstm", (8, 8), True, dropout=(0.1, 0.0))
    model = adapter.build(spec, train)
    plan = BatchPlan(len(tiny_data.y_train), train.batch_size, train.epochs, train.max_steps, train.seed)
    timer = StepTimer(sync=adapter.sync)
    fit = adapter.fit(model, tiny_data, train, plan, timer)
    assert fit.steps == timer.steps == 6
    assert fit.epochs == 2  # 4 full batches an epoch: 4 + 2
    assert not fit.diverged
    assert math.isfinite(fit.train_loss) and 0.0 <= fit.train_accuracy <= 1.0
    ev = adapter.evaluate(model, tiny_data, train)
    assert math.isfinite(ev.loss) and 0.0 <= ev.accuracy <= 1.0
    assert ev.loss == pytest.approx(math.log(10), rel=0.5)  # near chance on random data
    info = adapter.runtime_info(model)
    assert info.framework and info.framework_version and info.device_name == "cpu"
    assert adapter.allocator_peak_mb() is None and adapter.uses_gpu() is False


def test_training_reduces_loss_on_a_learnable_task(adapter, tiny_data):
    # Label = which half of the image is brighter: learnable in a few dozen steps.
    x = tiny_data.x_train.copy()
    y = np.arange(len(x)) % 2
    x[y == 1, 14:] += 1.0
    data = type(tiny_data)(**{**tiny_data.__dict__, "x_train": x, "y_train": y, "x_test": x[:20], "y_test": y[:20]})
    train = TrainSpec(batch_size=16, epochs=15, learning_rate=1e-2, eval_batch_size=20)
    model = adapter.build(ModelSpec("gru", (8,)), train)
    before = adapter.evaluate(model, data, train).loss
    adapter.fit(model, data, train, BatchPlan(64, 16, 15, None, 0), StepTimer(adapter.sync))
    after = adapter.evaluate(model, data, train)
    assert after.loss < before * 0.7
    assert after.accuracy >= 0.9


def test_keras_reports_reference_d1_parameter_count():
    if not installed("keras", "tensorflow") or BACKEND != "tensorflow":
        pytest.skip("keras on tensorflow not installed")
    a = adapters.load("keras")
    a.setup("cpu", 1, 0)
    # ../shared/SEEDS.md case D1: SimpleRNN(256) -> SimpleRNN(256) -> Dense(10) on 28 features
    model = a.build(ModelSpec("rnn", (256, 256)), TrainSpec())
    assert a.count_params(model) == 206_858
    assert [layer.count_params() for layer in model.layers[1:]] == [72_960, 131_328, 2_570]


def test_torch_bidirectional_head_sees_forward_last_and_backward_final_state():
    if not installed("torch"):
        pytest.skip("torch not installed")
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


def test_torch_groups_uniform_layers_into_one_module():
    if not installed("torch"):
        pytest.skip("torch not installed")
    from adapters.torch_adapter import layer_groups

    assert layer_groups(ModelSpec("lstm", (128, 128))) == [(128, 2, 0.0)]
    assert layer_groups(ModelSpec("lstm", (256, 256), dropout=0.2)) == [(256, 1, 0.2), (256, 1, 0.2)]
    assert layer_groups(ModelSpec("gru", (256, 128), dropout=(0.3, 0.0))) == [(256, 1, 0.3), (128, 1, 0.0)]
    assert layer_groups(ModelSpec("rnn", (8, 8, 4))) == [(8, 2, 0.0), (4, 1, 0.0)]


def test_torch_rejects_relu_lstm_before_any_work():
    info = adapters.get_info("torch")
    assert "fixed tanh activation" in info.unsupported_reason(ModelSpec("lstm", (8,), activation="relu"))
    assert info.unsupported_reason(ModelSpec("rnn", (8,), activation="relu")) is None


def _learnable(tiny_data):
    x = tiny_data.x_train.copy()
    y = np.arange(len(x)) % 2
    x[y == 1, 14:] += 1.0
    return type(tiny_data)(**{**tiny_data.__dict__, "x_train": x, "y_train": y, "x_test": x[:20], "y_test": y[:20]})


def _freeze_first_layer(adapter, model):
    if adapter.name.startswith("torch"):
        for p in model.rnns[0].parameters():
            p.requires_grad_(False)
    else:
        model.layers[1].trainable = False
        model.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"])  # Keras needs a recompile


@pytest.mark.parametrize("freeze", [False, True])
def test_learning_check_catches_a_frozen_layer(adapter, tiny_data, freeze):
    from bench.learning import frozen_weights, learning_problems

    data = _learnable(tiny_data)
    train = TrainSpec(batch_size=16, epochs=5, learning_rate=1e-2)
    spec = ModelSpec("lstm", (8, 6))  # widths differ: two recurrent modules in both frameworks
    model = adapter.build(spec, train)
    if freeze:
        _freeze_first_layer(adapter, model)
    before = adapter.get_weights(model)
    fit = adapter.fit(model, data, train, BatchPlan(64, 16, 5, None, 0), StepTimer(adapter.sync))
    frozen = frozen_weights(before, adapter.get_weights(model), adapter.keeps_recurrent_bias("lstm"))
    problems = learning_problems(frozen, fit.first_loss, fit.train_loss, labels_meaningful=True)
    if freeze:
        expected = ["l0.d0.w_ih", "l0.d0.w_hh", "l0.d0.b_ih"] + (["l0.d0.b_hh"] if adapter.keeps_recurrent_bias("lstm") else [])
        assert frozen == expected
        assert problems and "weights that never changed: l0.d0.w_ih" in problems[0]
    else:
        assert frozen == [] and problems == []


@pytest.mark.parametrize("name", [n for n, i in adapters.BUILTIN.items() if i.env.get("KERAS_BACKEND", BACKEND) != BACKEND])
def test_other_keras_backends(name):
    """The whole contract, in a fresh process on that adapter's Keras backend."""
    info = adapters.BUILTIN[name]
    if not installed(*info.requires):
        pytest.skip(f"{info.requires} not installed")
    env = {**os.environ, **info.env}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider", "-k", "keras and not other_keras"],
        capture_output=True, text=True, env=env, timeout=900, cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert " passed" in proc.stdout and " failed" not in proc.stdout
