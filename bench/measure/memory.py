"""Memory, energy and GPU-state meters: peak CPU RSS of this process; GPU memory, energy, clocks,
temperature, power, throttle (clock event) reasons and other processes on the GPU via NVML.

No NVIDIA driver (or no `pynvml`) is a normal state: the sampler then reports no figure and a
reason, and never raises. The NVML module is injectable so the logic is tested without a GPU.
"""

from __future__ import annotations

import itertools
import math
import os
import resource
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.core.columns import columns


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass(frozen=True)
class GpuDevice:
    handle: Any
    uuid: str
    name: str
    mig: bool  # a MIG instance (its memory is the instance's slice, not the whole card)


@dataclass(frozen=True)
class GpuMemory:
    process_peak_mb: float | None  # this process's own memory, from NVML's process list
    device_peak_mb: float | None  # whole-device used memory (every process on the card)
    source: str | None  # where process_peak_mb came from
    reason: str | None  # why a figure is missing, or a caveat
    device: GpuDevice | None = None


# NVML's clock event ("throttle") reason bits, nvml.h nvmlClocksEventReason* (formerly
# nvmlClocksThrottleReason*). Only the ones that slow a busy GPU make a timing suspect.
CLOCK_EVENT_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
SLOWING_REASONS = frozenset({"sw_power_cap", "hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown",
                             "hw_power_brake_slowdown"})
NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0  # nvml.h enum values
# What the sampler reads, and how often (period_s = 10 ms by default). Reads differ in cost on a real
# driver: the device's memory counter is cheap; the process list walks every context on the GPU (a
# millisecond or more on loaded drivers), so it is read every 5th sample (50 ms: a process's peak
# moves with allocations that last longer than that); clocks, temperature, power and clock events
# change slowly and are read every 10th (100 ms). Power for the energy fallback is read every sample,
# and only on GPUs without an energy counter. tests/unit/test_memory.py counts the reads.
PROCESSES_EVERY = 5
STATE_EVERY = 10


MEMORY = dict(unit="MB", fmt=".0f", better="lower")
COLUMNS = columns(
    "memory and energy",
    ("cpu_rss_peak_mb", "float", "peak resident memory of the case's process", {**MEMORY, "gate": True, "table": True}),
    ("gpu_mem_peak_mb", "float", "peak GPU memory of the case's process (NVML; gpu_mem_source says how it was read)", {**MEMORY, "gate": True, "table": True}),
    ("gpu_mem_device_peak_mb", "float", "peak GPU memory of the whole device while the case ran", MEMORY),
    ("gpu_mem_source", "str", "how gpu_mem_peak_mb was read: nvml-process; nvml-device-increase (the device less its use before the case); nvml-device"),
    ("gpu_mem_reason", "str", "why there is no GPU memory figure (a CPU case, no NVML)"),
    ("gpu_allocator_peak_mb", "float", "the framework allocator's own peak (torch max_memory_allocated, TF get_memory_info)", MEMORY),
    ("gpu_name", "str", "the GPU's name"),
    ("gpu_uuid", "str", "the GPU's (or MIG instance's) UUID"),
    ("gpu_mig", "bool", "whether the case ran on a MIG instance"),
    ("energy_j_per_step", "float", "GPU energy per training step", {"unit": "J", "fmt": ".3g", "better": "lower"}),
    ("energy_j_per_epoch", "float", "GPU energy per epoch", {"unit": "J", "fmt": ".3g", "better": "lower"}),
    ("energy_source", "str", "how energy was read (NVML's counter, or power samples), or why not"),
)
STATE_COLUMNS = columns(
    "GPU state while timed",
    ("gpu_state_samples", "int", "NVML state readings taken while steps were timed"),
    ("gpu_sm_clock_mhz_min", "float", "lowest SM clock", {"unit": "MHz", "fmt": ".0f"}),
    ("gpu_sm_clock_mhz_median", "float", "median SM clock", {"unit": "MHz", "fmt": ".0f"}),
    ("gpu_sm_clock_mhz_max", "float", "highest SM clock", {"unit": "MHz", "fmt": ".0f"}),
    ("gpu_mem_clock_mhz_median", "float", "median memory clock", {"unit": "MHz", "fmt": ".0f"}),
    ("gpu_temp_c_median", "float", "median GPU temperature", {"unit": "C", "fmt": ".0f"}),
    ("gpu_temp_c_max", "float", "highest GPU temperature", {"unit": "C", "fmt": ".0f"}),
    ("gpu_power_w_median", "float", "median board power", {"unit": "W", "fmt": ".0f"}),
    ("gpu_power_w_max", "float", "highest board power", {"unit": "W", "fmt": ".0f"}),
    ("gpu_power_limit_w", "float", "the enforced power limit", {"unit": "W", "fmt": ".0f"}),
    ("gpu_throttled", "bool", "a power, thermal or slowdown clock event was active"),
    ("gpu_throttle_reasons", "str", "every clock event reason seen, comma-separated"),
    ("gpu_shared_with", "str", "other processes on the GPU: 'pid 123 (512 MB), ...'"),
)


