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

from adapters.base import Adapter, EvalResult, FitResult, RuntimeInfo  # noqa: E402
from adapters.kernel_rules import keras_kernel_path  # noqa: E402
from bench.batching import BatchPlan  # noqa: E402
from bench.data import Dataset  # noqa: E402
from bench.specs import ModelSpec, TrainSpec  # noqa: E402
from bench.timing import StepTimer  # noqa: E402

CELLS = {"rnn": keras.layers.SimpleRNN, "gru": keras.layers.GRU, "lstm": keras.layers.LSTM}


class _StepTimerCallback(keras.callbacks.Callback):
    """Times each step of model.fit's own loop without changing what fit does.

    Reading the loss as a Python float forces the step's result, which is the device
    synchronization the protocol requires before the clock is read.
    """

    def __init__(self, timer: StepTimer) -> None:
        super().__init__()
        self.timer = timer
        self.diverged = False

    def on_train_batch_begin(self, batch, logs=None):
        self.timer.start()

    def on_train_batch_end(self, batch, logs=None):
        loss = float(logs["loss"])
        self.timer.stop()
        if not math.isfinite(loss):
            self.diverged = True
            self.model.stop_training = True


class KerasAdapter(Adapter):
    name = "keras"

    _gpu = False

    def setup(self, device: str, threads: int, seed: int) -> None:
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
            for gpu in tf.config.list_physical_devices("GPU"):
                # Without growth TF reserves the whole card, and memory figures mean nothing.
                tf.config.experimental.set_memory_growth(gpu, True)
            self._gpu = bool(tf.config.list_logical_devices("GPU"))
        keras.utils.set_random_seed(seed)

    def build(self, model: ModelSpec, train: TrainSpec) -> keras.Model:
        self._spec = model
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
        net.compile(
            optimizer=keras.optimizers.Adam(learning_rate=train.learning_rate, epsilon=train.adam_epsilon),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        return net

    def fit(self, model: keras.Model, data: Dataset, train: TrainSpec, plan: BatchPlan, timer: StepTimer) -> FitResult:
        callback = _StepTimerCallback(timer)
        history: dict = {}
        epochs = 0
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
        return FitResult(
            steps=timer.steps,
            epochs=epochs,
            train_loss=float(history.get("loss", [math.nan])[-1]),
            train_accuracy=float(history.get("accuracy", [math.nan])[-1]),
            diverged=callback.diverged,
        )

    def train_step(self, model: keras.Model, train: TrainSpec):
        def step(x, y) -> float:
            return float(model.train_on_batch(x, y, return_dict=True)["loss"])  # float(): forces the result

        return step

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
        else:
            device = "see backend"
        return RuntimeInfo(
            framework="keras",
            framework_version=keras.__version__,
            backend=backend,
            compile_mode="xla" if model.jit_compile else "tf.function",
            device_name=device,
            extra=extra,
        )

    def sync(self) -> None:
        if self.uses_gpu():
            import tensorflow as tf

            tf.test.experimental.sync_devices()

    def phase_functions(self, model: keras.Model, train: TrainSpec):
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

        def synced(fn):
            def call(x, y):
                out = fn(x, y).numpy()  # reading the result forces the computation
                self.sync()
                return out

            return call

        return {"forward": synced(forward), "forward_backward": synced(forward_backward), "step": synced(step)}

    def kernel_path(self, model: keras.Model, x, y) -> str:
        return keras_kernel_path(self._spec, self.uses_gpu(), keras.backend.backend())

    def uses_gpu(self) -> bool:
        return self._gpu

    def allocator_peak_mb(self) -> float | None:
        if not self.uses_gpu():
            return None
        import tensorflow as tf

        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
