"""One framework-neutral weight layout, so identical weights can be loaded into every adapter.

Layout (PyTorch's, the richest of the two: it keeps both biases), per layer and per direction
(forward first, then backward):

    w_ih  (G*H, in)    input kernel,     gate blocks stacked along rows
    w_hh  (G*H, H)     recurrent kernel
    b_ih  (G*H,)       input bias
    b_hh  (G*H,)       recurrent bias

with G gates in PyTorch's order: rnn (one), gru (r, z, n), lstm (i, f, g, o); then the Dense head
`head_w` (classes, in) and `head_b` (classes,). Adapters convert to and from it. Keras keeps one
bias for SimpleRNN and LSTM, so b_ih + b_hh are merged on the way in (the same function: the two
biases are only ever added) and b_hh = 0 on the way out. Keras' GRU (reset_after=True) keeps both.

Init schemes (`--init keras|torch`) are generated here in numpy from a seed, so every adapter
starts from the very same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.core.errors import BenchInputError, choices_text
from bench.core.specs import GATES, INIT_SCHEMES, ModelSpec


@dataclass
class Direction:
    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray


@dataclass
class CanonicalWeights:
    layers: list[list[Direction]]  # [layer][direction]
    head_w: np.ndarray
    head_b: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """Flat name -> array view, e.g. 'l0.d1.w_hh', for comparison and storage."""
        out = {}
        for i, layer in enumerate(self.layers):
            for j, d in enumerate(layer):
                for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
                    out[f"l{i}.d{j}.{name}"] = getattr(d, name)
        out["head_w"], out["head_b"] = self.head_w, self.head_b
        return out

    @classmethod
    def from_arrays(cls, spec: ModelSpec, arrays: dict[str, np.ndarray]) -> CanonicalWeights:
        dirs = 2 if spec.bidirectional else 1
        layers = [
            [Direction(*(np.asarray(arrays[f"l{i}.d{j}.{n}"]) for n in ("w_ih", "w_hh", "b_ih", "b_hh")))
             for j in range(dirs)]
            for i in range(spec.layers)
        ]
        return cls(layers, np.asarray(arrays["head_w"]), np.asarray(arrays["head_b"]))

    def merged_biases(self) -> CanonicalWeights:
        """The same function with b_hh folded into b_ih (valid for rnn and lstm, not gru)."""
        layers = [[Direction(d.w_ih, d.w_hh, d.b_ih + d.b_hh, np.zeros_like(d.b_hh)) for d in layer]
                  for layer in self.layers]
        return CanonicalWeights(layers, self.head_w, self.head_b)


def layer_inputs(spec: ModelSpec) -> list[int]:
    dirs = 2 if spec.bidirectional else 1
    return [spec.input_size] + [dirs * h for h in spec.units[:-1]]


def _glorot_uniform(rng, fan_in: int, fan_out: int, shape) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape)


def _orthogonal(rng, rows: int, cols: int) -> np.ndarray:
    # Keras' Orthogonal initializer: QR of a normal matrix, sign-corrected, for the (rows, cols) shape.
    flat = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    return q.T if rows < cols else q


def keras_scheme(spec: ModelSpec, seed: int) -> CanonicalWeights:
    """Keras defaults: Glorot-uniform kernels, orthogonal recurrent kernels, zero biases, a unit
    forget-gate bias for LSTM; Glorot-uniform head kernel and zero head bias."""
    rng = np.random.default_rng(seed)
    g = GATES[spec.cell]
    layers = []
    for in_size, h in zip(layer_inputs(spec), spec.units, strict=True):
        dirs = []
        for _ in range(2 if spec.bidirectional else 1):
            # Keras stores kernel as (in, G*H): Glorot's fans are in and G*H.
            w_ih = _glorot_uniform(rng, in_size, g * h, (in_size, g * h)).T
            w_hh = _orthogonal(rng, h, g * h).T  # Keras' recurrent kernel is (H, G*H)
            b_ih = np.zeros(g * h)
            if spec.cell == "lstm":
                b_ih[h : 2 * h] = 1.0  # unit_forget_bias: the f block of (i, f, g, o)
            dirs.append(Direction(w_ih, w_hh, b_ih, np.zeros(g * h)))
        layers.append(dirs)
    head_in = spec.units[-1] * (2 if spec.bidirectional else 1)
    head_w = _glorot_uniform(rng, head_in, spec.num_classes, (head_in, spec.num_classes)).T
    return _float32(CanonicalWeights(layers, head_w, np.zeros(spec.num_classes)))


def torch_scheme(spec: ModelSpec, seed: int) -> CanonicalWeights:
    """PyTorch defaults: every recurrent weight and bias U(-1/sqrt(H), 1/sqrt(H)); nn.Linear's
    weight and bias U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform with a=sqrt(5))."""
    rng = np.random.default_rng(seed)
    g = GATES[spec.cell]
    layers = []
    for in_size, h in zip(layer_inputs(spec), spec.units, strict=True):
        k = 1.0 / np.sqrt(h)
        layers.append([
            Direction(rng.uniform(-k, k, (g * h, in_size)), rng.uniform(-k, k, (g * h, h)),
                      rng.uniform(-k, k, g * h), rng.uniform(-k, k, g * h))
            for _ in range(2 if spec.bidirectional else 1)
        ])
    head_in = spec.units[-1] * (2 if spec.bidirectional else 1)
    k = 1.0 / np.sqrt(head_in)
    return _float32(CanonicalWeights(layers, rng.uniform(-k, k, (spec.num_classes, head_in)),
                                     rng.uniform(-k, k, spec.num_classes)))


def _float32(w: CanonicalWeights) -> CanonicalWeights:
    f32 = {name: a.astype(np.float32) for name, a in w.arrays().items()}
    layers = [[Direction(*(f32[f"l{i}.d{j}.{n}"] for n in ("w_ih", "w_hh", "b_ih", "b_hh"))) for j in range(len(layer))]
              for i, layer in enumerate(w.layers)]
    return CanonicalWeights(layers, f32["head_w"], f32["head_b"])


def init_weights(scheme: str, spec: ModelSpec, seed: int) -> CanonicalWeights | None:
    """Weights of an init scheme, or None for 'framework' (each framework's own defaults)."""
    if scheme not in INIT_SCHEMES:
        raise BenchInputError(f"unknown init scheme {scheme!r}; valid: {choices_text(INIT_SCHEMES)}")
    if scheme == "framework":
        return None
    return (keras_scheme if scheme == "keras" else torch_scheme)(spec, seed)


def param_difference_note(spec: ModelSpec, keras_params: int, torch_params: int) -> str:
    """Why Keras' and PyTorch's counts differ for the same model, in words."""
    diff = torch_params - keras_params
    if diff == 0:
        return "equal" + (" (Keras GRU, reset_after=True, keeps two biases too)" if spec.cell == "gru" else "")
    dirs = 2 if spec.bidirectional else 1
    g = GATES[spec.cell]
    expected = dirs * g * sum(spec.units)
    why = f"b_hh = {dirs} dir x {g} gate x ({'+'.join(map(str, spec.units))})"
    return f"torch +{diff:,} = {why}" if diff == expected else f"torch +{diff:,}: UNEXPLAINED ({why} = {expected:,})"