def reason_names(mask: int) -> list[str]:
    return [name for bit, name in CLOCK_EVENT_REASONS.items() if mask & bit]


@dataclass(frozen=True)
class StateSample:
    t: float
    sm_mhz: float | None
    mem_mhz: float | None
    temp_c: float | None
    power_w: float | None
    reasons: int | None  # clock event reason bit mask


def summarize_state(samples: list[StateSample], power_limit_w: float | None) -> dict[str, Any]:
    """The GPU-state columns of a window's samples (min/median/max where a spread matters)."""
    import statistics

    def values(attr: str) -> list[float]:
        return [getattr(s, attr) for s in samples if getattr(s, attr) is not None]

    def stat(attr: str, fn) -> float | None:
        v = values(attr)
        return float(fn(v)) if v else None

    masks = [s.reasons for s in samples if s.reasons is not None]
    union = 0
    for m in masks:
        union |= m
    slowing = sorted(set(reason_names(union)) & SLOWING_REASONS)
    return {
        "gpu_state_samples": len(samples),
        "gpu_sm_clock_mhz_min": stat("sm_mhz", min),
        "gpu_sm_clock_mhz_median": stat("sm_mhz", statistics.median),
        "gpu_sm_clock_mhz_max": stat("sm_mhz", max),
        "gpu_mem_clock_mhz_median": stat("mem_mhz", statistics.median),
        "gpu_temp_c_median": stat("temp_c", statistics.median),
        "gpu_temp_c_max": stat("temp_c", max),
        "gpu_power_w_median": stat("power_w", statistics.median),
        "gpu_power_w_max": stat("power_w", max),
        "gpu_power_limit_w": power_limit_w,
        "gpu_throttled": bool(slowing) if masks else None,
        "gpu_throttle_reasons": ", ".join(reason_names(union)) if masks else None,
    }


def _import_nvml() -> Any:
    import pynvml

    return pynvml


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def enumerate_devices(nvml: Any) -> list[GpuDevice]:
    """Every GPU, each followed by its MIG instances when MIG mode is on."""
    devices = []
    for i in range(nvml.nvmlDeviceGetCount()):
        h = nvml.nvmlDeviceGetHandleByIndex(i)
        name = _s(nvml.nvmlDeviceGetName(h))
        devices.append(GpuDevice(h, _s(nvml.nvmlDeviceGetUUID(h)), name, False))
        try:
            mig_on = nvml.nvmlDeviceGetMigMode(h)[0] == 1
        except Exception:  # pre-Ampere GPUs and old drivers do not support MIG queries
            mig_on = False
        if not mig_on:
            continue
        for j in range(nvml.nvmlDeviceGetMaxMigDeviceCount(h)):
            try:
                mh = nvml.nvmlDeviceGetMigDeviceHandleByIndex(h, j)
            except Exception:  # unpopulated slot
                continue
            devices.append(GpuDevice(mh, _s(nvml.nvmlDeviceGetUUID(mh)), f"{name} MIG {j}", True))
    return devices


