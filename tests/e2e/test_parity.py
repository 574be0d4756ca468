"""Cross-framework parity in the default test run: same weights -> same model, for every cell and direction.

Each framework is measured in its own process through the executor, as `bench parity` does it
(tests/framework_guard.py keeps frameworks out of the test process).
"""

import numpy as np
import pytest

from bench.core.canonical import CanonicalWeights, init_weights, keras_scheme, param_difference_note, torch_scheme
from bench.core.errors import BenchInputError
from bench.core.specs import CELLS, ModelSpec
from bench.stats.parity import compare, compare_spec, measure_adapters, spec_arrays
from tests.conftest import installed

needs_both = pytest.mark.skipif(not installed("keras", "tensorflow", "torch"), reason="keras and torch needed")
SPECS = [ModelSpec(cell, (8, 6), bi) for cell in CELLS for bi in (False, True)]


@pytest.fixture(scope="module")
def both():
    """keras' and torch's parity measurements of SPECS, one process each."""
    return measure_adapters(["keras", "torch"], SPECS, seed=11, threads=1)


def test_keras_scheme_follows_keras_defaults():
    spec = ModelSpec("lstm", (8,))
    w = keras_scheme(spec, seed=1)
    d = w.layers[0][0]
    assert d.w_ih.shape == (32, 28) and d.w_hh.shape == (32, 8) and d.w_ih.dtype == np.float32
    assert np.all(np.abs(d.w_ih) <= np.sqrt(6 / (28 + 32)))  # Glorot-uniform on Keras' (28, 32) kernel
    np.testing.assert_allclose(d.w_hh.T @ d.w_hh, np.eye(8), atol=1e-5)  # orthogonal recurrent kernel
    assert d.b_ih.tolist() == [0.0] * 8 + [1.0] * 8 + [0.0] * 16  # unit forget bias, gate order i, f, g, o
    assert not d.b_hh.any() and not w.head_b.any()


def test_torch_scheme_follows_torch_defaults():
    w = torch_scheme(ModelSpec("gru", (16,), bidirectional=True), seed=1)
    assert len(w.layers[0]) == 2
    for a in w.layers[0][1].__dict__.values():
        assert np.all(np.abs(a) <= 0.25)  # 1/sqrt(16)
    assert np.all(np.abs(w.head_w) <= 1 / np.sqrt(32))
    assert w.layers[0][0].b_hh.any()


def test_schemes_are_seeded():
    spec = ModelSpec("rnn", (4,))
    a, b, c = (keras_scheme(spec, s).arrays() for s in (3, 3, 4))
    assert all(np.array_equal(a[k], b[k]) for k in a) and not np.array_equal(a["l0.d0.w_ih"], c["l0.d0.w_ih"])
    assert init_weights("framework", spec, 0) is None
    with pytest.raises(BenchInputError, match="valid: 'framework', 'keras' or 'torch'"):
        init_weights("xavier", spec, 0)


def test_param_difference_is_explained_in_words():
    spec = ModelSpec("lstm", (8, 6), bidirectional=True)
    assert param_difference_note(spec, 1000, 1112) == "torch +112 = b_hh = 2 dir x 4 gate x (8+6)"
    assert "UNEXPLAINED" in param_difference_note(spec, 1000, 1111)
    assert param_difference_note(ModelSpec("gru", (8,)), 5, 5).startswith("equal")


@needs_both
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.key)
def test_keras_and_torch_are_the_same_model(both, spec):
    i = SPECS.index(spec)
    row = compare_spec(spec, "keras", spec_arrays(both["keras"], i), "torch", spec_arrays(both["torch"], i))
    assert row.ok, row
    assert row.logits_diff < 1e-5 and row.loss_diff < 1e-5 and row.weights_diff < 1e-4


@needs_both
def test_a_real_difference_is_caught(both):
    spec = SPECS[2]  # gru
    r, a = spec_arrays(both["keras"], 2), spec_arrays(both["torch"], 2)
    assert not compare_spec(spec, "keras", r, "torch", {**a, "logits": a["logits"] + 1e-3}).ok
    wrong = {**a, "delta/l0.d0.w_hh": a["delta/l0.d0.w_hh"] * 1.01}
    assert not compare_spec(spec, "keras", r, "torch", wrong).ok
    frozen = {k: (np.zeros_like(v) if k.startswith("delta/") else v) for k, v in r.items()}
    row = compare_spec(spec, "keras", frozen, "torch", frozen)
    assert not row.ok and "did not move" in row.note


def test_canonical_arrays_round_trip():
    spec = ModelSpec("lstm", (3, 2), bidirectional=True)
    w = keras_scheme(spec, 0)
    again = CanonicalWeights.from_arrays(spec, w.arrays())
    assert all(np.array_equal(v, again.arrays()[k]) for k, v in w.arrays().items())


@pytest.mark.skipif(not installed("keras", "tensorflow", "tf_keras"), reason="keras and tf-keras needed")
def test_tf1_graph_is_the_same_model_as_keras_except_its_gru():
    """TF 1.x cells (legacy tf-keras) and Keras 3, each in its own process, as `bench parity` runs them."""
    specs = [ModelSpec("lstm", (8, 6), True), ModelSpec("rnn", (6, 8, 5)), ModelSpec("gru", (8,))]
    rows = compare(specs, measure_adapters(["keras", "tf1-graph"], specs, seed=11, threads=1))
    assert [(r.spec_key, r.compared, r.ok) for r in rows] == [
        ("lstm-bi-8-6", True, True), ("rnn-uni-6-8-5", True, True), ("gru-uni-8x1", False, True)
    ]
    assert rows[0].logits_diff < 1e-5 and rows[0].params == rows[0].reference_params == 3_602
    assert "reset gate before its recurrent matmul" in rows[2].note


def test_a_parity_process_that_dies_or_hangs_is_named_without_a_traceback(fake_adapters):
    from dataclasses import replace

    from bench.execution.executors.local import LocalProcessExecutor
    from bench.stats.parity import parity_job, read_parity_result

    executor = LocalProcessExecutor()
    crashed = executor.submit(parity_job("fake-missing", SPECS[:1], 0, 1)).result()
    with pytest.raises(RuntimeError, match=r"parity worker for 'fake-missing' failed: worker exited with code 1"):
        read_parity_result("fake-missing", crashed)
    hung = executor.submit(replace(parity_job("fake-hang", SPECS[:1], 0, 1), timeout_s=0.5)).result()
    assert hung.timed_out and hung.returncode is None  # its process group was killed, not left running
