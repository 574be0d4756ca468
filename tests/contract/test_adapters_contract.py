"""Contract tests of one adapter, in that adapter's own process (RNNBENCH_TEST_ADAPTER=name).

`test_in_own_processes.py` starts one such process per built-in adapter, with the adapter's
import-time settings (its Keras backend, or legacy tf-keras for the TF 1.x cells).
"""

import math

import numpy as np
import pytest

import adapters
from adapters.base import Adapter, CaseUnavailable
from bench.core.batching import BatchPlan
from bench.core.canonical import torch_scheme
from bench.core.specs import CELLS, ModelSpec, TrainSpec
from bench.core.timer import StepTimer
from bench.stats.parity import roundtrip_ok
from tests.conftest import only_for
from tests.contract.conftest import SEQ


def rnn_params(cell: str, in_size: int, h: int, biases: int) -> int:
    """Weights of one recurrent layer, one direction: gates * (input kernel + recurrent kernel + biases)."""
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    return gates * (in_size * h + h * h + biases * h)


def expected_params(adapter: str, spec: ModelSpec) -> int:
    # Keras keeps one bias per gate, except GRU with reset_after=True (its default), which keeps
    # an input and a recurrent bias like PyTorch. PyTorch keeps b_ih and b_hh for every cell.
    # TF 1.x cells keep one bias per gate block, GRUCell included (it resets before the matmul).
    if adapter == "tf1-graph":
        biases = 1
    else:
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


def fit_or_skip(adapter, model, data, train, plan, timer):
    """fit, or a skip naming the reason where the adapter reports the case unavailable here (a framework
    defect its probe confirmed; test_torch_compile_rnn_lstm_on_cpu checks the one known today)."""
    try:
        return adapter.fit(model, data, train, plan, timer)
    except CaseUnavailable as exc:
        pytest.skip(f"unavailable here: {exc}")


@pytest.fixture(scope="module")
def adapter(adapter_name) -> Adapter:
    a = adapters.load(adapter_name)
    a.setup("cpu", threads=1, seed=0)
    return a


def test_adapter_implements_the_abstract_contract(adapter):
    assert isinstance(adapter, Adapter)
    assert not getattr(type(adapter), "__abstractmethods__", None)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.key)
def test_param_count_matches_hand_formula(adapter, spec):
    model = adapter.build(spec, TrainSpec())
    assert adapter.count_params(model) == expected_params(adapter.name, spec)


def test_reference_models_have_the_hand_derived_parameter_counts(adapter):
    from bench.planning.references import REFERENCES
    from tests.reference_params import expected

    want = expected(adapter.name)
    got = {label: adapter.count_params(adapter.build(REFERENCES[label].model, REFERENCES[label].train)) for label in want}
    assert got == want


def test_fit_times_every_planned_step_and_evaluate_is_sane(adapter, tiny_data):
    train = TrainSpec(batch_size=16, epochs=2, max_steps=6, warmup_steps=1, eval_batch_size=8)
    spec = ModelSpec("lstm", (8, 8), True, dropout=(0.1, 0.0), timesteps=SEQ)
    model = adapter.build(spec, train)
    plan = BatchPlan(len(tiny_data.y_train), train.batch_size, train.epochs, train.max_steps, train.seed)
    timer = StepTimer(sync=adapter.sync)
    fit = fit_or_skip(adapter, model, tiny_data, train, plan, timer)
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


@pytest.mark.parametrize(
    "schedule, rate", [("constant", 0.0), ("inverse-time", 0.25), ("exponential", 0.5)]
)
def test_fit_follows_the_learning_rate_schedule(adapter, tiny_data, schedule, rate):
    train = TrainSpec(batch_size=16, epochs=2, max_steps=5, learning_rate=0.01, lr_schedule=schedule, lr_decay=rate,
                      lr_decay_steps=2, phase_rounds=0)
    model = adapter.build(ModelSpec("rnn", (4,), timesteps=SEQ), train)
    fit = adapter.fit(model, tiny_data, train, BatchPlan(64, 16, 2, 5, 0), StepTimer(adapter.sync))
    assert fit.steps == 5
    # after 5 updates, the optimizer holds the rate of update number 5 (counting from 0)
    expected = {"constant": 0.01, "inverse-time": 0.01 / (1 + 0.25 * 5 / 2), "exponential": 0.01 * 0.5 ** 2.5}[schedule]
    assert train.learning_rate_at(5) == pytest.approx(expected, rel=1e-12)
    assert adapter.learning_rate_now(model) == pytest.approx(expected, rel=1e-6)


