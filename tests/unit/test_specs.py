import pytest

from bench.core.errors import BenchInputError
from bench.core.specs import Case, ModelSpec, TrainSpec


def test_model_spec_normalizes_units_and_dropout():
    m = ModelSpec(cell="lstm", units=[256, 128], dropout=0.2)
    assert m.units == (256, 128)
    assert m.dropout == (0.2, 0.2)
    assert m.layers == 2
    assert m.key == "lstm-uni-256-128-do0.2-0.2"


def test_model_key_is_short_for_uniform_stacks():
    assert ModelSpec(cell="gru", units=(128, 128), bidirectional=True).key == "gru-bi-128x2"
    assert ModelSpec(cell="rnn", units=(512, 512), activation="relu").key == "rnn-uni-512x2-relu"


@pytest.mark.parametrize(
    "kwargs, field, fragment",
    [
        ({"cell": "transformer", "units": (8,)}, "cell", "'rnn', 'gru' or 'lstm'"),
        ({"cell": "lstm", "units": ()}, "units", "at least one layer"),
        ({"cell": "lstm", "units": (8, 0)}, "units", "positive integer"),
        ({"cell": "lstm", "units": (8,), "activation": "gelu"}, "activation", "'tanh' or 'relu'"),
        ({"cell": "lstm", "units": (8, 8), "dropout": (0.1,)}, "dropout", "one rate per layer (2 layers)"),
        ({"cell": "lstm", "units": (8,), "dropout": 1.0}, "dropout", "[0, 1)"),
        ({"cell": "lstm", "units": (8,), "bidirectional": "yes"}, "bidirectional", "True or False"),
    ],
)
def test_model_spec_rejects_bad_values_naming_field_value_and_choices(kwargs, field, fragment):
    with pytest.raises(BenchInputError) as exc:
        ModelSpec(**kwargs)
    msg = str(exc.value)
    assert f"ModelSpec.{field}" in msg
    assert fragment in msg


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": -64}, "batch_size"),
        ({"epochs": 0}, "epochs"),
        ({"max_steps": 0}, "max_steps"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"seed": -1}, "seed"),
        ({"warmup_steps": -1}, "warmup_steps"),
        ({"batch_size": True}, "batch_size"),
    ],
)
def test_train_spec_rejects_bad_values(kwargs, field):
    with pytest.raises(BenchInputError, match=rf"TrainSpec\.{field}: invalid value"):
        TrainSpec(**kwargs)


def test_planned_steps_counts_full_batches_only():
    assert TrainSpec(batch_size=64, epochs=2).planned_steps(4000) == 124  # 62 full batches an epoch
    assert TrainSpec(batch_size=64, epochs=2, max_steps=30).planned_steps(4000) == 30


def test_specs_are_frozen():
    m = ModelSpec(cell="gru", units=(8,))
    with pytest.raises(AttributeError):
        m.cell = "lstm"


def test_case_round_trips_through_dict_and_has_stable_id():
    case = Case("torch", ModelSpec("lstm", (256, 128), True, dropout=(0.2, 0.0)), TrainSpec(batch_size=100, seed=3))
    again = Case.from_dict(case.to_dict())
    assert again == case
    assert case.case_id == "torch/lstm-bi-256-128-do0.2-0/b100/mnist-5k/s3"


def test_case_rejects_unknown_device():
    with pytest.raises(BenchInputError, match=r"Case.device: invalid value 'tpu'; allowed: 'auto', 'cpu' or 'cuda'"):
        Case("torch", ModelSpec("gru", (8,)), device="tpu")


def test_learning_rate_schedules_have_exact_values():
    from bench.core.specs import TrainSpec

    assert TrainSpec(learning_rate=0.1).learning_rate_at(1000) == 0.1
    inv = TrainSpec(learning_rate=1e-3, lr_schedule="inverse-time", lr_decay=1e-5)  # Keras 2's Adam(decay=1e-5)
    assert inv.learning_rate_at(0) == 1e-3
    assert inv.learning_rate_at(100_000) == pytest.approx(1e-3 / 2, rel=1e-15)
    exp = TrainSpec(learning_rate=0.5, lr_schedule="exponential", lr_decay=0.9, lr_decay_steps=10_000)  # case C
    assert exp.learning_rate_at(10_000) == pytest.approx(0.45, rel=1e-15)
    assert exp.learning_rate_at(5_000) == pytest.approx(0.5 * 0.9**0.5, rel=1e-15)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"lr_schedule": "cosine"}, "TrainSpec.lr_schedule: invalid value 'cosine'; allowed: 'constant', 'inverse-time' or 'exponential'"),
        ({"lr_decay": 0.1}, "0 with lr_schedule 'constant'"),
        ({"lr_schedule": "exponential", "lr_decay": 1.5}, "a rate in (0, 1]"),
        ({"lr_schedule": "inverse-time", "lr_decay": -1.0}, "a number >= 0"),
        ({"lr_schedule": "inverse-time", "lr_decay": 0.1, "lr_decay_steps": 0}, "lr_decay_steps: invalid value 0"),
    ],
)
def test_bad_schedules_are_named(kwargs, fragment):
    from bench.core.specs import TrainSpec

    with pytest.raises(BenchInputError) as exc:
        TrainSpec(**kwargs)
    assert fragment in str(exc.value)


def test_a_label_prefixes_the_case_id_and_is_checked():
    from bench.core.specs import Case, ModelSpec

    case = Case("keras", ModelSpec("rnn", (256, 256)), label="D1")
    assert case.case_id == "D1:keras/rnn-uni-256x2/b64/mnist-5k/s0"
    assert Case.from_dict(case.to_dict()) == case
    with pytest.raises(BenchInputError, match="Case.label: invalid value 'a/b'"):
        Case("keras", ModelSpec("rnn", (8,)), label="a/b")


def test_precision_is_a_validated_train_setting_and_part_of_the_case_id():
    from bench.core.errors import BenchInputError
    from bench.core.specs import PRECISIONS, Case, ModelSpec, TrainSpec

    assert PRECISIONS == ("fp32", "tf32", "bf16", "fp16") and TrainSpec().precision == "fp32"
    fp32 = Case("torch", ModelSpec("gru", (8,)), TrainSpec())
    bf16 = Case("torch", ModelSpec("gru", (8,)), TrainSpec(precision="bf16"))
    assert fp32.case_id == "torch/gru-uni-8x1/b64/mnist-5k/s0"  # unchanged: baselines keep matching
    assert bf16.case_id == "torch/gru-uni-8x1/b64/mnist-5k/s0/bf16"
    with pytest.raises((BenchInputError, ValueError), match="precision"):
        TrainSpec(precision="fp8")
