"""Keras 3 adapter: the model built with keras.layers and trained with `model.fit`, as users do.

The backend is chosen by KERAS_BACKEND, which the runner sets in this case's process before
Keras is imported (a process never switches backends).
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ start-up chatter out of the logs

import keras  # noqa: E402
import numpy as np  # noqa: E402

from adapters.base import Adapter, EvalResult, FitResult, RuntimeInfo  # noqa: E402
from adapters.kernel_rules import FUSED_FUNCTIONS, keras_path_from_calls  # noqa: E402
from bench.core.batching import BatchPlan  # noqa: E402
from bench.core.canonical import CanonicalWeights, Direction  # noqa: E402
from bench.core.dataset import Dataset  # noqa: E402
from bench.core.specs import ModelSpec, TrainSpec  # noqa: E402
from bench.core.timer import StepTimer  # noqa: E402

CELLS = {"rnn": keras.layers.SimpleRNN, "gru": keras.layers.GRU, "lstm": keras.layers.LSTM}
# Keras' documented mixed precision: compute in 16 bits, variables in float32; with mixed_float16,
# compile() wraps the optimizer in a LossScaleOptimizer (dynamic loss scaling).
POLICIES = {"fp32": "float32", "tf32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


# Keras' GRU gate blocks are (z, r, h); PyTorch's (and the canonical layout's) are (r, z, n).
# SimpleRNN has one block and LSTM's (i, f, c, o) already matches PyTorch's (i, f, g, o).
_GRU_KERAS_TO_TORCH = (1, 0, 2)


def _to_torch_gates(a: np.ndarray, cell: str, h: int) -> np.ndarray:
    if cell != "gru":
        return np.array(a, copy=True)
    return np.concatenate([a[i * h : (i + 1) * h] for i in _GRU_KERAS_TO_TORCH])


def _from_torch_gates(a: np.ndarray, cell: str, h: int) -> np.ndarray:
    return _to_torch_gates(a, cell, h)  # the (1, 0, 2) swap is its own inverse


def _np(variable) -> np.ndarray:
    return keras.ops.convert_to_numpy(variable.value)


def _assign(variable, value: np.ndarray) -> None:
    if tuple(variable.shape) != value.shape:
        raise ValueError(f"weight shape {value.shape} does not fit variable {variable.path} {tuple(variable.shape)}")
    variable.assign(value.astype(np.float32))


class _TimedTrainFunction:
    """Keras' own compiled train function with the harness's clock around the step alone, installed as
    `model.train_function` for the length of a `fit` call, so `fit` runs as users run it.

    `fit` hands its train function the batch iterator (TensorFlow, JAX) or the drawn batch (torch), and
    Keras' own function would draw the batch inside the step (tf.data's get_next in the TensorFlow graph;
    `next()` before the jitted step in JAX) and copy it to the device there. Here the batch is drawn and put
    where the step needs it first, outside the clock, as every other adapter does; then Keras' own step
    runs on it (every backend's train function also takes a plain list of batches: that is how
    `train_on_batch` calls it). Inside the clock: forward, loss, backward, the optimizer's update and
    Keras' metrics (the loss mean and the accuracy): the same work as the torch adapter's step.
    """

    def __init__(self, keras_fn, timer: StepTimer, backend: str, sync) -> None:
        self.keras_fn, self.timer, self.backend, self.sync = keras_fn, timer, backend, sync
        self.tf_device = None
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_logical_devices("GPU")
            self.tf_device = gpus[0].name if gpus else "/CPU:0"

    def __call__(self, *args):
        if self.backend == "jax":  # (state, iterator) -> (logs, state)
            state, iterator = args
            batch = self.place(next(iterator))
            self.timer.start()
            out = self.keras_fn(state, iter([batch]))
            import jax

            jax.block_until_ready(out)  # JAX dispatches asynchronously: the step is done when its outputs are
            self.timer.stop()
            return out
        (source,) = args  # TensorFlow: the tf.data iterator; torch: the list of one drawn batch
        batch = self.place(next(source) if self.backend == "tensorflow" else source[0])
        self.timer.start()  # the timer synchronizes the device before each clock read (KerasAdapter.sync)
        logs = self.keras_fn([batch])
        self.timer.stop()
        return logs

    def place(self, batch):
        """The batch as device tensors, ready before the clock starts."""
        convert = keras.ops.convert_to_tensor
        if self.backend == "tensorflow":
            import tensorflow as tf

            with tf.device(self.tf_device):
                batch = keras.tree.map_structure(lambda t: t if t is None else tf.identity(t), batch)
        else:  # jax, torch: convert_to_tensor puts the array on the backend's default device
            batch = keras.tree.map_structure(lambda t: t if t is None else convert(t), batch)
        if self.backend == "jax":
            import jax

            jax.block_until_ready(batch)
        self.sync()
        return batch


class _StepCallback(keras.callbacks.Callback):
    """Between two steps of model.fit's loop: the first loss, divergence, and the harness's between-step
    work (progress, curve evaluations), after the step's clock was read (_TimedTrainFunction)."""

    def __init__(self, timer: StepTimer) -> None:
        super().__init__()
        self.timer = timer
        self.diverged = False
        self.first_loss = math.nan

    def on_train_batch_end(self, batch, logs=None):
        loss = float(logs["loss"])
        if self.timer.steps == 1:
            self.first_loss = loss  # the epoch's running mean after one batch is that batch's loss
        if not math.isfinite(loss):
            self.diverged = True
            self.model.stop_training = True
        self.timer.after_step(loss)  # the running mean: what Keras' own progress bar shows


