"""`python -m bench doctor`: what this machine can measure, checked for real, and what to read first.

Three parts. `machine_facts` and `nvml_facts` run in the doctor's own (framework-free) process: the
CPU, its frequency governor, the NVIDIA driver and GPUs, MIG, whether NVML's energy counter ticks and
how often, which queries the GPU refuses. `probe_adapter` runs in each adapter's own process (a
`doctor` job, like a case): the framework's version and devices, the kernel path its LSTM and GRU take
here, which precisions work here, and whether NVML sees that process's pid once it holds a GPU
context. `warnings` turns the facts into what a user should read before trusting a figure.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.measure.disturbance import DISTURBED_CORES

PROBE_SPECS = (("lstm", (8,)), ("gru", (8,)))
ENERGY_WATCH_S = 1.0  # how long the doctor watches the energy counter for its update period
LOAD_WATCH_S = 1.0  # how long it watches what other processes use of the CPUs


def probe_adapter(payload: dict[str, Any], progress=None, ready=None) -> dict[str, Any]:
    """In the adapter's process: versions, devices, kernel paths, precisions, NVML's view of this pid."""
    import adapters
    from adapters.base import CaseUnavailable
    from bench.core.specs import ModelSpec, TrainSpec

    name, device = payload["adapter"], payload["device"]
    out: dict[str, Any] = {"adapter": name}
    adapter = adapters.load(name)
    adapter.setup(device, threads=1, seed=0)
    out["uses_gpu"] = adapter.uses_gpu()
    rng = np.random.default_rng(0)
    x, y = rng.random((4, 28, 28), dtype=np.float32), rng.integers(0, 10, 4)
    paths, model = {}, None
    for cell, units in PROBE_SPECS:
        try:
            model = adapter.build(ModelSpec(cell, units), TrainSpec(batch_size=4))
            paths[cell] = adapter.kernel_path(model, x, y)
        except CaseUnavailable as exc:
            paths[cell] = f"unavailable: {exc}"
        except Exception as exc:  # a framework defect is a finding of the doctor, not its crash
            paths[cell] = f"failed: {type(exc).__name__}: {str(exc).strip().splitlines()[-1:] or ''}"
    out["kernel_path"] = paths
    info = adapter.runtime_info(model)
    out.update(framework=info.framework, version=info.framework_version, device_name=info.device_name,
               backend=info.backend, threads=info.extra.get("threads_intra"),
               matmul_precision=info.extra.get("matmul_precision"))
    precisions = {}
    for precision in adapters.get_info(name).precisions:
        try:
            adapter.set_precision(precision)
            adapter.build(ModelSpec("lstm", (8,)), TrainSpec(batch_size=4))
            precisions[precision] = "ok"
        except CaseUnavailable as exc:
            precisions[precision] = f"unavailable: {exc}"
        finally:
            adapter.set_precision("fp32")
    out["precisions"] = precisions
    out["nvml_sees_pid"] = _pid_visible() if out["uses_gpu"] else None
    return out


def _pid_visible() -> bool | None:
    """Whether NVML's process list holds this process (None: NVML cannot answer)."""
    from bench.measure.memory import _import_nvml, visible_devices

    try:
        nvml = _import_nvml()
        nvml.nvmlInit()
    except Exception:
        return None
    try:
        devices = visible_devices(nvml)
        procs = nvml.nvmlDeviceGetComputeRunningProcesses(devices[0].handle) if devices else []
        return any(p.pid == os.getpid() for p in procs)
    except Exception:
        return None
    finally:
        nvml.nvmlShutdown()


def cpu_governor() -> str | None:
    try:
        return Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").read_text().strip()
    except OSError:
        return None  # no cpufreq here (many VMs): the host decides


def machine_facts() -> dict[str, Any]:
    from bench.measure import environment
    from bench.measure.disturbance import busy_now

    packages = environment.package_versions()
    return {"cpu_model": environment.cpu_model(), "cpu_cores": environment.usable_cores(),
            "cpu_governor": cpu_governor(), "torch": packages.get("torch"), "python": sys.version.split()[0],
            "thread_env": {k: os.environ.get(k) for k in environment.THREAD_VARS},
            "other_cpu_cores": busy_now(LOAD_WATCH_S)}


