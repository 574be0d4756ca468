"""PyTorch adapter: nn.RNN / nn.GRU / nn.LSTM with batch_first=True and a hand-written loop."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from adapters.base import Adapter, CaseUnavailable, EvalResult, FitResult, PrecisionUnavailable, RuntimeInfo, timed_loop
from adapters.torch_common import profiled_kernel_path, set_torch_tf32, torch_kernel_policy, torch_tf32_state
from bench.core.batching import BatchPlan
from bench.core.canonical import CanonicalWeights, Direction
from bench.core.dataset import Dataset
from bench.core.specs import ModelSpec, TrainSpec
from bench.core.timer import StepTimer

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def layer_groups(model: ModelSpec) -> list[tuple[int, int, float]]:
    """Merge consecutive layers into one multi-layer module where that is the same model.

    Layers of equal width with no dropout between them become one `num_layers=k` module (the
    fused path cuDNN and oneDNN are fastest on); a width change or a dropout starts a new one.
    Returns (units, num_layers, dropout after the group).
    """
    groups: list[list] = []
    for units, rate in zip(model.units, model.dropout, strict=True):
        if groups and groups[-1][0] == units and groups[-1][2] == 0.0:
            groups[-1][1] += 1
            groups[-1][2] = rate
        else:
            groups.append([units, 1, rate])
    return [tuple(g) for g in groups]


def correct_count(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The batch's correct predictions, left on the device (read after the clock)."""
    return (logits.argmax(1) == labels).sum()


