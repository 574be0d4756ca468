"""What else used the machine while a case's steps were timed: a busy machine is named, not averaged in.

A step time measures the code only on a machine that runs nothing else. The case's process reads, at the
start of its timed steps (after step 0 and the warm-up) and at the end of training, from /proc (Linux):

- the machine's busy CPU time (/proc/stat: user, nice, system, irq, softirq; guest time is inside user);
- its own process tree's CPU time (itself with every thread, its waited-for children, and its live
  descendants such as Inductor's compile workers);
- the hypervisor's steal time (CPU the VM was ready to use but did not get).

`other_cpu_cores` is (machine busy - own tree) / wall time: how many cores other processes kept busy on
average, the harness's runner included. A case is `disturbed` when that, or the steal, is above
DISTURBED_CORES, or when another process shared its GPU while steps were timed (gpu_shared_with).
The threshold comes from a measurement: a quiet machine read 0.000 to 0.052 cores per case here (the runner
polling its children), one CPU burner started during a case 1.01 cores, a few seconds of a unit-test run
during a case 0.20 cores (its steps' CV 0.88 against 0.06-0.3); docs/measurements.md, "A disturbed machine". Elsewhere than Linux the columns are empty, with the reason.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.core.columns import columns

DISTURBED_CORES = 0.10  # a tenth of a core kept busy by others, on average over the timed steps

COLUMNS = columns(
    "machine load",
    ("other_cpu_cores", "float", "cores other processes kept busy on average while the steps were timed (from /proc: the machine's busy time less the case's process tree)", {"fmt": ".2f"}),
    ("cpu_steal_cores", "float", "cores the hypervisor withheld on average over the same window (/proc/stat steal)", {"fmt": ".2f"}),
    ("disturbed", "bool", f"other processes used more than {DISTURBED_CORES:g} cores (or the hypervisor stole as much, or another process shared the GPU) while the steps were timed: rerun the case", {"table": True}),
    ("disturbed_reason", "str", "what disturbed the case, or why the machine's load is unknown"),
)

_BUSY_FIELDS = (0, 1, 2, 5, 6)  # user nice system irq softirq (after the "cpu" label; idle 3, iowait 4)
_STEAL_FIELD = 7


def machine_ticks(stat: str | None = None) -> tuple[int, int] | None:
    """(busy, steal) clock ticks of all CPUs since boot, from /proc/stat's first line; None without it."""
    try:
        text = stat if stat is not None else Path("/proc/stat").read_text(encoding="ascii")
        label, *values = text.splitlines()[0].split()
        fields = [int(v) for v in values]
    except (OSError, ValueError, IndexError):
        return None
    if label != "cpu" or len(fields) < 7:
        return None
    return sum(fields[i] for i in _BUSY_FIELDS if i < len(fields)), fields[_STEAL_FIELD] if len(fields) > _STEAL_FIELD else 0


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return text.rpartition(")")[2].split()  # the command name may hold spaces and parentheses


def tree_ticks(root: int | None = None) -> int | None:
    """CPU clock ticks of a process, its waited-for children and its live descendants (utime + stime +
    cutime + cstime of each), from /proc; None without /proc."""
    root = os.getpid() if root is None else root
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return None
    for entry in entries:
        f = _stat_fields(entry)
        if f is None or len(f) < 15:
            continue  # the process ended meanwhile
        pid = int(entry)
        parents[pid] = int(f[1])  # field 4: ppid (fields counted from the state, field 3)
        ticks[pid] = sum(int(v) for v in f[11:15])  # fields 14-17: utime stime cutime cstime
    if root not in ticks:
        return None
    total, frontier = 0, [root]
    while frontier:
        pid = frontier.pop()
        total += ticks.get(pid, 0)
        frontier += [child for child, parent in parents.items() if parent == pid]
    return total


@dataclass
class LoadMeter:
    """Opened when the timed steps begin, closed when training ends; `columns()` then says what else ran."""

    _start: tuple[float, tuple[int, int], int] | None = None
    _end: tuple[float, tuple[int, int], int] | None = None
    _reason: str | None = None

    def _read(self) -> tuple[float, tuple[int, int], int] | None:
        machine, own = machine_ticks(), tree_ticks()
        if machine is None or own is None:
            self._reason = "no /proc/stat here (not Linux): the machine's load is unknown"
            return None
        return time.perf_counter(), machine, own

    def open(self) -> None:
        self._start = self._read()

    def close(self) -> None:
        if self._start is not None and self._end is None:
            self._end = self._read()

    def columns(self, gpu_shared_with: str | None = None) -> dict[str, Any]:
        shared = f"another process shared the GPU: {gpu_shared_with}" if gpu_shared_with else None
        if self._start is None or self._end is None:
            reason = self._reason or "no timed steps (step 0 and the warm-up only): the machine's load was not read"
            return {"disturbed": True if shared else None, "disturbed_reason": shared or reason}
        (t0, (busy0, steal0), own0), (t1, (busy1, steal1), own1) = self._start, self._end
        tick = os.sysconf("SC_CLK_TCK")
        wall = max(t1 - t0, 1e-9)
        other = max(0.0, ((busy1 - busy0) - (own1 - own0)) / tick / wall)
        steal = max(0.0, (steal1 - steal0) / tick / wall)
        reasons = [r for r in (
            f"other processes kept {other:.2f} cores busy while the steps were timed" if other > DISTURBED_CORES else None,
            f"the hypervisor withheld {steal:.2f} cores (steal) while the steps were timed" if steal > DISTURBED_CORES else None,
            shared) if r]
        return {"other_cpu_cores": other, "cpu_steal_cores": steal, "disturbed": bool(reasons),
                "disturbed_reason": "; ".join(reasons) or None}


def busy_now(seconds: float = 1.0) -> float | None:
    """Cores other processes keep busy now, over `seconds` (for `bench doctor`); None without /proc."""
    meter = LoadMeter()
    meter.open()
    time.sleep(seconds)
    meter.close()
    return meter.columns().get("other_cpu_cores")