def _learning_rate(train: TrainSpec):
    """A float, or Keras' schedule object for TrainSpec's schedule (evaluated at optimizer.iterations,
    which is 0 for the first update, as TrainSpec.lr_factor counts).

    Keras 3 dropped the optimizers' `decay` argument; Keras 2's Adam(decay=d) computed
    lr / (1 + d * iterations), which is InverseTimeDecay with decay_steps=1 and decay_rate=d.
    """
    if train.lr_schedule == "inverse-time":
        return keras.optimizers.schedules.InverseTimeDecay(train.learning_rate, train.lr_decay_steps, train.lr_decay)
    if train.lr_schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(train.learning_rate, train.lr_decay_steps, train.lr_decay)
    return train.learning_rate


def fused_calls(model: keras.Model, x) -> list[tuple[str, str]]:
    """Which of the backend's fused recurrent functions one training forward pass called, and whether
    each ran or declined (NotImplementedError, after which the layer runs its generic loop).

    The layers look the functions up on `keras.src.backend` at call time; an eager call makes the same
    Python choice as the traced one (two examples: the choice does not depend on the batch)."""
    from keras.src import backend as keras_backend

    calls: list[tuple[str, str]] = []
    originals = {name: getattr(keras_backend, name) for name in FUSED_FUNCTIONS if hasattr(keras_backend, name)}

    def recording(name, fn):
        def call(*args, **kwargs):
            try:
                out = fn(*args, **kwargs)
            except NotImplementedError as exc:
                calls.append((name, f"declined: {exc}" if str(exc) else "declined"))
                raise
            calls.append((name, "ran"))
            return out
        return call

    try:
        for name, fn in originals.items():
            setattr(keras_backend, name, recording(name, fn))
        model(x, training=True)
    finally:
        for name, fn in originals.items():
            setattr(keras_backend, name, fn)
    return calls