# What the read-back (runtime_info's matmul_precision) must say for each precision, in any framework.
READ_BACK = {"fp32": ("off", "ieee", "float32"), "tf32": ("tf32 on", "matmul tf32", "tensorfloat32"),
             "bf16": ("bfloat16",), "fp16": ("float16",)}


@pytest.mark.parametrize("precision", ["fp32", "tf32", "bf16", "fp16"])
def test_precision_is_applied_and_read_back(adapter, tiny_data, precision):
    if precision not in adapters.get_info(adapter.name).precisions:
        pytest.skip(f"{adapter.name} does not offer {precision} (rejected before any work; test_cli checks it)")
    if "compile" in adapter.name and precision in ("tf32", "fp16"):
        pytest.skip("the compiled variants share the eager adapter's precision code; bf16 covers their graphs")
    train = TrainSpec(batch_size=16, epochs=1, max_steps=4, warmup_steps=1, eval_batch_size=8, precision=precision)
    spec = ModelSpec("gru", (8,), timesteps=SEQ)
    try:
        adapter.set_precision(precision)
        model = adapter.build(spec, train)
        plan = BatchPlan(len(tiny_data.y_train), train.batch_size, train.epochs, train.max_steps, train.seed)
        fit = adapter.fit(model, tiny_data, train, plan, StepTimer(sync=adapter.sync))
        ev = adapter.evaluate(model, tiny_data, train)
        info = adapter.runtime_info(model)
        weights = adapter.weight_arrays(model)
    finally:
        adapter.set_precision("fp32")  # the fixture's adapter is shared: leave float32 behind
    assert fit.steps == 4 and math.isfinite(fit.train_loss) and 0.0 <= ev.accuracy <= 1.0
    read_back = info.extra["matmul_precision"]
    assert any(word in read_back for word in READ_BACK[precision]), read_back
    if precision in ("bf16", "fp16"):
        assert all(w.dtype == np.float32 for w in weights.values())  # mixed precision keeps float32 weights
    if precision == "fp16":
        assert "GradScaler" in read_back or "LossScaleOptimizer" in read_back  # loss scaling, as documented
    assert info.extra["compile_policy"]
    assert info.extra["input_transfer"]  # every adapter says where its batches reach the device


@only_for("torch")
def test_torch_bf16_lstm_on_a_cpu_without_bf16_kernels_is_unavailable_not_a_crash():
    import torch

    from adapters.base import PrecisionUnavailable

    a = adapters.load("torch")
    a.setup("cpu", threads=1, seed=0)
    a.set_precision("bf16")
    try:
        if torch.ops.mkldnn._is_mkldnn_bf16_supported():
            assert a.build(ModelSpec("lstm", (8,)), TrainSpec()) is not None
        else:
            with pytest.raises(PrecisionUnavailable, match="bf16 LSTM on this CPU"):
                a.build(ModelSpec("lstm", (8,)), TrainSpec())
    finally:
        a.set_precision("fp32")


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_every_weight_is_visible_to_the_learning_check(adapter, tiny_data, cell):
    from bench.measure.learning import frozen_weights

    train = TrainSpec(batch_size=16, max_steps=2, learning_rate=1e-2)
    model = adapter.build(ModelSpec(cell, (4, 3), bidirectional=True, timesteps=SEQ), train)
    before = adapter.weight_arrays(model)
    count = sum(a.size for name, a in before.items() if not name.endswith(".b_hh") or adapter.keeps_recurrent_bias(cell))
    assert count == adapter.count_params(model)  # nothing trainable escapes the check
    fit_or_skip(adapter, model, tiny_data, train, BatchPlan(64, 16, 1, 2, 0), StepTimer(adapter.sync))
    assert frozen_weights(before, adapter.weight_arrays(model), adapter.keeps_recurrent_bias(cell)) == []