def visible_devices(nvml: Any) -> list[GpuDevice]:
    """The GPUs this process can use, in CUDA's order, honouring CUDA_VISIBLE_DEVICES.

    Entries may be indices (of physical GPUs) or UUIDs, whole or a unique prefix (GPU-... or
    MIG-...), as CUDA accepts; CUDA stops at the first invalid entry; "" or "-1" hides all GPUs.
    With CUDA_VISIBLE_DEVICES unset and MIG on, CUDA uses the GPU's MIG instances.
    """
    devices = enumerate_devices(nvml)
    physical = [d for d in devices if not d.mig]
    raw = os.environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        out = []
        for i, d in enumerate(devices):
            migs_follow = i + 1 < len(devices) and devices[i + 1].mig
            if d.mig or not migs_follow:
                out.append(d)
        return out
    chosen = []
    for entry in (e.strip() for e in raw.split(",")):
        if entry.isdigit():
            if int(entry) >= len(physical):
                break
            chosen.append(physical[int(entry)])
            continue
        match = [d for d in devices if entry and d.uuid.startswith(entry)]
        if len(match) != 1:
            break
        chosen.append(match[0])
    return chosen


def device_used_mb(nvml: Any = None) -> float | None:
    """The first visible GPU's used memory now (MB), or None without NVML or a GPU: read before a case's
    framework creates its context, it is the baseline of the device-wide fallback."""
    try:
        nvml = nvml or _import_nvml()
        nvml.nvmlInit()
    except Exception:
        return None
    try:
        visible = visible_devices(nvml)
        return int(nvml.nvmlDeviceGetMemoryInfo(visible[0].handle).used) / 2**20 if visible else None
    except Exception:
        return None
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass


class GpuMemorySampler:
    """Samples NVML every `period_s` in a thread: peak memory of `pids` and of the device, and
    the energy counter (or power, where the counter is missing) for `energy_j` windows.

    Use as a context manager around the training; read `.result()` afterwards.
    """

    def __init__(self, pids: set[int] | None = None, period_s: float = 0.01, nvml: Any = None,
                 baseline_mb: float | None = None, first_timed_step: int = 1) -> None:
        self.pids = pids if pids is not None else {os.getpid()}
        # the device's used memory before this case's process made its GPU context (device_used_mb):
        # the device-wide fallback reports the case's increase over it, not the driver's and others' memory
        self.baseline_mb = baseline_mb
        self.period_s = period_s
        self._nvml = nvml
        self._device: GpuDevice | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process_peak = 0
        self._device_peak = 0
        self._process_seen = False
        self._reason: str | None = None
        self._has_energy_counter = False
        self._power: list[tuple[float, float]] = []  # (time, watts), only without an energy counter
        self._state: list[StateSample] = []
        self._unsupported: set[str] = set()  # NVML queries this device refused (NotSupported): not asked again
        self._foreign: dict[int, float | None] = {}  # pid -> peak MB of other processes seen on the device
        self._n = 0
        self._edges: list[tuple[float, int | None]] = []  # (time, energy counter) at each step's start and end
        # the steps before this index (step 0, the warm-up) are not timed; a state reading is taken at the first
        # timed step's start edge and then at most every STATE_EVERY periods from the steps' edges, so a short
        # run's steps hold readings too (the thread's readings fall between steps as often as inside them)
        self.first_timed_step = first_timed_step
        self._last_edge_state = -math.inf

    def __enter__(self) -> GpuMemorySampler:
        try:
            nvml = self._nvml or _import_nvml()
            nvml.nvmlInit()
            self._nvml = nvml
        except Exception as exc:  # ImportError, NVMLError_LibraryNotFound, driver errors...
            self._reason = f"NVML unavailable ({type(exc).__name__}: {exc}): no NVIDIA GPU or driver"
            return self
        visible = visible_devices(nvml)
        if not visible:
            self._reason = "no GPU visible to this process (CUDA_VISIBLE_DEVICES or none present)"
            nvml.nvmlShutdown()
            return self
        self._device = visible[0]  # frameworks use the first visible device
        self._has_energy_counter = self._energy_mj() is not None
        self._power_limit_w = self._query("power_limit", lambda h: nvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0)
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="nvml-sampler", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            self._sample()

    def _energy_mj(self) -> int | None:
        try:
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._device.handle))
        except Exception:  # not supported before Volta, nor on MIG instances
            return None

    def _query(self, name: str, fn) -> Any:
        """One NVML reading, or None: a query the device does not support is not asked again."""
        if name in self._unsupported:
            return None
        try:
            return fn(self._device.handle)
        except Exception as exc:
            if "NotSupported" in type(exc).__name__ or "Not Supported" in str(exc):
                self._unsupported.add(name)
            return None

    def _sample_state(self, t: float | None = None) -> None:
        nvml = self._nvml
        reasons = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None)
        self._state.append(StateSample(
            time.perf_counter() if t is None else t,
            self._query("sm_clock", lambda h: nvml.nvmlDeviceGetClockInfo(h, NVML_CLOCK_SM)),
            self._query("mem_clock", lambda h: nvml.nvmlDeviceGetClockInfo(h, NVML_CLOCK_MEM)),
            self._query("temperature", lambda h: nvml.nvmlDeviceGetTemperature(h, NVML_TEMPERATURE_GPU)),
            self._query("power", lambda h: nvml.nvmlDeviceGetPowerUsage(h) / 1000.0),
            self._query("clock_events", lambda h: int(reasons(h))) if reasons else None,
        ))

    def _sample(self, every_query: bool = False) -> None:
        nvml, h = self._nvml, self._device.handle
        if self._n % STATE_EVERY == 0:
            self._sample_state()
        self._n += 1
        if not self._has_energy_counter:  # first, and on its own: a failing memory query must not cost the energy
            try:
                self._power.append((time.perf_counter(), nvml.nvmlDeviceGetPowerUsage(h) / 1000.0))
            except Exception:
                pass
        try:
            self._device_peak = max(self._device_peak, int(nvml.nvmlDeviceGetMemoryInfo(h).used))
        except Exception:  # a transient NVML error must not kill the case
            pass
        if (self._n - 1) % PROCESSES_EVERY and not every_query:
            return
        try:
            procs = nvml.nvmlDeviceGetComputeRunningProcesses(h)
        except Exception:
            return
        mine = [p for p in procs if p.pid in self.pids and p.usedGpuMemory is not None]
        if mine:
            self._process_seen = True
            self._process_peak = max(self._process_peak, sum(int(p.usedGpuMemory) for p in mine))
        for p in procs:
            if p.pid not in self.pids:
                mb = None if p.usedGpuMemory is None else int(p.usedGpuMemory) / 2**20
                old = self._foreign.get(p.pid)
                self._foreign[p.pid] = mb if old is None else max(old, mb or 0.0)

    def mark(self) -> tuple[float, int | None]:
        """A point in time for `energy_j` and `state`: the clock and, where supported, the energy
        counter (a GPU-state reading is taken too, so every window has its ends)."""
        t = time.perf_counter()
        if self._device is None:
            return t, None
        self._sample_state(t)  # stamped with the mark's own time, so it belongs to the window it bounds
        return t, self._energy_mj()

    def edge(self) -> None:
        """One step's start or end (StepTimer.edge, outside the clock): the time and the energy counter."""
        t = time.perf_counter()
        index = len(self._edges)
        self._edges.append((t, self._energy_mj() if self._has_energy_counter else None))
        if self._device is None or index // 2 < self.first_timed_step:
            return
        if index == 2 * self.first_timed_step or t - self._last_edge_state >= STATE_EVERY * self.period_s:
            self._sample_state(t)  # stamped with the edge's time: it belongs to the step it bounds
            self._last_edge_state = t

    def _step_windows(self, first: int) -> list[tuple[tuple[float, int | None], tuple[float, int | None]]]:
        """(start edge, end edge) of every step from index `first` on."""
        return [(self._edges[i], self._edges[i + 1]) for i in range(2 * first, len(self._edges) - 1, 2)]

    def steps_energy_j(self, first: int) -> tuple[float | None, str]:
        """Joules over the steps from index `first` on, each from its own edges: the time between steps (a
        framework's loop, the next batch, an evaluation, Keras' per-epoch setup) is never counted."""
        if self._device is None:
            return None, self._reason or "no GPU"
        windows = self._step_windows(first)
        if not windows:
            return None, "no timed steps"
        if all(a[1] is not None and b[1] is not None for a, b in windows):
            return sum(b[1] - a[1] for a, b in windows) / 1000.0, "nvml-energy-counter at each step's edges"
        if len(self._power) < 2:
            return None, "no energy counter and too few power samples"
        t, w = np.array([p[0] for p in self._power]), np.array([p[1] for p in self._power])
        cumulative = np.concatenate([[0.0], np.cumsum(np.diff(t) * (w[1:] + w[:-1]) / 2)])  # trapezoid, joules
        ends = np.array([[a[0], b[0]] for a, b in windows])
        joules = np.interp(ends[:, 1], t, cumulative) - np.interp(ends[:, 0], t, cumulative)
        return float(joules.sum()), "nvml-power-sampling, interpolated over each step"

    def steps_state(self, first: int) -> dict[str, Any]:
        """Clocks, temperature, power and throttle reasons from the readings taken while a step from index
        `first` on was running (a reading between steps belongs to no step)."""
        if self._device is None:
            return {}
        windows = [(a[0], b[0]) for a, b in self._step_windows(first)]
        inside = [s for s in self._state if any(a <= s.t <= b for a, b in windows)]
        return summarize_state(inside, self._power_limit_w)

    def state(self, start: tuple[float, int | None], end: tuple[float, int | None],
              holes: Sequence[tuple[tuple, tuple]] = ()) -> dict[str, Any]:
        """Clocks, temperature, power and throttle reasons over the window between two marks, without
        the readings inside its holes (the curve's evaluations)."""
        if self._device is None:
            return {}
        window = [s for s in self._state if start[0] <= s.t <= end[0]
                  and not any(a[0] < s.t < b[0] for a, b in holes)]
        return summarize_state(window, self._power_limit_w)

    def shared_with(self) -> str | None:
        """Other processes seen on this GPU so far (pid and peak memory), or None.

        When NVML cannot match this process's pid (a container's PID namespace), a single process
        on the device may be this one, so only two or more count as sharing."""
        if not self._foreign:
            return None
        if not self._process_seen and len(self._foreign) < 2:
            return None
        text = ", ".join(f"pid {pid} ({'?' if mb is None else f'{mb:.0f}'} MB)" for pid, mb in sorted(self._foreign.items()))
        if not self._process_seen:
            text += " (pids of another namespace: this process may be among them)"
        return text

    def energy_j(self, start: tuple[float, int | None], end: tuple[float, int | None],
                 holes: Sequence[tuple[tuple, tuple]] = ()) -> tuple[float | None, str]:
        """Joules used by the device between two marks, less those used inside the holes, and how
        they were measured."""
        joules, source = self._energy_between(start, end)
        for a, b in holes:
            hole, _ = self._energy_between(a, b)
            if joules is not None and hole is not None:
                joules -= hole
        return joules, source

    def _energy_between(self, start: tuple[float, int | None], end: tuple[float, int | None]) -> tuple[float | None, str]:
        if self._device is None:
            return None, self._reason or "no GPU"
        if start[1] is not None and end[1] is not None:
            return (end[1] - start[1]) / 1000.0, "nvml-energy-counter"
        pts = [(t, w) for t, w in self._power if start[0] <= t <= end[0]]
        if len(pts) < 2:
            return None, "no energy counter and too few power samples"
        joules = sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in itertools.pairwise(pts))  # trapezoid
        return joules, "nvml-power-sampling"

    def __exit__(self, *exc_info: Any) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._sample(every_query=True)  # the last reading sees everything, whatever its turn
        if self._device is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass

    def result(self) -> GpuMemory:
        if self._device is None:
            return GpuMemory(None, None, None, self._reason)
        device_mb = self._device_peak / 2**20
        if self._process_seen:
            return GpuMemory(self._process_peak / 2**20, device_mb, "nvml-process", None, self._device)
        # In containers NVML often cannot see other PID namespaces: say so, and fall back to the device,
        # less what was in use before this case's process started (the driver's reserve, other tenants).
        if self.baseline_mb is not None:
            return GpuMemory(
                max(device_mb - self.baseline_mb, 0.0),
                device_mb,
                "nvml-device-increase",
                f"per-process figures not visible to NVML (container PID namespace?); the device's peak less the "
                f"{self.baseline_mb:.0f} MB in use before the case started",
                self._device,
            )
        return GpuMemory(
            device_mb,
            device_mb,
            "nvml-device",
            "per-process figures not visible to NVML (container PID namespace?); device-wide peak shown, "
            "including memory in use before the case started",
            self._device,
        )
