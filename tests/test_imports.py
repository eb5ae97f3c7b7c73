"""Import structure: no cycles between any two modules, and light imports stay light.

import-linter (``lint-imports`` in scripts/check, contracts in pyproject.toml) checks the layers
of DESIGN.md and cycles between siblings; it has no contract for "no cycle at all", so this
test finds every strongly connected component of the module graph (grimp's graph, which counts
imports under ``if TYPE_CHECKING:`` and inside functions, and a package's imports of its own
submodules from ``__init__``).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Mapping

import grimp
import pytest


def import_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return sorted(out)


@pytest.mark.parametrize(("graph", "cycles"), [
    pytest.param({"a": ["b"], "b": ["c"], "c": []}, [], id="chain"),
    pytest.param({"a": ["b"], "b": ["a"]}, [["a", "b"]], id="pair"),
    pytest.param({"p": ["p.x"], "p.x": ["p"]}, [["p", "p.x"]], id="package-and-submodule"),
    pytest.param({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "e": ["f"], "f": ["e"]},
                 [["a", "b", "c"], ["e", "f"]], id="two-cycles"),
])
def test_cycle_finder(graph: dict[str, list[str]], cycles: list[list[str]]) -> None:
    assert import_cycles(graph) == cycles


def test_no_import_cycles() -> None:
    g = grimp.build_graph("promlab", exclude_type_checking_imports=False)
    graph = {m: g.find_modules_directly_imported_by(m) for m in g.modules}
    report = []
    for comp in import_cycles(graph):
        edges = [f"    {a} -> {b}" for a in comp for b in sorted(graph[a]) if b in comp]
        report.append("cycle: " + ", ".join(comp) + "\n" + "\n".join(edges))
    assert not report, "\n".join(report)


@pytest.mark.parametrize(("module", "absent"), [
    pytest.param("promlab.storage.interface", ["pyarrow", "pandas", "promlab.storage.store"],
                 id="storage-interface"),
    pytest.param("promlab.storage", ["pyarrow", "promlab.storage.store"], id="storage"),
    pytest.param("promlab", ["pyarrow", "pandas", "promlab.promql"], id="promlab"),
    pytest.param("promlab.model", ["pyarrow", "pandas"], id="model"),
])
def test_light_imports(module: str, absent: list[str]) -> None:
    code = f"import sys, {module}; print(sorted(set({absent!r}) & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_lazy_names_resolve() -> None:
    code = ("import promlab, promlab.storage as s; "
            "print(s.open_store.__module__, s.ParquetStore.__name__, callable(promlab.query), "
            "'open_store' in dir(s))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["promlab.storage.store", "ParquetStore",
                                  "True", "True"]
