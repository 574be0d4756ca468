"""The training loop as users get it: wall time per sample with the work between steps included.

Step times (bench/measure/steps.py) hold the same work in every framework: the step on a batch already
where it is needed. A training loop also spends time between its steps: drawing the next batch (Keras'
data adapter, tf.data's iterator, a torch index_select), a framework's callbacks and bookkeeping
(Keras' `fit` loop and its per-epoch setup), the harness's own progress messages. That time is real and
differs by framework, so it is measured beside the step figures, never folded into them:

- the window runs from the start of the first timed step (after step 0 and the warm-up) to the end of
  the last step, less the curve's evaluations inside it (the harness's, not the framework's);
- `loop_samples_per_s` = samples trained in the window / its wall time;
- `loop_outside_steps_share` = the window's time outside the timed steps, as a share of it.

Compilation (step 0) stays out, as it does of the step statistics; `first_step_ms` has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.core.columns import columns

COLUMNS = columns(
    "loop",
    ("loop_samples_per_s", "float", "samples per second of the training loop's wall time after the warm-up, between-step work included (drawing batches, the framework's loop and callbacks), curve evaluations excluded", {"unit": "samples/s", "fmt": ".0f", "better": "higher"}),
    ("loop_outside_steps_share", "float", "the share of that wall time spent outside the timed steps", {"fmt": ".3f"}),
    ("loop_steps", "int", "steps in the loop's window"),
)


def loop_columns(starts_ns: Sequence[int], durations_ns: Sequence[int], warmup_steps: int, batch_size: int,
                 eval_spans_ns: Sequence[tuple[int, int]] = ()) -> dict[str, Any]:
    """The loop columns from the steps' start times and durations (StepTimer) and the evaluations' spans."""
    first = 1 + max(warmup_steps, 0)
    n = len(durations_ns)
    if n <= first or len(starts_ns) != n:
        return {}
    begin, end = starts_ns[first], starts_ns[-1] + durations_ns[-1]
    evals = sum(b - a for a, b in eval_spans_ns if a >= begin and b <= end)
    wall = end - begin - evals
    if wall <= 0:
        return {}
    steps_ns = sum(durations_ns[first:])
    return {
        "loop_samples_per_s": (n - first) * batch_size / (wall / 1e9),
        "loop_outside_steps_share": max(0.0, 1.0 - steps_ns / wall),
        "loop_steps": n - first,
    }
