"""One framework per test process, enforced at import time.

TensorFlow and PyTorch's Triton in one process can crash it (a segfault while `torch._dynamo`
imports `triton` in a process that holds TensorFlow, seen with the default CUDA build of torch).
The product runs every framework in a process of its own; the tests must too. So:

- the main test processes (pytest and its xdist workers) hold no framework at all: tests that need
  one in-process live in `tests/contract/` and run in one subprocess per adapter;
- such a subprocess (RNNBENCH_TEST_ADAPTER=name) may import that adapter's frameworks only.

The guard judges an import by who makes it. An import made by this repository's code (bench/,
adapters/, tests/) of a framework the process may not hold raises `SecondFrameworkError` before
the framework's code runs. A framework importing its own dependencies (TensorFlow imports JAX when
it is installed, Keras on torch does too) is the framework's business, not a second framework.
`importlib.util.find_spec` (how the harness checks what is installed) is never refused: only the
module's execution is.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import FrameType

# The import names that load a framework, and so decide what a process holds.
FRAMEWORKS = ("keras", "tensorflow", "tf_keras", "torch", "jax", "triton")
# Beside an allowed framework, its own machinery: torch brings Triton, Keras on TF brings tf_keras.
COMPANIONS = {"torch": ("triton",), "tensorflow": ("tf_keras",)}
REPO = Path(__file__).resolve().parent.parent
OWN_CODE = tuple(str(REPO / d) + os.sep for d in ("bench", "adapters", "tests"))


class SecondFrameworkError(RuntimeError):
    """Not an ImportError, so that no `except ImportError` mistakes it for a missing package."""


def allowed_frameworks(requires: Iterable[str]) -> frozenset[str]:
    """The framework import names a process that runs an adapter with these requirements may hold."""
    own = {m for m in requires if m in FRAMEWORKS}
    return frozenset(own | {c for m in own for c in COMPANIONS.get(m, ())})


def importer_is_own_code(frame: FrameType | None) -> bool:
    """Whether the nearest frame outside importlib belongs to this repository's code."""
    while frame is not None:
        name = frame.f_code.co_filename
        if not (name.startswith("<frozen importlib") or name.endswith(os.path.join("importlib", "__init__.py"))
                or name == __file__):
            return name.startswith(OWN_CODE)
        frame = frame.f_back
    return False


class _GuardedLoader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader, guard: FrameworkGuard, name: str) -> None:
        self.inner, self.guard, self.name = inner, guard, name

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module) -> None:
        if importer_is_own_code(sys._getframe(1)):
            self.guard.refuse(self.name)
        self.inner.exec_module(module)


class FrameworkGuard(importlib.abc.MetaPathFinder):
    """A meta-path finder that wraps the loader of every top-level framework package."""

    def __init__(self, allowed: frozenset[str], where: str) -> None:
        self.allowed, self.where = allowed, where
        self.refused: list[str] = []  # every refusal, even one that some `except Exception` swallowed

    def find_spec(self, fullname, path, target=None):
        if fullname not in FRAMEWORKS or fullname in self.allowed:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _GuardedLoader(spec.loader, self, fullname)
                return spec
        return None

    def refuse(self, name: str) -> None:
        self.refused.append(name)
        allowed = ", ".join(sorted(self.allowed)) or "none"
        raise SecondFrameworkError(
            f"{self.where} imported {name!r}, which it may not hold (allowed here: {allowed}). Two frameworks "
            "in one process can crash it (TensorFlow beside torch's Triton): put the test in tests/contract/, "
            "which runs in one process per adapter, or start the framework in a subprocess."
        )


def install(allowed: frozenset[str], where: str) -> FrameworkGuard:
    """Put the guard first on sys.meta_path (once per process) and return it."""
    for finder in sys.meta_path:
        if isinstance(finder, FrameworkGuard):
            return finder
    guard = FrameworkGuard(allowed, where)
    sys.meta_path.insert(0, guard)
    return guard


def loaded_frameworks(modules: Iterable[str]) -> list[str]:
    """Which framework packages are among these module names (sys.modules' keys)."""
    present = set(modules)
    return [m for m in FRAMEWORKS if m in present]
