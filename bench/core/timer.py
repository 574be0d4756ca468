"""The step timer the adapters call around each training step: two clock reads and the device's sync.

Protocol (docs/methodology.md): the adapter synchronizes the device before each clock read
(`sync`), keeps batch preparation outside `start()`/`stop()`, and times every step; the harness's
own work between steps (progress, curve evaluations) runs in `after_step`, outside the clock.
The statistics of the times live in bench/measure/steps.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class StepTimer:
    """Collects one duration per training step, in nanoseconds.

    Cost per step is two `perf_counter_ns` calls, one list append and the sync callback, which
    is what the framework needs anyway to have finished the step.
    """

    __slots__ = ("_sync", "_t0", "between", "durations_ns")

    def __init__(self, sync: Callable[[], None] | None = None,
                 between: Callable[[int, float], None] | None = None) -> None:
        self._sync = sync
        self._t0 = 0
        self.durations_ns: list[int] = []
        # The harness's work between two steps (progress, the accuracy curve's evaluations); the
        # adapter calls after_step() once the step's clock is read, so none of it is timed.
        self.between = between

    def start(self) -> None:
        if self._sync is not None:
            self._sync()  # earlier queued work must not leak into this step
        self._t0 = time.perf_counter_ns()

    def stop(self) -> None:
        if self._sync is not None:
            self._sync()
        self.durations_ns.append(time.perf_counter_ns() - self._t0)

    def after_step(self, loss: float) -> None:
        """Called by the adapter after each step, outside the timed region, with the step's loss."""
        if self.between is not None:
            self.between(len(self.durations_ns), loss)

    @property
    def steps(self) -> int:
        return len(self.durations_ns)

    def elapsed_s(self) -> float:
        """Training seconds so far: the sum of the timed steps (step 0's compilation included)."""
        return sum(self.durations_ns) / 1e9

    def times_ms(self) -> list[float]:
        return [d / 1e6 for d in self.durations_ns]
