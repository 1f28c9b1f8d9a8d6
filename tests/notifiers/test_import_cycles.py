"""No import cycle among the notifiers modules (issue 14, item 7).

The graph is grimp's (import-linter's engine): every ``import`` statement, at module
level, inside functions and under ``if TYPE_CHECKING:`` alike, since a cycle hidden
behind a lazy or a type-only import is still two modules that each need the other.
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]


def cycles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """The strongly connected groups (of two or more modules) under ``package``,
    each sorted, found with Tarjan's algorithm (iteratively: no recursion limit)."""
    modules = sorted(m for m in graph.modules if m.split(".")[0] == package)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child.split(".")[0] != package:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    imported = graph.find_modules_directly_imported_by(child)
                    work.append((child, iter(sorted(imported))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return sorted(found)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("notifiers", cache_dir=None)


def test_no_import_cycle_among_notifiers_modules(graph: grimp.ImportGraph) -> None:
    assert cycles(graph, "notifiers") == []


def test_the_check_finds_a_cycle() -> None:
    """The check itself: a cycle through three modules, and one through a
    TYPE_CHECKING import, are found; a chain is not."""
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.d", "other"):
        graph.add_module(module)
    for importer, imported in (
        ("pkg.a", "pkg.b"),
        ("pkg.b", "pkg.c"),
        ("pkg.c", "pkg.a"),
        ("pkg.d", "pkg.a"),
        ("pkg.d", "other"),
        ("other", "pkg.d"),  # outside the package: not ours to judge
    ):
        graph.add_import(importer=importer, imported=imported)
    assert cycles(graph, "pkg") == [["pkg.a", "pkg.b", "pkg.c"]]
