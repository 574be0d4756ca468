"""Rendering only: `bench doctor`'s facts as rich tables."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table


def _yes(v: Any) -> str:
    return "-" if v is None else "[green]yes[/]" if v else "[red]no[/]"


def doctor_tables(machine: dict[str, Any], gpu: dict[str, Any], probes: dict[str, dict[str, Any]]) -> list[Table]:
    m = Table(title="this machine", header_style="bold", show_header=False)
    m.add_column("what")
    m.add_column("value")
    m.add_row("CPU", f"{machine['cpu_model']} ({machine['cpu_cores']} usable cores)")
    m.add_row("frequency governor", machine.get("cpu_governor") or "none visible (a VM: the host decides)")
    busy = machine.get("other_cpu_cores")
    m.add_row("load now", "unknown (no /proc)" if busy is None else f"{busy:.2f} cores busy with other processes")
    m.add_row("python / torch", f"{machine['python']} / {machine.get('torch') or 'not installed'}")
    if not gpu.get("available") or not gpu.get("gpus"):
        m.add_row("NVML / GPUs", gpu.get("reason") or "no GPU")
    else:
        m.add_row("driver", str(gpu.get("driver")))
        for g in gpu["gpus"]:
            m.add_row("GPU", f"{g['name']} {g['uuid']}" + (" (MIG instance)" if g.get("mig") else ""))
        period = gpu.get("energy_period_ms")
        m.add_row("energy counter", "refused" if period is None else "did not move" if period == math.inf
                  else f"updates every {period:.0f} ms")
        m.add_row("queries refused", ", ".join(gpu.get("refused_queries") or []) or "none")
    a = Table(title="adapters (each probed in its own process)", header_style="bold")
    for col in ("adapter", "version", "device", "LSTM kernel path", "GRU kernel path", "precisions here", "NVML sees pid"):
        a.add_column(col, overflow="fold")
    for name, p in probes.items():
        if "error" in p:
            a.add_row(name, "[red]cannot run[/]", p["error"], "", "", "", "")
            continue
        prec = ", ".join(k if v == "ok" else f"[dim]{k} (no)[/]" for k, v in p["precisions"].items())
        a.add_row(name, f"{p['framework']} {p['version']}", p["device_name"], p["kernel_path"].get("lstm", ""),
                  p["kernel_path"].get("gru", ""), prec, _yes(p.get("nvml_sees_pid")))
    return [m, a]
