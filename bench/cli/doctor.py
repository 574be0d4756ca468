"""`python -m bench doctor`: what this machine can measure, in about a minute, writing nothing.

Each adapter is probed in its own process (a `doctor` job through the local executor, all at once),
as a case would run; the machine and NVML are read here. Exit 0, or 1 when what was asked for
(`--device cuda`) cannot be measured.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from rich.console import Console

import adapters
from bench.core.errors import EXIT_OK
from bench.core.specs import DEVICES
from bench.execution.executors.base import describe_exit
from bench.execution.executors.local import LocalProcessExecutor
from bench.execution.jobs import Job, process_env
from bench.measure import doctor

PROBE_TIMEOUT_S = 120  # one adapter's probe: import, two tiny models, its kernel-path check


def add_doctor_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="what you mean to measure on (cuda: exit 1 when no GPU can be measured here)")
    p.add_argument("--adapters", help="comma-separated adapters to probe (default: every installed built-in one)")
    p.add_argument("--format", choices=("table", "json"), default="table")


def _names(text: str | None) -> list[str]:
    if not text:
        return [n for n in adapters.BUILTIN if adapters.availability(n)[0]]
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        adapters.get_info(n)  # raises, naming the valid adapters
    return names


def probe_adapters(names: list[str], device: str) -> dict[str, dict[str, Any]]:
    """Every adapter's probe, each in its own process, run side by side; a failed one says why."""
    executor = LocalProcessExecutor(parallel=len(names) or 1)
    futures = {}
    for name in names:
        ok, why = adapters.availability(name)
        if not ok:
            futures[name] = why
            continue
        env = process_env(name, "cpu" if device == "cpu" else "auto", 1)
        futures[name] = executor.submit(Job("doctor", f"doctor:{name}", {"adapter": name, "device": device}, env,
                                            PROBE_TIMEOUT_S, device))
    out = {}
    for name, future in futures.items():
        if isinstance(future, str):
            out[name] = {"adapter": name, "error": future}
            continue
        result = future.result()
        if result.payload:
            out[name] = result.payload
        else:
            _, why = describe_exit(result, PROBE_TIMEOUT_S)
            last = result.log.strip().splitlines()[-1:] or [""]
            out[name] = {"adapter": name, "error": f"{why}: {last[0]}"}
    return out


def cmd_doctor(args: argparse.Namespace, console: Console) -> int:
    names = _names(args.adapters)
    machine = doctor.machine_facts()
    gpu = doctor.nvml_facts()
    probes = probe_adapters(names, args.device)
    warnings = doctor.warnings(machine, gpu, probes)
    code, why = doctor.exit_status(args.device, gpu, probes)
    if args.format == "json":
        print(json.dumps({"machine": machine, "gpu": gpu, "adapters": probes, "warnings": warnings,
                          "exit": code, "why": why}, default=lambda v: None if v == math.inf else str(v)))
        return code
    from bench.render.doctor import doctor_tables

    for table in doctor_tables(machine, gpu, probes):
        console.print(table)
    for w in warnings:
        console.print(f"[bold yellow]warning:[/] {w}")
    if why:
        console.print(f"[bold red]{why}[/]")
    elif not warnings:
        console.print("[green]nothing to warn about[/]")
    return code if code else EXIT_OK

