"""TensorFlow 1.x graph mode, written the way reference case C (docs/reference-cases.md) writes it.

`tf.compat.v1` with eager execution disabled: placeholders, the input `tf.unstack`-ed into one
tensor per timestep, `BasicLSTMCell` / `GRUCell` / `BasicRNNCell` unrolled by `static_rnn`
(`static_bidirectional_rnn` for two directions), a hand-made output layer (W ~ truncated
normal, stddev 0.1; b = 0.1), softmax cross-entropy on one-hot labels, and a v1 optimizer,
fed batch by batch through a `Session`.

With Keras 3 installed, TensorFlow's v1 cells live in the legacy Keras package (`tf-keras`) and
are reachable only when TF_USE_LEGACY_KERAS=1 is set before TensorFlow is imported; the
registry sets it in this adapter's case process only.

Differences from the Keras and PyTorch adapters, all properties of the TF 1.x API:
- `BasicLSTMCell` keeps one bias, gate order (i, j, f, o), and adds `forget_bias` (1.0) to the
  forget gate at run time instead of initialising its bias to 1; the canonical layout carries the
  effective bias (stored + 1.0), so loaded weights compute the same function.
- `GRUCell` applies the reset gate *before* its recurrent matmul (Keras' reset_after=False);
  PyTorch and Keras' default apply it after. It is a different function (and 3H fewer weights per
  layer and direction than Keras' default GRU), so its weights have no canonical form.
- A feed_dict copies each batch into the graph inside `Session.run`, so that copy is inside the
  timed step; it is how TF 1.x programs are written (a 64x28x28 float32 batch is 200 kB).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow: the v1 cells need tf-keras
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from adapters.base import Adapter, EvalResult, FitResult, RuntimeInfo, timed_loop  # noqa: E402
from bench.core.batching import BatchPlan  # noqa: E402
from bench.core.canonical import CanonicalWeights, Direction  # noqa: E402
from bench.core.dataset import Dataset  # noqa: E402
from bench.core.specs import ModelSpec, TrainSpec  # noqa: E402
from bench.core.timer import StepTimer  # noqa: E402

v1 = tf.compat.v1
FORGET_BIAS = 1.0  # BasicLSTMCell(128, forget_bias=1.0), as the tutorial builds it
HEAD_STDDEV, HEAD_BIAS = 0.1, 0.1
# BasicLSTMCell's gate blocks are (i, j, f, o), j the candidate; the canonical order is (i, f, g, o).
_LSTM_TF_TO_TORCH = (0, 2, 1, 3)


def gru_reason() -> str:
    from adapters import get_info

    return get_info("tf1-graph").noncanonical_reason(ModelSpec("gru", (1,)))


def _cell(spec: ModelSpec, units: int):
    activation = {"tanh": tf.nn.tanh, "relu": tf.nn.relu}[spec.activation]
    cells = v1.nn.rnn_cell
    if spec.cell == "lstm":
        return cells.BasicLSTMCell(units, forget_bias=FORGET_BIAS, activation=activation)
    if spec.cell == "gru":
        return cells.GRUCell(units, activation=activation)
    return cells.BasicRNNCell(units, activation=activation)


def _blocks(a: np.ndarray, order: tuple[int, ...], axis: int) -> np.ndarray:
    parts = np.split(a, len(order), axis=axis)
    return np.concatenate([parts[i] for i in order], axis=axis)


class GraphModel:
    """A built graph, its session and the tensors the adapter runs."""

    def __init__(self, spec: ModelSpec, train: TrainSpec, threads: int, seed: int, gpu: bool) -> None:
        self.spec, self.graph = spec, tf.Graph()
        with self.graph.as_default():
            v1.set_random_seed(seed)
            self.x = v1.placeholder(tf.float32, [None, spec.timesteps, spec.input_size], name="x")
            self.y = v1.placeholder(tf.int64, [None], name="y")
            self.training = v1.placeholder_with_default(0.0, [], name="training")  # 1.0: dropout on
            inputs = tf.unstack(self.x, spec.timesteps, axis=1)
            self.cells: list[list] = []  # per layer: [forward] or [forward, backward]
            for i, (units, rate) in enumerate(zip(spec.units, spec.dropout, strict=True)):
                with v1.variable_scope(f"layer{i}"):
                    if spec.bidirectional:
                        fw, bw = _cell(spec, units), _cell(spec, units)
                        inputs, _, _ = v1.nn.static_bidirectional_rnn(fw, bw, inputs, dtype=tf.float32)
                        self.cells.append([fw, bw])
                    else:
                        cell = _cell(spec, units)
                        inputs, _ = v1.nn.static_rnn(cell, inputs, dtype=tf.float32)
                        self.cells.append([cell])
                if rate:
                    inputs = [v1.nn.dropout(o, rate=rate * self.training) for o in inputs]
            h = spec.units[-1]
            if spec.bidirectional:
                # What Keras' Bidirectional(return_sequences=False) feeds its head: the forward
                # output at the last step and the backward direction's final state, which is its
                # output at time 0, so all three frameworks build the same model.
                last = tf.concat([inputs[-1][:, :h], inputs[0][:, h:]], axis=1)
            else:
                last = inputs[-1]
            head_in = h * (2 if spec.bidirectional else 1)
            self.head_w = tf.Variable(v1.truncated_normal([head_in, spec.num_classes], stddev=HEAD_STDDEV), name="W")
            self.head_b = tf.Variable(tf.constant(HEAD_BIAS, shape=[spec.num_classes]), name="b")
            self.logits = tf.matmul(last, self.head_w) + self.head_b
            per_example = v1.nn.softmax_cross_entropy_with_logits_v2(
                labels=tf.one_hot(self.y, spec.num_classes), logits=self.logits
            )
            self.loss = tf.reduce_mean(per_example)
            self.loss_sum = tf.reduce_sum(per_example)
            self.correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(self.logits, 1), self.y), tf.int64))
            self.global_step = v1.train.get_or_create_global_step()
            self.learning_rate = self._learning_rate(train)
            if train.optimizer == "sgd":
                optimizer = v1.train.GradientDescentOptimizer(self.learning_rate)
            else:
                optimizer = v1.train.AdamOptimizer(self.learning_rate, epsilon=train.adam_epsilon)
            self.variables = v1.trainable_variables()
            # minimize() is compute_gradients() + apply_gradients(); split so the phase timing's
            # gradient-only output reuses the train op's gradient graph instead of building a second
            # one (building the gradients of an unrolled graph is most of a build's time).
            grads_and_vars = optimizer.compute_gradients(self.loss, var_list=self.variables)
            self.train_op = optimizer.apply_gradients(grads_and_vars, global_step=self.global_step)
            self.grad_sum = tf.add_n([tf.reduce_sum(g) for g, _ in grads_and_vars])  # needs every gradient
            # The clock's sync on a GPU: Session.run returns once its fetches are on the host, and the update's
            # kernels may still be queued on the device then. A variable the update wrote, read after it and
            # fetched to the host, comes back only once the device has run everything before it. On the CPU
            # every op has run when Session.run returns: nothing is added there.
            self.step_done = None
            if gpu:
                with tf.control_dependencies([self.train_op]):
                    self.step_done = tf.identity(self.head_b.read_value())
            self._assign = {}
            for var in self.variables:
                value = v1.placeholder(var.dtype.base_dtype, var.shape)
                self._assign[var.name] = (value, var.assign(value))
            init = v1.global_variables_initializer()
            self.graph.finalize()  # nothing may add ops later: every step runs the same graph
        config = v1.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads)
        config.gpu_options.allow_growth = True  # else TF reserves the whole card and memory figures mean nothing
        if not gpu:
            config.device_count["GPU"] = 0
        self.session = v1.Session(graph=self.graph, config=config)
        self.session.run(init)

    def _learning_rate(self, train: TrainSpec):
        lr, steps, rate = train.learning_rate, train.lr_decay_steps, train.lr_decay
        if train.lr_schedule == "exponential":
            return v1.train.exponential_decay(lr, self.global_step, steps, rate)
        if train.lr_schedule == "inverse-time":
            return v1.train.inverse_time_decay(lr, self.global_step, steps, rate)
        return tf.constant(lr, tf.float32)

    def feed(self, x: np.ndarray, y: np.ndarray | None = None, training: bool = False) -> dict:
        feed = {self.x: x, self.training: 1.0 if training else 0.0}
        if y is not None:
            feed[self.y] = y
        return feed

    def read(self, var) -> np.ndarray:
        return self.session.run(var)

    def write(self, var, value: np.ndarray) -> None:
        if tuple(var.shape) != value.shape:
            raise ValueError(f"weight shape {value.shape} does not fit variable {var.name} {tuple(var.shape)}")
        placeholder, op = self._assign[var.name]
        self.session.run(op, {placeholder: value.astype(np.float32)})


def _weights_of(cell) -> tuple:
    """(kernel, bias) of a BasicLSTMCell or BasicRNNCell: kernel is (in + H, G*H), inputs first."""
    by_suffix = {w.name.rsplit("/", 1)[-1].split(":")[0]: w for w in cell.weights}
    return by_suffix["kernel"], by_suffix["bias"]


class Tf1GraphAdapter(Adapter):
    name = "tf1-graph"

    def __init__(self) -> None:
        self._gpu = False
        self._threads, self._seed = 1, 0

    def setup(self, device: str, threads: int, seed: int) -> None:
        v1.disable_eager_execution()  # this process runs TF 1.x graphs only
        self._threads, self._seed = threads, seed
        self._gpu = device != "cpu" and bool(tf.config.list_physical_devices("GPU"))

    def build(self, model: ModelSpec, train: TrainSpec) -> GraphModel:
        return GraphModel(model, train, self._threads, self._seed, self._gpu)

    def fit(self, model: GraphModel, data: Dataset, train: TrainSpec, plan: BatchPlan, timer: StepTimer) -> FitResult:
        # inside the clock: the batch's copy by feed_dict, forward, loss, backward, the update and the accuracy
        # count (`correct`, fetched with the loss); on a GPU also the device's sync (GraphModel.step_done)
        fetches = [model.loss, model.correct, model.train_op] + ([model.step_done] if model.step_done is not None else [])
        return timed_loop(
            plan,
            train.batch_size,
            timer,
            prepare=lambda sel: model.feed(data.x_train[sel], data.y_train[sel], training=True),
            step=lambda feed: model.session.run(fetches, feed),  # returns numpy: the step is finished
            read=lambda out: (float(out[0]), int(out[1]), train.batch_size),
        )

    def train_step(self, model: GraphModel, train: TrainSpec):
        def step(x, y) -> float:
            loss, _ = model.session.run([model.loss, model.train_op], model.feed(x, y, training=True))
            return float(loss)

        return step

    def evaluate(self, model: GraphModel, data: Dataset, train: TrainSpec) -> EvalResult:
        loss_sum, correct = 0.0, 0
        for start in range(0, len(data.y_test), train.eval_batch_size):
            sl = slice(start, start + train.eval_batch_size)
            loss, right = model.session.run([model.loss_sum, model.correct], model.feed(data.x_test[sl], data.y_test[sl]))
            loss_sum += float(loss)
            correct += int(right)
        n = len(data.y_test)
        return EvalResult(loss=loss_sum / n, accuracy=correct / n)

    def count_params(self, model: GraphModel) -> int:
        return int(sum(np.prod(v.shape) for v in model.variables))

    def logits(self, model: GraphModel, x: np.ndarray) -> np.ndarray:
        return model.session.run(model.logits, model.feed(x))

    def inference_path(self, model: GraphModel) -> str:
        return "graph: Session.run of the logits (no XLA)"

    def weight_arrays(self, model: GraphModel) -> dict[str, np.ndarray]:
        if model.spec.cell == "gru":  # no canonical form: the variables under their TF names
            return {v.name: model.read(v) for v in model.variables}
        return super().weight_arrays(model)

    def learning_rate_now(self, model: GraphModel) -> float | None:
        return float(model.session.run(model.learning_rate))

    def keeps_recurrent_bias(self, cell: str) -> bool:
        return False  # one bias per gate block in every v1 cell

    def get_weights(self, model: GraphModel) -> CanonicalWeights:
        spec = model.spec
        if spec.cell == "gru":
            raise NotImplementedError(gru_reason())
        layers = []
        for cells in model.cells:
            dirs = []
            for cell in cells:
                kernel_var, bias_var = _weights_of(cell)
                kernel, bias = model.read(kernel_var), model.read(bias_var)
                n_in = kernel.shape[0] - cell.output_size
                if spec.cell == "lstm":
                    h = cell.output_size
                    bias = bias.copy()
                    bias[2 * h : 3 * h] += FORGET_BIAS  # the effective forget-gate bias
                    kernel, bias = _blocks(kernel, _LSTM_TF_TO_TORCH, 1), _blocks(bias, _LSTM_TF_TO_TORCH, 0)
                dirs.append(Direction(kernel[:n_in].T.copy(), kernel[n_in:].T.copy(), bias, np.zeros_like(bias)))
            layers.append(dirs)
        return CanonicalWeights(layers, model.read(model.head_w).T.copy(), model.read(model.head_b).copy())

    def set_weights(self, model: GraphModel, weights: CanonicalWeights) -> None:
        spec = model.spec
        if spec.cell == "gru":
            raise NotImplementedError(gru_reason())
        weights = weights.merged_biases()  # one bias = b_ih + b_hh: the same function
        for cells, layer in zip(model.cells, weights.layers, strict=True):
            for cell, d in zip(cells, layer, strict=True):
                kernel_var, bias_var = _weights_of(cell)
                kernel, bias = np.concatenate([d.w_ih.T, d.w_hh.T], axis=0), d.b_ih.copy()
                if spec.cell == "lstm":
                    kernel, bias = _blocks(kernel, _LSTM_TF_TO_TORCH, 1), _blocks(bias, _LSTM_TF_TO_TORCH, 0)
                    h = cell.output_size
                    bias[2 * h : 3 * h] -= FORGET_BIAS  # the cell adds it back at run time
                model.write(kernel_var, kernel)
                model.write(bias_var, bias)
        model.write(model.head_w, weights.head_w.T)
        model.write(model.head_b, weights.head_b)

    def set_precision(self, precision: str) -> None:
        # A TF 1.x program has no mixed-precision policy; the registry lets only fp32 and tf32 through.
        super().set_precision(precision)
        tf.config.experimental.enable_tensor_float_32_execution(precision == "tf32")

    def runtime_info(self, model: GraphModel) -> RuntimeInfo:
        import tf_keras

        device = "cpu"
        if self._gpu:
            device = "/GPU:0 (" + tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0]).get(
                "device_name", "GPU") + ")"
        tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
        extra = {"threads_intra": self._threads, "threads_inter": self._threads,
                 "matmul_precision": f"tf32 {'on' if tf32 else 'off'}, float32 graph",
                 "compile_policy": "graph mode, no XLA (tf.compat.v1 Session)",
                 "input_transfer": "per batch inside the step (feed_dict, copied by Session.run)"}
        if self._gpu:
            build = tf.sysconfig.get_build_info()
            extra.update(cuda_version=build.get("cuda_version"), cudnn_version=build.get("cudnn_version"))
        return RuntimeInfo(
            framework="tensorflow",
            framework_version=tf.__version__,
            backend=f"tf.compat.v1 graph, tf_keras {tf_keras.__version__} cells",
            compile_mode="graph (Session.run, static_rnn unrolled)",
            device_name=device,
            extra=extra,
        )

    def phase_functions(self, model: GraphModel, train: TrainSpec, x, y):
        feed = model.feed(x, y, training=True)

        def run(fetch):
            return lambda: model.session.run(fetch, feed)  # returns numpy: synchronized

        step = model.train_op if model.step_done is None else [model.train_op, model.step_done]
        return {"forward": run(model.loss), "forward_backward": run(model.grad_sum), "step": run(step)}

    def kernel_path(self, model: GraphModel, x, y) -> str:
        t = model.spec.timesteps
        return f"unrolled graph (static_rnn): {t} copies of the cell's matmuls, no fused RNN kernel"

    def uses_gpu(self) -> bool:
        return self._gpu

    def allocator_peak_mb(self) -> float | None:
        if not self._gpu:
            return None
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