def nvml_facts(nvml: Any = None, watch_s: float = ENERGY_WATCH_S) -> dict[str, Any]:
    """The driver, the GPUs (MIG resolved), the energy counter's update period, the queries refused."""
    from bench.measure.memory import _import_nvml, reason_names, visible_devices

    try:
        nvml = nvml or _import_nvml()
        nvml.nvmlInit()
    except Exception as exc:
        return {"available": False, "reason": f"NVML unavailable ({type(exc).__name__}: {exc}): no NVIDIA GPU or driver"}
    try:
        devices = visible_devices(nvml)
        out: dict[str, Any] = {"available": True, "driver": _text(_try(nvml.nvmlSystemGetDriverVersion)),
                               "gpus": [{"name": d.name, "uuid": d.uuid, "mig": d.mig} for d in devices]}
        if not devices:
            out["reason"] = "no GPU visible to this process (CUDA_VISIBLE_DEVICES or none present)"
            return out
        h = devices[0].handle
        events_fn = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", lambda h: None)
        refused = [q for q, fn in (
            ("energy counter", lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(h)),
            ("power", lambda: nvml.nvmlDeviceGetPowerUsage(h)),
            ("process list", lambda: nvml.nvmlDeviceGetComputeRunningProcesses(h)),
            ("clock events", lambda: events_fn(h)),
        ) if _try(fn) is None]
        out["refused_queries"] = refused
        out["energy_period_ms"] = None if "energy counter" in refused else _energy_period_ms(nvml, h, watch_s)
        out["other_processes"] = [p.pid for p in (_try(lambda: nvml.nvmlDeviceGetComputeRunningProcesses(h)) or [])
                                  if p.pid != os.getpid()]
        events = _try(lambda: events_fn(h))
        out["clock_events"] = reason_names(int(events)) if events is not None else None
        return out
    finally:
        nvml.nvmlShutdown()


def _energy_period_ms(nvml: Any, h: Any, watch_s: float) -> float | None:
    """The counter's update period: the median time between changes of its value while watched."""
    changes, last, t_end = [], None, time.perf_counter() + watch_s
    while time.perf_counter() < t_end:
        value = _try(lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(h))
        now = time.perf_counter()
        if value is not None and value != last:
            if last is not None:
                changes.append(now)
            last = value
        time.sleep(0.001)
    gaps = np.diff(changes)
    return float(np.median(gaps) * 1e3) if gaps.size else math.inf  # inf: it never moved while watched


def _try(fn):
    try:
        return fn()
    except Exception:
        return None


def _text(v: Any) -> str | None:
    return v.decode() if isinstance(v, bytes) else (None if v is None else str(v))


CPU_BUILD_HINT = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def warnings(machine: dict[str, Any], gpu: dict[str, Any], probes: dict[str, dict[str, Any]]) -> list[str]:
    """What a user should read before trusting a figure from this machine."""
    out = []
    governor = machine.get("cpu_governor")
    if governor and governor != "performance":
        out.append(f"CPU frequency scaling: governor '{governor}' lets clocks move between and within cases; "
                   "'performance' holds them (CPU step times are noisier until then)")
    busy = machine.get("other_cpu_cores")
    if busy is not None and busy > DISTURBED_CORES:
        out.append(f"the machine is busy: other processes kept {busy:.2f} cores busy over {LOAD_WATCH_S:g} s; step "
                   f"times measured now would time the sharing (each case records its own load and is flagged "
                   f"`disturbed` above {DISTURBED_CORES:g} cores)")
    torch_version = machine.get("torch") or ""
    if "+cu" in torch_version and not gpu.get("available"):
        out.append(f"torch {torch_version} is a CUDA build on a machine without an NVIDIA GPU: it works, but is "
                   f"GBs larger and brings Triton; the CPU build is what this machine can use ({CPU_BUILD_HINT})")
    if gpu.get("other_processes"):
        out.append(f"the GPU is shared: other processes {gpu['other_processes']} hold it; GPU timings would "
                   "measure the sharing (run --require-idle-gpu fails such cases)")
    slowing = {"sw_power_cap", "hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown"}
    hot = sorted(set(gpu.get("clock_events") or []) & slowing)
    if hot:
        out.append(f"the GPU is throttled right now ({', '.join(hot)}): its step times measure its cooling or power limit")
    if gpu.get("available") and gpu.get("energy_period_ms") == math.inf:
        out.append("the energy counter did not move while watched: energy figures fall back to sampled power")
    for name, p in probes.items():
        if p.get("uses_gpu") and p.get("nvml_sees_pid") is False:
            out.append(f"{name}: NVML does not list this process's pid (a container's PID namespace?): GPU memory "
                       "per process falls back to the device's increase over its baseline")
    return out


def exit_status(device: str, gpu: dict[str, Any], probes: dict[str, dict[str, Any]]) -> tuple[int, str | None]:
    """1 when what the user asked for cannot be measured here (--device cuda without a usable GPU)."""
    if device != "cuda":
        return 0, None
    on_gpu = [n for n, p in probes.items() if p.get("uses_gpu")]
    if not gpu.get("available"):
        return 1, f"--device cuda: no GPU can be measured here ({gpu.get('reason')})"
    if probes and not on_gpu:
        return 1, "--device cuda: no adapter sees a CUDA GPU here"
    return 0, None
