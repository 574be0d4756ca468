"""The import graph of this repository's code (bench/, adapters/), read with ast: every import at any depth.

    python -m tests.import_graph          # the package-level graph, then every module's imports

tests/unit/test_architecture.py holds the rules it must keep (a DAG, adapters on bench.core only).
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOPS = ("bench", "adapters")


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under bench/ and adapters/."""
    out = {}
    for top in TOPS:
        for path in sorted((root / top).rglob("*.py")):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _imported(node: ast.AST, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(parts + ([base] if base else []))
        return [base] + [f"{base}.{a.name}" for a in node.names]
    return []


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the repository modules it imports (names resolved to the longest existing module)."""
    mods = modules(root)
    g: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        g[name]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            for target in _imported(node, package):
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    g[name].add(target)
    return dict(g)


def layer(module: str) -> str:
    """The package a module belongs to in the layering: bench.<subpackage>, or the top package."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "bench" and len(parts) > 1 else parts[0]


def collapse(g: dict[str, set[str]], key=layer) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for a, bs in g.items():
        out[key(a)]
        out[key(a)].update(key(b) for b in bs if key(b) != key(a))
    return dict(out)


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def render(g: dict[str, set[str]]) -> str:
    return "\n".join(f"{a} -> {', '.join(sorted(bs)) or '-'}" for a, bs in sorted(g.items()))


if __name__ == "__main__":
    full = graph()
    print("packages:")
    print(render(collapse(full)))
    print("\nmodules:")
    print(render(full))
    print("\ncycles:", cycles(full) or "none", "| package cycles:", cycles(collapse(full)) or "none")
