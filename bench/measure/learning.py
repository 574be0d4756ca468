"""Learning sanity check: after training, every trainable weight moved and the loss went down.

It exists because frameworks do ship silent training bugs: Keras 3.10 to 3.13 on the torch backend
detached the cuDNN LSTM's outputs, so its LSTM weights never trained while the run looked fine. A
row that fails the check gets status `not-learning`, names the frozen weights, and reports no
accuracy.
"""

from __future__ import annotations

import math

import numpy as np

from bench.core.canonical import CanonicalWeights


def frozen_weights(
    before: CanonicalWeights | dict[str, np.ndarray], after: CanonicalWeights | dict[str, np.ndarray],
    keeps_recurrent_bias: bool,
) -> list[str]:
    """Names of the arrays that did not change at all during training (canonical names, or the
    adapter's own where its model has no canonical form; see Adapter.weight_arrays)."""
    a = before.arrays() if isinstance(before, CanonicalWeights) else before
    b = after.arrays() if isinstance(after, CanonicalWeights) else after
    frozen = []
    for name, old in a.items():
        if name.endswith(".b_hh") and not keeps_recurrent_bias:
            continue  # the framework has no such weight (its single bias is reported as b_ih)
        if np.array_equal(old, b[name]):
            frozen.append(name)
    return frozen


def learning_problems(frozen: list[str], first_loss: float, last_loss: float, labels_meaningful: bool) -> list[str]:
    """Why a run did not learn ([] = it did). With random labels only the weights are checked."""
    problems = []
    if frozen:
        problems.append(f"weights that never changed: {', '.join(frozen)}")
    if labels_meaningful and math.isfinite(first_loss) and math.isfinite(last_loss) and not last_loss < first_loss:
        problems.append(f"training loss did not go down: first batch {first_loss:.4f}, last epoch {last_loss:.4f}")
    return problems
