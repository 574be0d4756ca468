"""The layering of bench/ and adapters/ (docs/architecture.md), checked on every import with ast."""

import ast

from tests.import_graph import ROOT, collapse, cycles, graph, modules, render

FRAMEWORKS = ("tensorflow", "torch", "jax", "keras", "tf_keras", "triton")
# bench's layers, lowest first: a layer imports only layers before it (and adapters' registry).
LAYERS = ["bench.core", "bench.data", "bench.measure", "bench.results", "bench.execution", "bench.planning",
          "bench.stats", "bench.render", "bench.cli"]


def test_the_import_graph_is_a_dag_of_modules_and_of_packages():
    g = graph()
    assert cycles(g) == [], render(g)
    assert cycles(collapse(g)) == [], render(collapse(g))


def test_adapters_import_only_bench_core():
    outside = {m: sorted(t for t in ts if t.startswith("bench") and not t.startswith("bench.core"))
               for m, ts in graph().items() if m.startswith("adapters")}
    assert {m: t for m, t in outside.items() if t} == {}


def test_each_layer_of_bench_imports_only_the_layers_below_it():
    packages = collapse(graph())
    wrong = {}
    for i, name in enumerate(LAYERS):
        allowed = set(LAYERS[:i]) | {"adapters", "bench"}
        bad = sorted(packages.get(name, set()) - allowed)
        if bad:
            wrong[name] = bad
    assert wrong == {}, render(packages)
    assert set(packages) - {"adapters", "bench", "bench.__main__", "bench.worker"} == set(LAYERS)


def test_bench_never_imports_a_framework_at_module_level():
    top_level = {}
    for name, path in modules().items():
        if not name.startswith("bench"):
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            hits = [n for n in names if n.split(".")[0] in FRAMEWORKS]
            if hits:
                top_level[name] = hits
    assert top_level == {}


def test_the_graph_covers_every_module():
    files = {p for top in ("bench", "adapters") for p in (ROOT / top).rglob("*.py")}
    assert set(modules().values()) == files
