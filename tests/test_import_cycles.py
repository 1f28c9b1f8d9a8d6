"""No import cycle between project modules, in ``pyorchestrate`` or ``notifiers``
(issue 14, item 7).

The graph is grimp's (import-linter's engine): every ``import`` statement, at module
level, inside functions and under ``if TYPE_CHECKING:`` alike, since a cycle hidden
behind a lazy or a type-only import is still two modules that each need the other.

One edge grimp does not draw is added: importing ``a.b.c`` first runs ``a/__init__``
and ``a/b/__init__``, so an import of a module is also an import of each package
above it (except the importer's own packages, which are already running). Without
it, ``settings -> presets.preset`` would hide that ``presets/__init__`` imports
``presets.from_settings``, which imports ``settings``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pyorchestrate", "notifiers")

# Edges left out of the graph, each with the reason. Keep it short: a cycle is
# broken by moving code, not by listing it here.
ALLOWED: Mapping[tuple[str, str], str] = {
    # PoolAgent's old import path: core.pool imports the agent modules, and
    # core/agent/__init__ re-exports its names lazily (PEP 562 ``__getattr__``),
    # importing core.pool only under TYPE_CHECKING so type checkers see them. Nothing
    # imports it at run time from there; import-linter's ignore_imports has it too.
    ("pyorchestrate.core.agent", "pyorchestrate.core.pool"): "lazy re-export",
}


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:n]) for n in range(1, len(parts))]


def import_edges(
    graph: grimp.ImportGraph, packages: Iterable[str]
) -> dict[str, set[str]]:
    """Each project module and the project modules importing it runs: those it
    imports, and the packages above them that are not above the importer."""
    roots = set(packages)
    modules = {m for m in graph.modules if m.split(".")[0] in roots}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for importer in modules:
        running = {importer, *_ancestors(importer)}
        for imported in graph.find_modules_directly_imported_by(importer):
            if imported not in modules:
                continue
            edges[importer].add(imported)
            edges[importer].update(p for p in _ancestors(imported) if p not in running)
    return edges


def cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups (of two or more modules), each sorted, found
    with Tarjan's algorithm (iteratively: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(sorted(edges[root])))]
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
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


def loop_through(group: list[str], edges: Mapping[str, set[str]]) -> list[str]:
    """One shortest loop from the group's first module back to it, staying inside
    the group: ``[a, b, c, a]``."""
    start, members = group[0], set(group)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(edges[node] & members):
                if child == start:
                    path = [start]
                    while node != start:
                        path.append(node)
                        node = came_from[node]
                    return [start, *reversed(path[1:]), start]
                if child not in came_from:
                    came_from[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no loop through {group}")  # pragma: no cover


def without(
    edges: Mapping[str, set[str]], allowed: Iterable[tuple[str, str]]
) -> dict[str, set[str]]:
    kept = {m: set(imported) for m, imported in edges.items()}
    for importer, imported in allowed:
        kept[importer].discard(imported)
    return kept


@pytest.fixture(scope="module")
def edges() -> dict[str, set[str]]:
    for package in PACKAGES:  # not tests/notifiers, should tests/ be on sys.path
        spec = importlib.util.find_spec(package)
        assert spec is not None, package
        assert spec.origin == str(ROOT / package / "__init__.py"), spec.origin
    return import_edges(grimp.build_graph(*PACKAGES, cache_dir=None), PACKAGES)


def test_no_import_cycle_between_project_modules(edges: dict[str, set[str]]) -> None:
    kept = without(edges, ALLOWED)
    loops = [" -> ".join(loop_through(group, kept)) for group in cycles(kept)]
    assert not loops, "import cycles:\n" + "\n".join(loops)
    stale = [edge for edge in ALLOWED if not closes_a_cycle(edge, edges)]
    assert not stale, f"allowed edges that close no cycle any more, remove: {stale}"


def closes_a_cycle(edge: tuple[str, str], edges: Mapping[str, set[str]]) -> bool:
    """Whether ``edge`` exists and, with the other allowed edges still left out,
    is part of a cycle."""
    importer, imported = edge
    if imported not in edges.get(importer, set()):
        return False
    kept = without(edges, [other for other in ALLOWED if other != edge])
    return any({importer, imported} <= set(group) for group in cycles(kept))


def test_the_check_finds_a_cycle() -> None:
    """The check itself: a cycle through three modules, one through a package's
    ``__init__`` (an import of ``pkg.sub.x`` runs ``pkg/sub/__init__``, which imports
    back), and one through an allowed edge only when it is not allowed; a chain is
    not, nor a package whose module imports a sibling (the package is running)."""
    graph = grimp.ImportGraph()
    for module in (
        "pkg",
        "pkg.a",
        "pkg.b",
        "pkg.c",
        "pkg.d",
        "pkg.sub",
        "pkg.sub.x",
        "pkg.sub.y",
        "pkg.e",
        "pkg.f",
        "pkg.g",
        "pkg.g.h",
        "pkg.g.i",
        "other",
    ):
        graph.add_module(module)
    for importer, imported in (
        ("pkg.a", "pkg.b"),
        ("pkg.b", "pkg.c"),
        ("pkg.c", "pkg.a"),
        ("pkg.d", "pkg.a"),
        ("pkg.d", "other"),
        ("other", "pkg.d"),  # outside the packages: not ours to judge
        ("pkg.d", "pkg.sub.x"),  # runs pkg/sub/__init__ first...
        ("pkg.sub", "pkg.sub.y"),  # ...which imports y...
        ("pkg.sub.y", "pkg.d"),  # ...which imports d
        ("pkg.g", "pkg.g.h"),
        ("pkg.g.h", "pkg.g.i"),  # pkg/g/__init__ is already running: no cycle
        ("pkg.e", "pkg.f"),
        ("pkg.f", "pkg.e"),
    ):
        graph.add_import(importer=importer, imported=imported)
    edges = import_edges(graph, ["pkg"])
    assert cycles(without(edges, [("pkg.f", "pkg.e")])) == [
        ["pkg.a", "pkg.b", "pkg.c"],
        ["pkg.d", "pkg.sub", "pkg.sub.y"],
    ]
    assert ["pkg.e", "pkg.f"] in cycles(edges)
    assert loop_through(["pkg.d", "pkg.sub", "pkg.sub.y"], edges) == [
        "pkg.d",
        "pkg.sub",
        "pkg.sub.y",
        "pkg.d",
    ]