def test_training_reduces_loss_on_a_learnable_task(adapter, tiny_data):
    # Label = which half of the sequence is brighter: learnable in a few dozen steps.
    x = tiny_data.x_train.copy()
    y = np.arange(len(x)) % 2
    x[y == 1, SEQ // 2:] += 1.0
    data = type(tiny_data)(**{**tiny_data.__dict__, "x_train": x, "y_train": y, "x_test": x[:20], "y_test": y[:20]})
    train = TrainSpec(batch_size=16, epochs=15, learning_rate=1e-2, eval_batch_size=20)
    model = adapter.build(ModelSpec("gru", (8,), timesteps=SEQ), train)
    before = adapter.evaluate(model, data, train).loss
    adapter.fit(model, data, train, BatchPlan(64, 16, 15, None, 0), StepTimer(adapter.sync))
    after = adapter.evaluate(model, data, train)
    assert after.loss < before * 0.7
    assert after.accuracy >= 0.9


def _learnable(tiny_data):
    x = tiny_data.x_train.copy()
    y = np.arange(len(x)) % 2
    x[y == 1, SEQ // 2:] += 1.0
    return type(tiny_data)(**{**tiny_data.__dict__, "x_train": x, "y_train": y, "x_test": x[:20], "y_test": y[:20]})


def _freeze_first_layer(adapter, model):
    if adapter.name == "tf1-graph":
        pytest.skip("a finalized TF 1.x graph cannot drop variables from its train op")
    if adapter.name.startswith("torch"):
        for p in model.rnns[0].parameters():
            p.requires_grad_(False)
    else:
        model.layers[1].trainable = False
        model.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"])  # Keras needs a recompile


@pytest.mark.parametrize("freeze", [False, True])
def test_learning_check_catches_a_frozen_layer(adapter, tiny_data, freeze):
    from bench.core.status import Status
    from bench.measure.learning import frozen_weights, learning_verdict

    data = _learnable(tiny_data)
    train = TrainSpec(batch_size=16, epochs=5, learning_rate=1e-2)
    spec = ModelSpec("lstm", (8, 6), timesteps=SEQ)  # widths differ: two recurrent modules in both frameworks
    model = adapter.build(spec, train)
    if freeze:
        _freeze_first_layer(adapter, model)
    before = adapter.get_weights(model)
    fit_or_skip(adapter, model, data, train, BatchPlan(64, 16, 5, None, 0), StepTimer(adapter.sync))
    frozen = frozen_weights(before, adapter.get_weights(model), adapter.keeps_recurrent_bias("lstm"))
    verdict = learning_verdict(frozen, None, num_classes=2)
    if freeze:
        expected = ["l0.d0.w_ih", "l0.d0.w_hh", "l0.d0.b_ih"] + (["l0.d0.b_hh"] if adapter.keeps_recurrent_bias("lstm") else [])
        assert frozen == expected
        assert verdict.status == Status.NOT_LEARNING and "weights that never changed: l0.d0.w_ih" in verdict.reason
    else:
        assert frozen == [] and verdict.status == Status.OK


PARITY_SPECS = [ModelSpec(cell, (8, 6), bi) for cell in CELLS for bi in (False, True)]


@pytest.mark.parametrize("spec", PARITY_SPECS, ids=lambda s: s.key)
def test_canonical_weights_round_trip(adapter, spec):
    if adapters.get_info(adapter.name).noncanonical_reason(spec):
        pytest.skip(adapters.get_info(adapter.name).noncanonical_reason(spec))
    weights = torch_scheme(spec, seed=5)
    model = adapter.build(spec, TrainSpec())
    adapter.set_weights(model, weights)
    assert roundtrip_ok(weights, adapter.get_weights(model), merged=not adapter.keeps_recurrent_bias(spec.cell))


@only_for("torch-compile-rnn")
def test_torch_compile_rnn_lstm_on_cpu_trains_or_is_unavailable_with_the_probe_s_reason(adapter, tiny_data):
    import torch

    train = TrainSpec(batch_size=16, max_steps=2)
    model = adapter.build(ModelSpec("lstm", (4,), timesteps=SEQ), train)
    defect = adapter.compiled_lstm_defect()
    if defect is None:  # a torch that traces the oneDNN LSTM correctly: it trains like any adapter
        assert adapter.fit(model, tiny_data, train, BatchPlan(64, 16, 1, 2, 0), StepTimer(adapter.sync)).steps == 2
        return
    assert torch.__version__ in defect and "allow_rnn cannot train an LSTM on cpu" in defect
    with pytest.raises(CaseUnavailable, match="torch-compile, which leaves the LSTM eager, runs it"):
        adapter.fit(model, tiny_data, train, BatchPlan(64, 16, 1, 2, 0), StepTimer(adapter.sync))
    gru = adapter.build(ModelSpec("gru", (4,), timesteps=SEQ), train)  # the other cells are traced and train
    assert adapter.fit(gru, tiny_data, train, BatchPlan(64, 16, 1, 2, 0), StepTimer(adapter.sync)).steps == 2


class RecordingTimer(StepTimer):
    """A step timer that writes its start and stop into an event log the test shares with the adapter's hooks."""

    def __init__(self, events: list[str], sync=None) -> None:
        super().__init__(sync=sync)
        self.events = events

    def start(self) -> None:
        super().start()
        self.events.append("start")

    def stop(self) -> None:
        self.events.append("stop")
        super().stop()


def _record_clock_work(adapter, model, events: list[str], monkeypatch) -> None:
    """Log 'fetch' where the adapter puts a batch where its step needs it and 'metric' where the accuracy metric
    is computed, through each adapter's own hook (the clock's contents: docs/methodology.md)."""
    if adapter.name.startswith("torch"):
        import adapters.torch_adapter as ta

        real_count, real_device = ta.correct_count, adapter._to_device
        monkeypatch.setattr(ta, "correct_count", lambda *a: events.append("metric") or real_count(*a))
        monkeypatch.setattr(adapter, "_to_device", lambda *a: events.append("fetch") or real_device(*a))
    elif adapter.name == "tf1-graph":
        real_feed, real_run = model.feed, model.session.run
        monkeypatch.setattr(model, "feed", lambda *a, **k: events.append("fetch") or real_feed(*a, **k))

        def run(fetches, *a, **k):
            if isinstance(fetches, list) and model.correct in fetches and model.train_op in fetches:
                events.append("metric")  # the accuracy count is fetched by the step's own Session.run
            return real_run(fetches, *a, **k)
        monkeypatch.setattr(model.session, "run", run)
    else:  # Keras: the batch is placed by the adapter's timed train function; the metric runs in train_step,
        from adapters.keras_adapter import _TimedTrainFunction  # eagerly here, so each call is seen

        real_place, real_metrics = _TimedTrainFunction.place, model.compute_metrics
        monkeypatch.setattr(_TimedTrainFunction, "place", lambda self, b: events.append("fetch") or real_place(self, b))
        monkeypatch.setattr(model, "compute_metrics", lambda *a, **k: events.append("metric") or real_metrics(*a, **k))
        model.run_eagerly = True


def test_the_clock_holds_the_step_and_its_accuracy_metric_not_the_batchs_fetch(adapter, tiny_data, monkeypatch):
    """The same work inside every adapter's clock: each batch is fetched and placed before the clock starts, and
    the accuracy metric is computed between start and stop, in every adapter (Keras' model.fit included)."""
    train = TrainSpec(batch_size=16, max_steps=4, learning_rate=1e-2)
    model = adapter.build(ModelSpec("gru", (4,), timesteps=SEQ), train)
    events: list[str] = []
    _record_clock_work(adapter, model, events, monkeypatch)
    fit_or_skip(adapter, model, tiny_data, train, BatchPlan(64, 16, 1, 4, 0), RecordingTimer(events, adapter.sync))
    inside, steps, fetched_before = False, 0, 0
    metric_in_step = []
    for e in events:
        if e == "start":
            inside, steps, metrics = True, steps + 1, 0
            assert fetched_before >= 1, f"step {steps} started without a batch fetched first: {events}"
        elif e == "stop":
            inside = False
            metric_in_step.append(metrics)
            fetched_before = 0
        elif e == "fetch":
            assert not inside, f"a batch was fetched inside step {steps}'s clock: {events}"
            fetched_before += 1
        elif e == "metric" and inside:
            metrics += 1
    assert steps == 4 and metric_in_step == [1, 1, 1, 1], events
