"""Between two training steps: progress for the runner, and the time-to-accuracy curve.

Both run in the case's process after a step's clock has been read (StepTimer.after_step), so
neither is ever inside a timed step. The curve evaluates the test split every `eval_every` steps
(default: at each epoch's end) through the adapter's inference logits, and stores (step, training
seconds, test accuracy, test loss); training seconds are the sum of the timed steps up to that point (step 0's
compilation included, the evaluations themselves excluded), which is what AlgoPerf's
time-to-result counts. The final point is the case's own evaluation, so the last step is never
evaluated twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.core.columns import columns
from bench.measure.learning import SplitScores

UNSTEADY = 0.10  # raw / robust time to target beyond 1 +- this: the steps to the target were not steady
COLUMNS = columns(
    "time to accuracy",
    ("target_accuracy", "float", "the test accuracy time to target is measured against (--target-accuracy)", {"fmt": ".3f"}),
    ("steps_to_target", "int", "training steps until the first evaluation at or above the target", {"better": "lower"}),
    ("time_to_target_s", "float", "training seconds to the target at the case's own pace: step 0 + (steps_to_target - 1) x the median step (robust to a few disturbed steps)", {"unit": "s", "fmt": ".1f", "better": "lower", "table": True}),
    ("time_to_target_raw_s", "float", "the step times to the target, summed as they came (step 0 included)", {"unit": "s", "fmt": ".1f", "better": "lower"}),
    ("time_to_target_unsteady", "bool", f"the raw sum and the robust figure differ by more than {UNSTEADY:.0%}: the steps before the target did not run at the case's median pace"),
    ("target_reason", "str", "why there is no time to target"),
    ("curve_eval_time_s", "float", "seconds spent on the curve's evaluations, outside every clock", {"unit": "s", "fmt": ".1f"}),
    ("curve_steps", "list[int]", "the step of each evaluation of the test split"),
    ("curve_train_s", "list[float]", "training seconds at each evaluation", {"unit": "s"}),
    ("curve_test_accuracy", "list[float]", "test accuracy at each evaluation"),
    ("curve_test_loss", "list[float]", "cross-entropy on the test split at each evaluation (bench converge compares it)"),
)
PROGRESS_PERIOD_S = 1.0  # at most one progress message a second: the runner's display needs no more


def test_scores(logits_of: Callable[[np.ndarray], Any], x: np.ndarray, y: np.ndarray, batch_size: int) -> SplitScores:
    """Per-example correctness and cross-entropy of the model's inference logits (`logits_of`: the adapter's
    inference call) on (x, y), batch by batch; the loss is computed here from the logits (float64
    log-softmax), the same way for every framework."""
    correct, losses = [], []
    for start in range(0, len(y), batch_size):
        logits = np.asarray(logits_of(x[start : start + batch_size]), dtype=np.float64)
        labels = y[start : start + batch_size]
        correct.append(np.argmax(logits, axis=1) == labels)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_prob = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        losses.append(-log_prob[np.arange(len(labels)), labels])
    return SplitScores(np.concatenate(correct) if correct else np.zeros(0, bool),
                      np.concatenate(losses) if losses else np.zeros(0), np.asarray(y))


def test_accuracy(logits_of: Callable[[np.ndarray], Any], x: np.ndarray, y: np.ndarray,
                  batch_size: int) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of the model's inference logits on (x, y): a curve point."""
    scores = test_scores(logits_of, x, y, batch_size)
    return scores.accuracy, scores.loss


