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

    Cost per step is two `perf_counter_ns` calls, two list appends and the sync callback, which
    is what the framework needs anyway to have finished the step. The start times place each step on
    the clock, so the loop's time between steps (bench/measure/loop.py) and the GPU meters' windows can
    be told from the steps' own.
    """

    __slots__ = ("_sync", "_t0", "between", "durations_ns", "edge", "starts_ns")

    def __init__(self, sync: Callable[[], None] | None = None,
                 between: Callable[[int, float], None] | None = None) -> None:
        self._sync = sync
        self._t0 = 0
        self.durations_ns: list[int] = []
        self.starts_ns: list[int] = []  # perf_counter_ns at each step's start (after its sync)
        # The harness's work between two steps (progress, the accuracy curve's evaluations); the
        # adapter calls after_step() once the step's clock is read, so none of it is timed.
        self.between = between
        # Called at each step's two edges, outside its clock: after the sync and before the start's clock read,
        # and after the stop's clock read (on a GPU the energy meter reads its counter there, so energy is
        # counted over the steps alone; bench/measure/memory.py)
        self.edge: Callable[[], None] | None = None

    def start(self) -> None:
        if self._sync is not None:
            self._sync()  # earlier queued work must not leak into this step
        if self.edge is not None:
            self.edge()
        self._t0 = time.perf_counter_ns()

    def stop(self) -> None:
        if self._sync is not None:
            self._sync()
        self.durations_ns.append(time.perf_counter_ns() - self._t0)
        self.starts_ns.append(self._t0)
        if self.edge is not None:
            self.edge()

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
