"""The executors, by name: where a run's case processes run (`run --executor NAME`).

A new executor is one module implementing the protocol in base.py and one entry here; nothing else
names executors (the command line takes its choices from `EXECUTORS`, the progress display asks
`remote` whether to name each case's host).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.core.errors import BenchInputError, choices_text
from bench.execution.executors.base import Executor


@dataclass(frozen=True)
class ExecutorInfo:
    name: str
    target: str  # "module:Class", imported only when the executor is made
    description: str
    remote: bool  # cases may run on other machines (the progress display names each case's host)
    extra: str | None = None  # the pip extra it needs, for the error when it is missing
    # the run options it takes -> the constructor's keyword arguments
    options: Callable[[dict[str, Any]], dict[str, Any]] = lambda options: {}


EXECUTORS: dict[str, ExecutorInfo] = {
    "local": ExecutorInfo("local", "bench.execution.executors.local:LocalProcessExecutor",
                          "local processes, one case at a time", remote=False),
    "ray": ExecutorInfo("ray", "bench.execution.executors.ray:RayExecutor",
                        "a Ray cluster: one case per node (CPU) or per GPU", remote=True, extra="ray",
                        options=lambda o: {"address": o.get("ray_address"),
                                           "cases_per_node": o.get("cases_per_node") or 1}),
}


def get_info(name: str) -> ExecutorInfo:
    if name not in EXECUTORS:
        raise BenchInputError(f"unknown executor {name!r}; valid executors: {choices_text(EXECUTORS)}")
    return EXECUTORS[name]


def make_executor(name: str, **options: Any) -> Executor:
    """The executor `name` with the run's options; a missing package is bad input naming the extra."""
    info = get_info(name)
    module, _, cls = info.target.partition(":")
    try:
        factory = getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise BenchInputError(f"--executor {name} needs a package that is not installed here ({exc}); install the "
                              f"extra: pip install 'rnnbench[{info.extra or name}]'") from exc
    return factory(**info.options(options))