@dataclass
class BetweenSteps:
    """The StepTimer's `between` hook of one case."""

    total_steps: int
    steps_per_epoch: int
    elapsed_s: Callable[[], float]  # training seconds so far (the timer's sum)
    progress: Callable[[dict], None] | None = None
    evaluate: Callable[[], tuple[float, float]] | None = None  # (test accuracy, test loss) now; None: no curve
    eval_every: int | None = None  # None: once per epoch
    # (step, train seconds, accuracy, loss)
    points: list[tuple[int, float, float, float]] = field(default_factory=list)
    eval_time_s: float = 0.0
    eval_spans_ns: list[tuple[int, int]] = field(default_factory=list)  # (start, end) of each evaluation, perf_counter_ns
    # called once, between steps, when the timed steps begin (after step 0 and the warm-up): the meters of
    # what else used the machine open their window there (bench/measure/disturbance.py)
    on_window_open: list[Callable[[], None]] = field(default_factory=list)
    window_from: int = 1  # the timed steps begin once this many steps are done (step 0 and the warm-up)
    _last_progress: float = 0.0

    def __call__(self, step: int, loss: float) -> None:
        if step == self.window_from and step < self.total_steps:
            for opened in self.on_window_open:
                opened()
        if self.evaluate is not None and step < self.total_steps and step % (self.eval_every or self.steps_per_epoch) == 0:
            t0 = time.perf_counter_ns()
            self.points.append((step, self.elapsed_s(), *self.evaluate()))
            t1 = time.perf_counter_ns()
            self.eval_spans_ns.append((t0, t1))
            self.eval_time_s += (t1 - t0) / 1e9
        if self.progress is not None:
            now = time.monotonic()
            if now - self._last_progress >= PROGRESS_PERIOD_S or step == self.total_steps:
                self._last_progress = now
                self.progress({
                    "step": step,
                    "total": self.total_steps,
                    "epoch": (step - 1) // self.steps_per_epoch + 1,
                    "loss": loss if loss == loss else None,  # NaN is not JSON
                })

    def finish(self, steps: int, accuracy: float | None, loss: float | None = None) -> None:
        """Add the case's final evaluation as the curve's last point."""
        if self.evaluate is not None and accuracy is not None:
            self.points.append((steps, self.elapsed_s(), accuracy, float("nan") if loss is None else loss))


def time_to_target(points: list[tuple], target: float) -> tuple[int | None, float | None]:
    """(steps, training seconds) at the first evaluation at or above `target`, or (None, None)."""
    for step, seconds, accuracy, *_ in points:
        if accuracy >= target:
            return step, seconds
    return None, None


def paced_s(steps: int, first_ms: float, median_ms: float) -> float:
    """Training seconds of `steps` steps at a case's own pace: step 0 as it came, the rest at the median step."""
    return (first_ms + (steps - 1) * median_ms) / 1e3 if steps > 0 else 0.0


def curve_columns(points: list[tuple], target: float | None, no_accuracy: str | None,
                  eval_time_s: float, pace_ms: tuple[float, float] | None = None) -> dict[str, Any]:
    """The record's curve and time-to-target columns; `no_accuracy` says why the case has no accuracy;
    `pace_ms` is (first step, median step): the robust time to target counts steps at the median pace."""
    cols: dict[str, Any] = {
        "curve_steps": [p[0] for p in points],
        "curve_train_s": [p[1] for p in points],
        "curve_test_accuracy": [p[2] for p in points],
        "curve_test_loss": [p[3] if len(p) > 3 else float("nan") for p in points],
        "curve_eval_time_s": eval_time_s,
        "target_accuracy": target,
    }
    if no_accuracy:
        return {**cols, "target_reason": no_accuracy}
    if target is None:
        return {**cols, "target_reason": "no target accuracy for this dataset (--target-accuracy)"}
    steps, seconds = time_to_target(points, target)
    if steps is None:
        best = max((p[2] for p in points), default=None)
        why = f"never reached {target:.1%}" + (f" (best {best:.1%})" if best is not None else " (no evaluation)")
        return {**cols, "target_reason": why}
    robust = seconds
    if pace_ms is not None and all(v == v for v in pace_ms):  # NaN: no timed steps, the raw sum stands
        robust = paced_s(steps, *pace_ms)
    return {**cols, "steps_to_target": steps, "time_to_target_s": robust, "time_to_target_raw_s": seconds,
            "time_to_target_unsteady": bool(robust > 0 and abs(seconds / robust - 1) > UNSTEADY)}
