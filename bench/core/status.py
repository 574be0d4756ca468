"""One vocabulary for how a case ended, used by the worker, the runner, every table and the exit codes.

The values are the strings stored in the `status` column (a public contract); `Status` is a `str`,
so a record's status compares equal to its stored text.
"""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    OK = "ok"
    FAILED = "failed"  # an exception, a crash, a dead node: `error` says which
    TIMEOUT = "timeout"  # no result within the per-case limit; its process group was killed
    OOM = "oom"  # the framework or the kernel ran out of memory
    DIVERGED = "diverged"  # a non-finite training loss
    NOT_LEARNING = "not-learning"  # trained, but a trainable weight never changed (bench/measure/learning.py)
    # trained and timed, but learning is not shown: test accuracy not significantly above chance or test loss
    # not below the uniform prediction's (a short run); its timings stand and it does not fail the run
    INCONCLUSIVE = "inconclusive"
    UNAVAILABLE = "unavailable"  # the adapter's framework is not installed where the case ran

    def __str__(self) -> str:
        return self.value

    @property
    def failing(self) -> bool:
        """Whether a run holding this status exits 1 (unavailable is not a failure of the case)."""
        return self not in (Status.OK, Status.INCONCLUSIVE, Status.UNAVAILABLE)

    @property
    def timed(self) -> bool:
        """Whether the case trained to its end, so its step times are measurements of its code."""
        return self in (Status.OK, Status.INCONCLUSIVE)

    @property
    def style(self) -> str:
        """The rich style every table gives this status."""
        return _STYLE[self]

    @property
    def short(self) -> str:
        """The status in a narrow table cell, in place of a number."""
        return _SHORT.get(self, self.value)


_STYLE = {
    Status.OK: "green",
    Status.FAILED: "red",
    Status.TIMEOUT: "red",
    Status.OOM: "red",
    Status.DIVERGED: "yellow",
    Status.NOT_LEARNING: "magenta",
    Status.INCONCLUSIVE: "yellow",
    Status.UNAVAILABLE: "dim",
}
_SHORT = {
    Status.FAILED: "FAILED", Status.TIMEOUT: "TIMEOUT", Status.OOM: "OOM", Status.DIVERGED: "diverged",
    Status.NOT_LEARNING: "no-learn", Status.UNAVAILABLE: "n/a", Status.INCONCLUSIVE: "inconcl.",
}
STATUSES = tuple(s.value for s in Status)
FAILING_STATUSES = tuple(s.value for s in Status if s.failing)  # statuses that make a run exit 1
TIMED_STATUSES = tuple(s.value for s in Status if s.timed)  # statuses whose step times compare, gate and export


def is_timed(status: object) -> bool:
    """Whether a stored status text is one whose step times stand (ok, inconclusive); unknown texts are not."""
    return status in TIMED_STATUSES


def styled(status: str) -> str:
    """Rich markup of a stored status text (unknown texts, e.g. from a newer schema, in white)."""
    try:
        return f"[{Status(status).style}]{status}[/]"
    except ValueError:
        return f"[white]{status}[/]"