class RecurrentClassifier(nn.Module):
    """Recurrent stack -> Dense head on the last timestep, the same model the Keras adapter builds."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.bidirectional = spec.bidirectional
        self.last_units = spec.units[-1]
        kwargs = {"nonlinearity": spec.activation} if spec.cell == "rnn" else {}
        self.rnns = nn.ModuleList()
        self.drops = nn.ModuleList()
        in_size = spec.input_size
        for units, num_layers, rate in layer_groups(spec):
            self.rnns.append(
                CELLS[spec.cell](
                    in_size, units, num_layers=num_layers, batch_first=True, bidirectional=spec.bidirectional, **kwargs
                )
            )
            self.drops.append(nn.Dropout(rate) if rate else nn.Identity())
            in_size = units * (2 if spec.bidirectional else 1)
        self.head = nn.Linear(in_size, spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for rnn, drop in zip(self.rnns[:-1], self.drops[:-1], strict=True):
            x, _ = rnn(x)  # zero initial state: no h0/c0 passed
            x = drop(x)
        out, _ = self.rnns[-1](x)
        if self.bidirectional:
            # What Keras' Bidirectional(return_sequences=False) feeds the head: the forward
            # direction's output at the last step and the backward direction's final state,
            # which is its output at time 0 (not out[:, -1] of both directions).
            h = self.last_units
            last = torch.cat([out[:, -1, :h], out[:, 0, h:]], dim=1)
        else:
            last = out[:, -1]
        return self.head(self.drops[-1](last))


class TorchAdapter(Adapter):
    name = "torch"

    def __init__(self) -> None:
        self.device = torch.device("cpu")
        self._fit_optimizers: dict[int, torch.optim.Optimizer] = {}
        self._amp: torch.dtype | None = None  # autocast dtype (bf16/fp16), None for float32

    def set_precision(self, precision: str) -> None:
        set_torch_tf32(precision == "tf32")
        self._amp = AUTOCAST_DTYPES.get(precision)

    def _check_amp(self, spec: ModelSpec) -> None:
        """oneDNN's LSTM has no reduced-precision kernel on CPUs without bf16/fp16 instructions."""
        if self._amp is None or self.device.type != "cpu" or spec.cell != "lstm":
            return
        supported = (torch.ops.mkldnn._is_mkldnn_bf16_supported() if self._amp == torch.bfloat16
                     else torch.ops.mkldnn._is_mkldnn_fp16_supported())
        if not supported:
            name = "bf16" if self._amp == torch.bfloat16 else "fp16"
            raise PrecisionUnavailable(
                f"{name} LSTM on this CPU: PyTorch's oneDNN LSTM needs a CPU with {name} instructions "
                f"(AVX512-{name.upper()} or AMX; this one has {torch.backends.cpu.get_cpu_capability()}); "
                f"SimpleRNN and GRU run in {name} here")

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self._amp or torch.bfloat16, enabled=self._amp is not None)

    def _updater(self, optimizer: torch.optim.Optimizer):
        """loss -> backward and optimizer step; with fp16, through a gradient scaler (PyTorch's AMP recipe)."""
        if self._amp != torch.float16:
            def update(loss):
                loss.backward()
                optimizer.step()
            return update
        scaler = torch.amp.GradScaler(self.device.type)

        def scaled(loss):
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        return scaled

    def learning_rate_now(self, model: nn.Module) -> float | None:
        optimizer = self._fit_optimizers.get(id(model))
        return None if optimizer is None else float(optimizer.param_groups[0]["lr"])

    def setup(self, device: str, threads: int, seed: int) -> None:
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:  # only settable once per process, before parallel work starts
            pass
        if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
            self.device = torch.device("cuda")
        torch.manual_seed(seed)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def build(self, model: ModelSpec, train: TrainSpec) -> nn.Module:
        self._check_amp(model)
        return RecurrentClassifier(model).to(self.device)

    def fit(self, model: nn.Module, data: Dataset, train: TrainSpec, plan: BatchPlan, timer: StepTimer) -> FitResult:
        x, y = self._to_device(data.x_train, data.y_train)
        optimizer, criterion = self._optimizer(model, train), nn.CrossEntropyLoss()
        # Step k uses lr0 * lr_factor(k), as Keras' schedules and TF1's decay functions do.
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, train.lr_factor)
        self._fit_optimizers[id(model)] = optimizer
        net = self._net(model)
        net.train()
        update = self._updater(optimizer)

        def prepare(sel: np.ndarray):
            (sel_t,) = self._to_device(sel)
            return x.index_select(0, sel_t), y.index_select(0, sel_t)  # on the device, untimed

        def step(batch):
            xb, yb = batch
            optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                logits = net(xb)
                loss = criterion(logits, yb)
            update(loss)
            schedule.step()  # inside the step: Keras and TF1 compute their decayed rate inside theirs
            # the accuracy metric inside the clock, as Keras' compiled step and TF1's fetched `correct` hold it
            return loss, correct_count(logits, yb), len(yb)

        def read(out):
            loss, correct, n = out
            return loss.item(), int(correct), n

        return timed_loop(plan, train.batch_size, timer, prepare, step, read)

    def _optimizer(self, model: nn.Module, train: TrainSpec) -> torch.optim.Optimizer:
        if train.optimizer == "sgd":
            return torch.optim.SGD(model.parameters(), lr=train.learning_rate)
        # Keras' Adam default epsilon, so both frameworks run the same optimizer settings.
        return torch.optim.Adam(model.parameters(), lr=train.learning_rate, eps=train.adam_epsilon)

    @torch.no_grad()
    def logits(self, model: nn.Module, x) -> np.ndarray:
        model.eval()
        (xb,) = self._to_device(x)
        net = self._inference_net(model)
        with self._autocast():
            out = net(xb).float().cpu().numpy()
        model.train()
        return out

    def _inference_net(self, model: nn.Module) -> nn.Module:
        """The module inference calls: the model itself here; its compiled wrapper in the compiled variants."""
        return model

    def inference_path(self, model: nn.Module) -> str:
        return "eager (eval(), no_grad)"

    @staticmethod
    def _recurrent_layers(model: nn.Module) -> list[tuple[nn.Module, int]]:
        """(module, index inside it) for each layer of the spec, in order."""
        return [(rnn, k) for rnn in model.rnns for k in range(rnn.num_layers)]

    def get_weights(self, model: nn.Module) -> CanonicalWeights:
        def get(rnn, name):
            return getattr(rnn, name).detach().cpu().numpy().copy()

        layers = []
        for rnn, k in self._recurrent_layers(model):
            suffixes = ["", "_reverse"] if rnn.bidirectional else [""]
            layers.append([
                Direction(*(get(rnn, f"{n}_l{k}{sfx}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
                for sfx in suffixes
            ])
        return CanonicalWeights(layers, model.head.weight.detach().cpu().numpy().copy(),
                                model.head.bias.detach().cpu().numpy().copy())

    @torch.no_grad()
    def set_weights(self, model: nn.Module, weights: CanonicalWeights) -> None:
        def put(param, value):
            if tuple(param.shape) != value.shape:
                raise ValueError(f"weight shape {value.shape} does not fit parameter {tuple(param.shape)}")
            param.copy_(torch.from_numpy(np.ascontiguousarray(value)))  # in place: keeps cuDNN's flat buffer

        for (rnn, k), layer in zip(self._recurrent_layers(model), weights.layers, strict=True):
            suffixes = ["", "_reverse"] if rnn.bidirectional else [""]
            for sfx, d in zip(suffixes, layer, strict=True):
                for n, value in (("weight_ih", d.w_ih), ("weight_hh", d.w_hh), ("bias_ih", d.b_ih), ("bias_hh", d.b_hh)):
                    put(getattr(rnn, f"{n}_l{k}{sfx}"), value)
        put(model.head.weight, weights.head_w)
        put(model.head.bias, weights.head_b)

    def _net(self, model: nn.Module) -> nn.Module:
        """The module the training steps call (the compiled variant returns a compiled wrapper)."""
        return model

    def train_step(self, model: nn.Module, train: TrainSpec):
        optimizer, criterion = self._optimizer(model, train), nn.CrossEntropyLoss()
        net = self._net(model)
        net.train()
        update = self._updater(optimizer)

        def step(x, y) -> float:
            xb, yb = self._to_device(x, y)
            optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                loss = criterion(net(xb), yb)
            update(loss)
            return loss.item()  # .item() waits for the device

        return step

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: Dataset, train: TrainSpec) -> EvalResult:
        model.eval()
        criterion = nn.CrossEntropyLoss(reduction="sum")
        x, y = self._to_device(data.x_test, data.y_test)
        loss_sum, correct = 0.0, 0
        for start in range(0, len(y), train.eval_batch_size):
            xb, yb = x[start : start + train.eval_batch_size], y[start : start + train.eval_batch_size]
            with self._autocast():
                logits = model(xb).float()
            loss_sum += float(criterion(logits, yb))
            correct += int((logits.argmax(1) == yb).sum())
        return EvalResult(loss=loss_sum / len(y), accuracy=correct / len(y))

    def count_params(self, model: nn.Module) -> int:
        return sum(p.numel() for p in model.parameters())

    def runtime_info(self, model: nn.Module) -> RuntimeInfo:
        if self.device.type == "cuda":
            device = f"cuda:{torch.cuda.current_device()} ({torch.cuda.get_device_name()})"
        else:
            device = "cpu"
        extra = {"threads_intra": torch.get_num_threads(), "threads_inter": torch.get_num_interop_threads(),
                 "matmul_precision": torch_tf32_state() + self._amp_text(), "compile_policy": torch_kernel_policy(),
                 "input_transfer": "none in the step: the training set is on the device before timing"}
        if self.device.type == "cuda":
            extra.update(cuda_version=torch.version.cuda, cudnn_version=str(torch.backends.cudnn.version()))
        return RuntimeInfo(
            framework="torch",
            framework_version=torch.__version__,
            backend="eager",
            compile_mode="eager",
            device_name=device,
            extra=extra,
        )

    def _amp_text(self) -> str:
        if self._amp is None:
            return ""
        return f", autocast {str(self._amp).removeprefix('torch.')}" + (" + GradScaler" if self._amp == torch.float16 else "")

    def phase_functions(self, model: nn.Module, train: TrainSpec, x, y):
        optimizer, criterion = self._optimizer(model, train), nn.CrossEntropyLoss()
        net = self._net(model)
        net.train()
        xb, yb = self._to_device(x, y)  # once, outside the timed calls
        update = self._updater(optimizer)

        def loss_of():
            with self._autocast():
                return criterion(net(xb), yb)

        def forward():
            loss = loss_of()
            self.sync()
            return loss

        def forward_backward():
            optimizer.zero_grad(set_to_none=True)
            loss_of().backward()
            self.sync()

        def step():
            optimizer.zero_grad(set_to_none=True)
            update(loss_of())
            self.sync()

        return {"forward": forward, "forward_backward": forward_backward, "step": step}

    def kernel_path(self, model: nn.Module, x, y) -> str:
        xb, yb = self._to_device(x, y)
        net = self._net(model)
        net.train()

        def forward_backward():
            with self._autocast():
                loss = nn.functional.cross_entropy(net(xb), yb)
            loss.backward()

        path = profiled_kernel_path(forward_backward, self.uses_gpu())
        model.zero_grad(set_to_none=True)
        return path

    def _to_device(self, *arrays: np.ndarray) -> tuple[torch.Tensor, ...]:
        return tuple(torch.from_numpy(a).to(self.device) for a in arrays)

    def uses_gpu(self) -> bool:
        return self.device.type == "cuda"

    def allocator_peak_mb(self) -> float | None:
        if self.device.type != "cuda":
            return None
        return torch.cuda.max_memory_allocated() / 2**20


class TorchCompileAdapter(TorchAdapter):
    """The same model with `torch.compile` (inductor) on the module: forward and backward compiled.

    By default Dynamo does not trace RNN modules (`torch._dynamo.config.allow_rnn = False`): it
    breaks the graph there and runs nn.LSTM eagerly, so only the head is compiled. The
    `torch-compile-rnn` variant sets allow_rnn, so Dynamo traces through the recurrent layers.
    Compilation happens in the first step and is reported in `first_step_ms`; graph breaks are
    counted and named in `compile_mode`.
    """

    name = "torch-compile"
    allow_rnn = False

    def __init__(self) -> None:
        super().__init__()
        self._compiled: dict[int, nn.Module] = {}
        self._graphs_before_inference: dict[int, int] = {}  # Dynamo's graph count at the first inference call

    def _net(self, model: nn.Module) -> nn.Module:
        import torch._dynamo

        torch._dynamo.config.allow_rnn = self.allow_rnn
        if id(model) not in self._compiled:
            self._compiled[id(model)] = torch.compile(model)
        return self._compiled[id(model)]

    def _inference_net(self, model: nn.Module) -> nn.Module:
        # Inference through the same compiled wrapper as training: eval() and no_grad are guards, so Dynamo
        # compiles an inference graph on the first call (infer_first_call_ms) instead of running eager code.
        from torch._dynamo.utils import counters

        if id(model) not in self._graphs_before_inference:
            self._graphs_before_inference[id(model)] = counters["stats"]["unique_graphs"]
        return self._net(model)

    def inference_path(self, model: nn.Module) -> str:
        from torch._dynamo.utils import counters

        compiled = counters["stats"]["unique_graphs"] - self._graphs_before_inference.get(id(model), 0)
        rnn = "rnn traced" if self.allow_rnn else "rnn eager (Dynamo skips RNN modules by default)"
        return (f"compiled: torch.compile (inductor), {compiled} graph(s) compiled for inference "
                f"(eval(), no_grad; {rnn})")

    def runtime_info(self, model: nn.Module) -> RuntimeInfo:
        from torch._dynamo.utils import counters

        info = super().runtime_info(model)
        breaks = counters.get("graph_break", {})
        n = sum(breaks.values())
        rnn = "rnn traced (allow_rnn=True)" if self.allow_rnn else "rnn eager (Dynamo skips RNN modules by default)"
        reasons = sorted({str(r).strip().splitlines()[0][:80] for r in breaks})
        detail = f"{n} graph break(s): {'; '.join(reasons)}" if n else "no graph breaks"
        extra = {**info.extra, "compile_policy": f"torch.compile mode=default, {info.extra['compile_policy']}"}
        return RuntimeInfo(info.framework, info.framework_version, "inductor", f"torch.compile, {rnn}, {detail}",
                           info.device_name, extra)


class TorchCompileRnnAdapter(TorchCompileAdapter):
    name = "torch-compile-rnn"
    allow_rnn = True

    def __init__(self) -> None:
        super().__init__()
        self._lstm_defect: str | None = None
        self._lstm_probed = False

    def _refuse_a_defective_lstm(self, model: nn.Module) -> None:
        if self.device.type == "cpu" and isinstance(model.rnns[0], nn.LSTM):
            defect = self.compiled_lstm_defect()
            if defect:
                raise CaseUnavailable(defect)

    def fit(self, model: nn.Module, data: Dataset, train: TrainSpec, plan: BatchPlan, timer: StepTimer) -> FitResult:
        self._refuse_a_defective_lstm(model)
        return super().fit(model, data, train, plan, timer)

    def kernel_path(self, model: nn.Module, x, y) -> str:
        self._refuse_a_defective_lstm(model)  # its profiled step would be the failing compiled step
        return super().kernel_path(model, x, y)

    def compiled_lstm_defect(self) -> str | None:
        """Whether a traced LSTM trains here, probed once per process on a tiny model.

        On CPU (torch 2.13 and 2.14.1 seen), Inductor traces nn.LSTM's oneDNN kernel with train=False
        inside the compiled forward, so its workspace output is undefined and the first training step
        raises ("expected Tensor() for op: torch.ops.aten.mkldnn_rnn_layer.default"). A probe, not a
        version list: a release that fixes it trains again without a change here.
        """
        if not self._lstm_probed:
            self._lstm_probed = True
            import torch._dynamo

            torch._dynamo.config.allow_rnn = True
            probe = torch.compile(nn.LSTM(3, 2, batch_first=True).to(self.device))
            try:
                probe(torch.zeros(2, 4, 3, device=self.device))[0].sum().backward()
            except Exception as exc:  # any failure of the traced kernel: named, and the case is unavailable
                why = str(exc).strip().splitlines()[-1][:160] if str(exc).strip() else type(exc).__name__
                self._lstm_defect = (
                    f"torch.compile with allow_rnn cannot train an LSTM on {self.device.type} with torch "
                    f"{torch.__version__} (a tiny traced LSTM fails: {type(exc).__name__}: {why}); "
                    "torch-compile, which leaves the LSTM eager, runs it")
            finally:
                torch._dynamo.reset()
        return self._lstm_defect