class KerasAdapter(Adapter):
    name = "keras"

    _gpu = False

    def setup(self, device: str, threads: int, seed: int) -> None:
        """Threads, seed, and the device: `cpu` hides the GPUs from the backend here too (the runner
        also hides them from the case's process), so in-process callers get what they asked for."""
        backend = keras.backend.backend()
        cpu = device == "cpu"
        if backend == "tensorflow":
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
            gpus = tf.config.list_physical_devices("GPU")
            if cpu and gpus:
                tf.config.set_visible_devices([], "GPU")  # before the runtime starts, as TF requires
            for gpu in [] if cpu else gpus:
                # Without growth TF reserves the whole card, and memory figures mean nothing.
                tf.config.experimental.set_memory_growth(gpu, True)
            self._gpu = not cpu and bool(tf.config.list_logical_devices("GPU"))
        elif backend == "torch":
            import torch
            from keras.src.backend.torch import core as torch_core

            torch.set_num_threads(threads)
            if cpu:  # what KERAS_TORCH_DEVICE=cpu does at import time, for a backend already imported
                torch_core.DEFAULT_DEVICE = "cpu"
            self._gpu = not cpu and torch.cuda.is_available()
        elif backend == "jax":
            import jax  # threads: XLA's CPU pool follows the process's cores; recorded, not set

            if cpu:
                jax.config.update("jax_platforms", "cpu")  # effective until JAX's backends start
            self._gpu = not cpu and jax.devices()[0].platform == "gpu"
        keras.utils.set_random_seed(seed)

    def set_precision(self, precision: str) -> None:
        tf32 = precision == "tf32"
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.enable_tensor_float_32_execution(tf32)  # TF's own default: on
        elif backend == "torch":
            from adapters.torch_common import set_torch_tf32

            set_torch_tf32(tf32)
        elif backend == "jax":
            import jax

            jax.config.update("jax_default_matmul_precision", "tensorfloat32" if tf32 else "float32")
        keras.mixed_precision.set_dtype_policy(POLICIES[precision])

    def _precision_in_force(self, model: keras.Model) -> str:
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            matmul = f"tf32 {'on' if tf.config.experimental.tensor_float_32_execution_enabled() else 'off'}"
        elif backend == "torch":
            from adapters.torch_common import torch_tf32_state

            matmul = torch_tf32_state()
        else:
            import jax

            matmul = f"jax matmul {jax.config.jax_default_matmul_precision or 'default'}"
        rnn = self._recurrent_layers(model)[0][0]
        text = f"{matmul}, policy {rnn.dtype_policy.name}"
        if isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer):
            text += " + LossScaleOptimizer"
        return text

    def build(self, model: ModelSpec, train: TrainSpec) -> keras.Model:
        self._spec, self._train = model, train
        inputs = keras.Input(shape=(None, model.input_size))
        x = inputs
        for i, (units, rate) in enumerate(zip(model.units, model.dropout, strict=True)):
            layer = CELLS[model.cell](units, activation=model.activation, return_sequences=i < model.layers - 1)
            if model.bidirectional:
                layer = keras.layers.Bidirectional(layer)
            x = layer(x)
            if rate:
                x = keras.layers.Dropout(rate)(x)
        outputs = keras.layers.Dense(model.num_classes)(x)
        net = keras.Model(inputs, outputs, name=model.key.replace(".", "_"))
        lr = _learning_rate(train)
        if train.optimizer == "sgd":
            optimizer = keras.optimizers.SGD(learning_rate=lr)
        else:
            optimizer = keras.optimizers.Adam(learning_rate=lr, epsilon=train.adam_epsilon)
        net.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            jit_compile={"auto": "auto", "on": True, "off": False}[train.jit_compile],
        )
        return net

    def fit(self, model: keras.Model, data: Dataset, train: TrainSpec, plan: BatchPlan, timer: StepTimer) -> FitResult:
        callback = _StepCallback(timer)
        history: dict = {}
        epochs = 0
        model.make_train_function()  # Keras' own, built once and reused across the fit calls below
        keras_fn = model.train_function
        model.train_function = _TimedTrainFunction(keras_fn, timer, keras.backend.backend(), self.sync)
        try:
            # One fit call per epoch so that the harness, not Keras, decides the order of examples;
            # shuffle=False keeps that order. Keras reuses its compiled train function across calls.
            for epoch, idx in enumerate(plan.epochs_indices()):
                h = model.fit(
                    data.x_train[idx],
                    data.y_train[idx],
                    batch_size=train.batch_size,
                    epochs=epoch + 1,
                    initial_epoch=epoch,
                    shuffle=False,
                    verbose=0,
                    callbacks=[callback],
                )
                history = h.history
                epochs += 1
                if callback.diverged:
                    break
        finally:
            model.train_function = keras_fn  # train_on_batch and later fits get Keras' own function back
        return FitResult(
            steps=timer.steps,
            epochs=epochs,
            train_loss=float(history.get("loss", [math.nan])[-1]),
            train_accuracy=float(history.get("accuracy", [math.nan])[-1]),
            diverged=callback.diverged,
            first_loss=callback.first_loss,
        )

    def train_step(self, model: keras.Model, train: TrainSpec):
        def step(x, y) -> float:
            return float(model.train_on_batch(x, y, return_dict=True)["loss"])  # float(): forces the result

        return step

    def learning_rate_now(self, model: keras.Model) -> float | None:
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))  # a schedule evaluated at iterations

    def keeps_recurrent_bias(self, cell: str) -> bool:
        return cell == "gru"  # reset_after=True keeps [input bias, recurrent bias]

    def logits(self, model: keras.Model, x) -> np.ndarray:
        if hasattr(model, "jax_state_sync"):  # JAX: inside fit, the trained state is the trainer's
            model.jax_state_sync()  # until synced back (what Keras' callbacks do before reading it)
        # predict_on_batch runs Keras' compiled predict function (tf.function, jit), 14x faster than an eager
        # model(x) call for a 2x128 LSTM batch on TF, with the same logits: the curve's evaluations use this
        return np.asarray(model.predict_on_batch(x))

    def inference_path(self, model: keras.Model) -> str:
        """Keras' predict function as this backend builds it (keras/src/backend/*/trainer.py's make_predict_function)."""
        backend, jit = keras.backend.backend(), bool(model.jit_compile)
        if backend == "tensorflow":
            return "compiled: predict_on_batch, tf.function" + (" with XLA (jit_compile)" if jit else " (no XLA)")
        if backend == "jax":
            return "compiled: predict_on_batch, jax.jit (XLA)" if jit else "eager: predict_on_batch, jax without jit"
        return "compiled: predict_on_batch, torch.compile" if jit else "eager: predict_on_batch, torch no_grad"

    @staticmethod
    def _recurrent_layers(model: keras.Model) -> list[list]:
        """Per spec layer, its Keras RNN layers: [forward] or [forward, backward]."""
        out = []
        for layer in model.layers:
            if isinstance(layer, keras.layers.Bidirectional):
                out.append([layer.forward_layer, layer.backward_layer])
            elif isinstance(layer, keras.layers.RNN):
                out.append([layer])
        return out

    def get_weights(self, model: keras.Model) -> CanonicalWeights:
        layers = []
        for rnns in self._recurrent_layers(model):
            dirs = []
            for rnn in rnns:
                cell, h = rnn.cell, rnn.cell.units
                w_ih = _to_torch_gates(_np(cell.kernel).T, self._spec.cell, h)
                w_hh = _to_torch_gates(_np(cell.recurrent_kernel).T, self._spec.cell, h)
                bias = _np(cell.bias)
                if bias.ndim == 2:  # GRU reset_after=True: [input bias, recurrent bias]
                    b_ih, b_hh = (_to_torch_gates(b, "gru", h) for b in bias)
                else:
                    b_ih, b_hh = bias.copy(), np.zeros_like(bias)
                dirs.append(Direction(w_ih, w_hh, b_ih, b_hh))
            layers.append(dirs)
        head = model.layers[-1]
        return CanonicalWeights(layers, _np(head.kernel).T.copy(), _np(head.bias).copy())

    def set_weights(self, model: keras.Model, weights: CanonicalWeights) -> None:
        cell_kind = self._spec.cell
        if cell_kind != "gru":
            weights = weights.merged_biases()  # one Keras bias = b_ih + b_hh: the same function
        for rnns, layer in zip(self._recurrent_layers(model), weights.layers, strict=True):
            for rnn, d in zip(rnns, layer, strict=True):
                cell, h = rnn.cell, rnn.cell.units
                _assign(cell.kernel, _from_torch_gates(d.w_ih, cell_kind, h).T)
                _assign(cell.recurrent_kernel, _from_torch_gates(d.w_hh, cell_kind, h).T)
                if cell_kind == "gru":
                    _assign(cell.bias, np.stack([_from_torch_gates(d.b_ih, "gru", h), _from_torch_gates(d.b_hh, "gru", h)]))
                else:
                    _assign(cell.bias, d.b_ih)
        head = model.layers[-1]
        _assign(head.kernel, weights.head_w.T)
        _assign(head.bias, weights.head_b)

    def evaluate(self, model: keras.Model, data: Dataset, train: TrainSpec) -> EvalResult:
        out = model.evaluate(data.x_test, data.y_test, batch_size=train.eval_batch_size, verbose=0, return_dict=True)
        return EvalResult(loss=float(out["loss"]), accuracy=float(out["accuracy"]))

    def count_params(self, model: keras.Model) -> int:
        return int(model.count_params())

    def runtime_info(self, model: keras.Model) -> RuntimeInfo:
        backend = keras.backend.backend()
        extra: dict = {}
        if backend == "tensorflow":
            import tensorflow as tf

            backend = f"tensorflow {tf.__version__}"
            gpus = tf.config.list_logical_devices("GPU")
            device = gpus[0].name if gpus else "cpu"
            threading = tf.config.threading
            extra = {
                "threads_intra": threading.get_intra_op_parallelism_threads(),
                "threads_inter": threading.get_inter_op_parallelism_threads(),
            }
            if gpus:
                build = tf.sysconfig.get_build_info()
                extra.update(cuda_version=build.get("cuda_version"), cudnn_version=build.get("cudnn_version"))
            compile_mode = "xla" if model.jit_compile else "tf.function"
        elif backend == "jax":
            import jax

            backend, device = f"jax {jax.__version__}", str(jax.devices()[0]) if self._gpu else "cpu"
            compile_mode = "jax.jit (xla)" if model.jit_compile else "eager"
        else:
            import torch

            backend = f"torch {torch.__version__}"
            device = f"cuda:{torch.cuda.current_device()}" if self._gpu else "cpu"
            compile_mode = "torch.compile" if model.jit_compile else "eager"
            extra = {"threads_intra": torch.get_num_threads(), "threads_inter": torch.get_num_interop_threads()}
        extra["matmul_precision"] = self._precision_in_force(model)
        extra["compile_policy"] = f"jit_compile={model.jit_compile}"
        # model.fit takes host arrays: its data adapter draws each batch, and _TimedTrainFunction copies it to the
        # device between steps, before the clock (torch keeps the whole set on the device)
        extra["input_transfer"] = ("per batch between the steps, outside the clock (model.fit's data adapter, then "
                                   "a copy to the device)" if self._gpu else "none (CPU: the batch is already in memory)")
        if backend.startswith("torch"):
            from adapters.torch_common import torch_kernel_policy

            extra["compile_policy"] += ", " + torch_kernel_policy()
        return RuntimeInfo(
            framework="keras",
            framework_version=keras.__version__,
            backend=backend,
            compile_mode=compile_mode,
            device_name=device,
            extra=extra,
        )

    def sync(self) -> None:
        if not self._gpu:
            return
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            tf.test.experimental.sync_devices()
        elif backend == "torch":
            import torch

            torch.cuda.synchronize()
        # jax: reading the loss as a float already blocks until the step is done

    def phase_functions(self, model: keras.Model, train: TrainSpec, x, y):
        if keras.backend.backend() != "tensorflow":
            return {}
        import tensorflow as tf

        loss_fn, optimizer, variables = model.loss, model.optimizer, model.trainable_variables
        jit = bool(model.jit_compile)

        @tf.function(jit_compile=jit)
        def forward(x, y):
            return loss_fn(y, model(x, training=True))

        @tf.function(jit_compile=jit)
        def forward_backward(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, variables)
            return tf.add_n([tf.reduce_sum(g) for g in grads])  # one output that needs every gradient

        @tf.function(jit_compile=jit)
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            optimizer.apply(tape.gradient(loss, variables), variables)
            return loss

        xt, yt = tf.convert_to_tensor(x), tf.convert_to_tensor(y)  # once, outside the timed calls

        def synced(fn):
            def call():
                out = fn(xt, yt).numpy()  # reading the result forces the computation
                self.sync()
                return out

            return call

        return {"forward": synced(forward), "forward_backward": synced(forward_backward), "step": synced(step)}

    def kernel_path(self, model: keras.Model, x, y) -> str:
        backend = keras.backend.backend()
        if backend == "torch":  # Keras' torch backend calls torch's own RNN kernels where it can: ask the profiler
            from adapters.torch_common import profiled_kernel_path

            return profiled_kernel_path(lambda: self.train_step(model, self._train)(x, y), self._gpu)
        return keras_path_from_calls(fused_calls(model, x[:2]), self._spec, self._gpu, backend)

    def uses_gpu(self) -> bool:
        return self._gpu

    def allocator_peak_mb(self) -> float | None:
        if not self._gpu:
            return None
        backend = keras.backend.backend()
        if backend == "torch":
            import torch

            return torch.cuda.max_memory_allocated() / 2**20
        if backend == "jax":
            import jax

            return jax.devices()[0].memory_stats().get("peak_bytes_in_use", 0) / 2**20
        import tensorflow as tf

        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
