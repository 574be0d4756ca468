"""Step by step, one Keras model on two backends: where do Keras on TensorFlow and Keras on JAX part?

The smallest reproduction behind docs/measurements.md ("keras-jax pixel by pixel"): the same 1x128 LSTM
(784 timesteps of one pixel), the same starting weights (the harness's canonical Keras draw, seed 0), the
same batches in the same order, Adam(2e-3, epsilon 1e-7), in one backend per process. Each step records
the loss before the update, the global norm of the gradients, and every `--every` steps the weights, to an
.npz; `--compare A.npz B.npz` prints where the two runs part.

    KERAS_BACKEND=tensorflow python examples/keras_backend_trace.py --steps 300 --out tf.npz
    KERAS_BACKEND=jax python examples/keras_backend_trace.py --steps 300 --out jax.npz
    python examples/keras_backend_trace.py --compare tf.npz jax.npz
    KERAS_BACKEND=tensorflow python examples/keras_backend_trace.py --steps 300 --perturb 1e-7 --out tfp.npz
    python examples/keras_backend_trace.py --compare tf.npz tfp.npz   # one backend, its start moved by rounding
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def trace(steps: int, every: int, out: str, seed: int, lr: float, sequence: str, threads: int,
          perturb: float) -> None:
    import keras

    from adapters.keras_adapter import KerasAdapter
    from bench.core.batching import BatchPlan
    from bench.core.canonical import init_weights
    from bench.core.specs import ModelSpec, TrainSpec
    from bench.data import load, resolve

    spec = ModelSpec("lstm", (128,), timesteps=784 if sequence != "rows" else 28,
                     input_size=1 if sequence != "rows" else 28)
    train = TrainSpec(batch_size=64, learning_rate=lr, seed=seed)
    adapter = KerasAdapter()
    adapter.setup("cpu", threads, seed)
    adapter.set_precision("fp32")
    model = adapter.build(spec, train)
    weights = init_weights("keras", spec, seed)
    if perturb:  # the same start moved by `perturb` relative, as float32 rounding in another backend would
        rng = np.random.default_rng(12345)
        weights = type(weights).from_arrays(spec, {k: (v * (1 + perturb * rng.choice([-1.0, 1.0], v.shape))).astype(
            np.float32) for k, v in weights.arrays().items()})
    adapter.set_weights(model, weights)
    data = load(resolve("mnist-5k"), sequence, spec.timesteps, spec.input_size)
    plan = BatchPlan(len(data.y_train), 64, 100, steps, seed)
    loss_fn, optimizer = model.loss, model.optimizer
    variables = model.trainable_variables
    backend = keras.backend.backend()
    losses, norms, snapshots = [], [], {}

    if backend == "tensorflow":  # the same computation Keras' own train step runs, compiled as fit compiles it
        import tensorflow as tf

        @tf.function
        def grads_of(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            return loss, tape.gradient(loss, variables)
    else:
        import jax

        non_trainable = [v.value for v in model.non_trainable_variables]
        value_and_grad = jax.jit(jax.value_and_grad(
            lambda values, x, y: loss_fn(y, model.stateless_call(values, non_trainable, x, training=True)[0])))

        def grads_of(x, y):
            return value_and_grad([v.value for v in variables], x, y)

    step = 0
    for idx in plan.epochs_indices():
        for start in range(0, len(idx) - 63, 64):
            if step >= steps:
                break
            sel = idx[start:start + 64]
            x, y = data.x_train[sel], data.y_train[sel]
            if step % every == 0:
                snapshots[f"w{step}"] = np.concatenate([np.ravel(keras.ops.convert_to_numpy(v.value)) for v in variables])
            loss, grads = grads_of(x, y)
            losses.append(float(keras.ops.convert_to_numpy(loss)))
            norms.append(float(np.sqrt(sum(float(np.sum(np.square(keras.ops.convert_to_numpy(g)))) for g in grads))))
            optimizer.apply(grads, variables)
            step += 1
        if step >= steps:
            break
    np.savez(out, loss=np.array(losses), grad_norm=np.array(norms), **snapshots)
    print(f"{backend}: {steps} steps, loss {losses[0]:.6f} -> {np.mean(losses[-20:]):.6f} (mean of the last 20)")


def compare(a_path: str, b_path: str) -> None:
    a, b = np.load(a_path), np.load(b_path)
    n = min(len(a["loss"]), len(b["loss"]))
    d = np.abs(a["loss"][:n] - b["loss"][:n])
    print(f"steps compared: {n}")
    for k in (0, 1, 2, 5, 10, 20, 50, 100, 200, 300, 500):
        if k < n:
            rel = abs(a["grad_norm"][k] - b["grad_norm"][k]) / max(a["grad_norm"][k], 1e-30)
            print(f"step {k:4d}: loss {a['loss'][k]:.7f} vs {b['loss'][k]:.7f} (|d| {d[k]:.2e}); "
                  f"grad norm {a['grad_norm'][k]:.5g} vs {b['grad_norm'][k]:.5g} (rel {rel:.2e})")
    for key in sorted((k for k in a.files if k.startswith("w") and k in b.files), key=lambda k: int(k[1:])):
        wa, wb = a[key], b[key]
        print(f"weights before step {key[1:]:>4}: max |d| {np.max(np.abs(wa - wb)):.3e}, "
              f"relative L2 {np.linalg.norm(wa - wb) / np.linalg.norm(wa):.3e}")
    for tol in (1e-6, 1e-4, 1e-2):
        parted = np.flatnonzero(d > tol)
        print(f"first step whose loss differs by more than {tol:g}: {int(parted[0]) if parted.size else 'none'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--every", type=int, default=25, help="keep the weights every N steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--sequence", default="pixels", choices=("pixels", "rows"))
    p.add_argument("--threads", type=int, default=2, help="the framework's threads: another thread count reorders "
                   "the sums of a matmul, so two runs of one backend differ by rounding too")
    p.add_argument("--perturb", type=float, default=0.0, help="move every starting weight by this much, relative "
                   "(1e-7: float32's rounding), to see how far one backend's own trajectory amplifies it")
    p.add_argument("--out", default="trace.npz")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"))
    args = p.parse_args()
    if args.compare:
        compare(*args.compare)
    else:
        trace(args.steps, args.every, args.out, args.seed, args.lr, args.sequence, args.threads, args.perturb)


if __name__ == "__main__":
    main()
