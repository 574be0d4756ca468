"""PyTorch adapter: nn.RNN / nn.GRU / nn.LSTM with batch_first=True and a hand-written loop."""

from __future__ import annotations

import math

import torch
from torch import nn

from adapters.base import Adapter, EvalResult, FitResult, RuntimeInfo
from bench.batching import BatchPlan
from bench.data import Dataset
from bench.specs import ModelSpec, TrainSpec
from bench.timing import StepTimer

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


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


def _with_device_inputs(fn, to_dev):
    cache = {}

    def call(x, y):
        key = (id(x), id(y))
        if key not in cache:
            cache.clear()
            cache[key] = to_dev(x, y)
        return fn(*cache[key])

    return call


class TorchAdapter(Adapter):
    name = "torch"

    def __init__(self) -> None:
        self.device = torch.device("cpu")

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
        return RecurrentClassifier(model).to(self.device)

    def fit(self, model: nn.Module, data: Dataset, train: TrainSpec, plan: BatchPlan, timer: StepTimer) -> FitResult:
        x = torch.from_numpy(data.x_train).to(self.device)
        y = torch.from_numpy(data.y_train).to(self.device)
        optimizer, criterion = self._optimizer(model, train), nn.CrossEntropyLoss()
        b = train.batch_size
        model.train()
        epochs, loss_sum, correct, seen, diverged = 0, 0.0, 0, 0, False
        for idx in plan.epochs_indices():
            epochs += 1
            loss_sum, correct, seen = 0.0, 0, 0
            idx_t = torch.from_numpy(idx).to(self.device)
            for start in range(0, len(idx), b):
                sel = idx_t[start : start + b]
                xb, yb = x.index_select(0, sel), y.index_select(0, sel)  # batch prep stays untimed
                timer.start()
                optimizer.zero_grad(set_to_none=True)
                logits = model(xb)
                loss = criterion(logits, yb)
                loss.backward()
                optimizer.step()
                timer.stop()
                value = loss.item()
                loss_sum += value * len(yb)
                correct += int((logits.argmax(1) == yb).sum())
                seen += len(yb)
                if not math.isfinite(value):
                    diverged = True
                    break
            if diverged:
                break
        return FitResult(
            steps=timer.steps,
            epochs=epochs,
            train_loss=loss_sum / seen if seen else math.nan,
            train_accuracy=correct / seen if seen else math.nan,
            diverged=diverged,
        )

    def _optimizer(self, model: nn.Module, train: TrainSpec) -> torch.optim.Optimizer:
        # Keras' Adam default epsilon, so both frameworks run the same optimizer settings.
        return torch.optim.Adam(model.parameters(), lr=train.learning_rate, eps=train.adam_epsilon)

    def train_step(self, model: nn.Module, train: TrainSpec):
        optimizer, criterion = self._optimizer(model, train), nn.CrossEntropyLoss()
        model.train()

        def step(x, y) -> float:
            xb, yb = torch.from_numpy(x).to(self.device), torch.from_numpy(y).to(self.device)
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            return loss.item()  # .item() waits for the device

        return step

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: Dataset, train: TrainSpec) -> EvalResult:
        model.eval()
        criterion = nn.CrossEntropyLoss(reduction="sum")
        x = torch.from_numpy(data.x_test).to(self.device)
        y = torch.from_numpy(data.y_test).to(self.device)
        loss_sum, correct = 0.0, 0
        for start in range(0, len(y), train.eval_batch_size):
            xb, yb = x[start : start + train.eval_batch_size], y[start : start + train.eval_batch_size]
            logits = model(xb)
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
        extra = {"threads_intra": torch.get_num_threads(), "threads_inter": torch.get_num_interop_threads()}
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

    def phase_functions(self, model: nn.Module, train: TrainSpec):
        optimizer, criterion = self._optimizer(model, train), nn.CrossEntropyLoss()
        model.train()
        to_dev = self._to_device

        def forward(x, y):
            loss = criterion(model(x), y)
            self.sync()
            return loss

        def forward_backward(x, y):
            optimizer.zero_grad(set_to_none=True)
            criterion(model(x), y).backward()
            self.sync()

        def step(x, y):
            optimizer.zero_grad(set_to_none=True)
            criterion(model(x), y).backward()
            optimizer.step()
            self.sync()

        # Inputs are moved to the device once, outside the timed calls.
        return {
            name: _with_device_inputs(fn, to_dev)
            for name, fn in (("forward", forward), ("forward_backward", forward_backward), ("step", step))
        }

    def kernel_path(self, model: nn.Module, x, y) -> str:
        """Read off the profiler which aten RNN op actually ran for a training forward/backward."""
        from torch.profiler import ProfilerActivity, profile

        xb, yb = self._to_device(x, y)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.uses_gpu() else [])
        model.train()
        with profile(activities=activities) as prof:
            nn.functional.cross_entropy(model(xb), yb).backward()
        names = {e.key for e in prof.key_averages()}
        model.zero_grad(set_to_none=True)
        if any("_cudnn_rnn" in n for n in names):
            return "cudnn (aten::_cudnn_rnn)"
        if any("mkldnn_rnn" in n for n in names):
            return "onednn (aten::mkldnn_rnn_layer)"
        cells = sorted(n for n in names if n in ("aten::rnn_tanh", "aten::rnn_relu", "aten::gru", "aten::lstm"))
        return "generic step loop (" + (", ".join(cells) or "aten cell ops") + ", one matmul pair per timestep)"

    def _to_device(self, x, y):
        return torch.from_numpy(x).to(self.device), torch.from_numpy(y).to(self.device)

    def uses_gpu(self) -> bool:
        return self.device.type == "cuda"

    def allocator_peak_mb(self) -> float | None:
        if self.device.type != "cuda":
            return None
        return torch.cuda.max_memory_allocated() / 2**20
