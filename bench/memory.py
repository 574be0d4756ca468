"""Memory meters: peak CPU RSS of this process, and GPU memory through NVML.

No NVIDIA driver (or no `pynvml`) is a normal state: the sampler then reports no figure and a
reason, and never raises. The NVML module is injectable so the logic is tested without a GPU.
"""

from __future__ import annotations

import os
import resource
import threading
from dataclasses import dataclass
from typing import Any


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass(frozen=True)
class GpuMemory:
    process_peak_mb: float | None  # this process's own memory, from NVML's process list
    device_peak_mb: float | None  # whole-device used memory (every process on the card)
    source: str | None  # where process_peak_mb came from
    reason: str | None  # why a figure is missing, or a caveat


def _import_nvml() -> Any:
    import pynvml

    return pynvml


def visible_device_indices(nvml: Any) -> list[int]:
    """NVML indices of the GPUs this process can use, honouring CUDA_VISIBLE_DEVICES.

    Entries may be indices or UUIDs (GPU-... or MIG-...), as CUDA accepts; an empty or "-1"
    value hides every GPU.
    """
    count = nvml.nvmlDeviceGetCount()
    raw = os.environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return list(range(count))
    by_uuid = {}
    for i in range(count):
        uuid = nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i))
        by_uuid[uuid.decode() if isinstance(uuid, bytes) else uuid] = i
    chosen = []
    for entry in (e.strip() for e in raw.split(",")):
        if not entry or entry == "-1":
            break  # CUDA stops at the first invalid entry
        if entry.isdigit():
            if int(entry) >= count:
                break
            chosen.append(int(entry))
        else:
            match = [i for u, i in by_uuid.items() if u.startswith(entry)]
            if not match:
                break
            chosen.append(match[0])
    return chosen


class GpuMemorySampler:
    """Samples NVML every `period_s` in a thread: peak memory of `pids` and of the device.

    Use as a context manager around the training; read `.result()` afterwards.
    """

    def __init__(self, pids: set[int] | None = None, period_s: float = 0.01, nvml: Any = None) -> None:
        self.pids = pids if pids is not None else {os.getpid()}
        self.period_s = period_s
        self._nvml = nvml
        self._handles: list[Any] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process_peak = 0
        self._device_peak = 0
        self._process_seen = False
        self._reason: str | None = None

    def __enter__(self) -> GpuMemorySampler:
        try:
            nvml = self._nvml or _import_nvml()
            nvml.nvmlInit()
            self._nvml = nvml
        except Exception as exc:  # ImportError, NVMLError_LibraryNotFound, driver errors...
            self._reason = f"NVML unavailable ({type(exc).__name__}: {exc}): no NVIDIA GPU or driver"
            return self
        indices = visible_device_indices(nvml)
        if not indices:
            self._reason = "no GPU visible to this process (CUDA_VISIBLE_DEVICES or none present)"
            nvml.nvmlShutdown()
            return self
        # The framework uses the first visible device; that is the one measured.
        self._handles = [nvml.nvmlDeviceGetHandleByIndex(indices[0])]
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="nvml-sampler", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            self._sample()

    def _sample(self) -> None:
        nvml = self._nvml
        for h in self._handles:
            try:
                self._device_peak = max(self._device_peak, int(nvml.nvmlDeviceGetMemoryInfo(h).used))
                procs = nvml.nvmlDeviceGetComputeRunningProcesses(h)
            except Exception:  # a transient NVML error must not kill the case
                continue
            mine = [p for p in procs if p.pid in self.pids and p.usedGpuMemory is not None]
            if mine:
                self._process_seen = True
                self._process_peak = max(self._process_peak, sum(int(p.usedGpuMemory) for p in mine))

    def __exit__(self, *exc_info: Any) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._sample()
        if self._handles:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass

    def result(self) -> GpuMemory:
        if not self._handles:
            return GpuMemory(None, None, None, self._reason)
        device_mb = self._device_peak / 2**20
        if self._process_seen:
            return GpuMemory(self._process_peak / 2**20, device_mb, "nvml-process", None)
        # In containers NVML often cannot see other PID namespaces: say so, and fall back.
        return GpuMemory(
            device_mb,
            device_mb,
            "nvml-device",
            "per-process figures not visible to NVML (container PID namespace?); device-wide peak shown",
        )
