"""Which agents must have started before which: validation and start order."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..errors import DependencyError

__all__ = ["DependencyGraph"]


class DependencyGraph:
    """``agent -> the agents it depends on``; names a cycle when it finds one."""

    def __init__(self) -> None:
        self._deps: dict[str, list[str]] = {}
        self._validated = False

    def add_dependency(self, name: str, dependencies: str | Iterable[str]) -> None:
        """Record that ``name`` depends on each of ``dependencies`` (duplicates dropped)."""
        deps = [dependencies] if isinstance(dependencies, str) else list(dependencies)
        if not deps:
            return
        current = self._deps.setdefault(name, [])
        for dep in deps:
            if dep not in current:
                current.append(dep)
        self._validated = False

    def remove(self, name: str) -> None:
        """Forget what ``name`` depends on (agents depending on it keep their edge:
        :meth:`validate` reports it until they change too)."""
        if self._deps.pop(name, None) is not None:
            self._validated = False

    def get_dependencies(self, name: str) -> list[str]:
        """The agents ``name`` depends on (empty if none)."""
        return list(self._deps.get(name, ()))

    def has_dependencies(self, name: str) -> bool:
        """Whether ``name`` depends on anything."""
        return bool(self._deps.get(name))

    def dependents_of(self, name: str) -> list[str]:
        """The agents that depend on ``name``."""
        return [agent for agent, deps in self._deps.items() if name in deps]

    def as_dict(self) -> dict[str, list[str]]:
        """Only the agents that have dependencies."""
        return {name: list(deps) for name, deps in self._deps.items() if deps}

    def validate(self, names: Iterable[str]) -> None:
        """Check every name is registered and there is no cycle.

        Raises:
            DependencyError: naming the unknown agents, or the agents of a cycle.
        """
        known = set(names)
        unknown_dependents = sorted(n for n in self._deps if n not in known)
        if unknown_dependents:
            raise DependencyError(
                "dependencies declared for unregistered agents: "
                + ", ".join(repr(n) for n in unknown_dependents)
            )
        for name, deps in self._deps.items():
            missing = [d for d in deps if d not in known]
            if missing:
                raise DependencyError(
                    f"agent {name!r} depends on unregistered agents: "
                    + ", ".join(repr(d) for d in missing)
                )
        cycle = self._find_cycle()
        if cycle:
            raise DependencyError("dependency cycle: " + " -> ".join(cycle))
        self._validated = True

    def _find_cycle(self) -> list[str] | None:
        white, grey, black = 0, 1, 2
        colour: dict[str, int] = {}
        stack: list[str] = []

        def visit(node: str) -> list[str] | None:
            colour[node] = grey
            stack.append(node)
            for dep in self._deps.get(node, ()):
                state = colour.get(dep, white)
                if state == grey:
                    return [*stack[stack.index(dep) :], dep]
                if state == white:
                    found = visit(dep)
                    if found:
                        return found
            stack.pop()
            colour[node] = black
            return None

        for node in list(self._deps):
            if colour.get(node, white) == white:
                found = visit(node)
                if found:
                    return found
        return None

    def topological_sort(self, names: Sequence[str]) -> list[str]:
        """Order ``names`` so every dependency comes before its dependents.

        Independent agents keep their order in ``names`` (registration order).

        Raises:
            DependencyError: if :meth:`validate` has not passed since the last change.
        """
        if not self._validated:
            raise DependencyError("validate() the dependencies before sorting them")
        position = {name: i for i, name in enumerate(names)}
        remaining = {name: set(self._deps.get(name, ())) for name in names}
        order: list[str] = []
        while remaining:
            ready = sorted(
                (n for n, deps in remaining.items() if not deps),
                key=position.__getitem__,
            )
            if not ready:  # unreachable after validate(); kept as a guard
                raise DependencyError("dependency cycle among: " + ", ".join(remaining))
            for name in ready:
                order.append(name)
                del remaining[name]
            for deps in remaining.values():
                deps.difference_update(ready)
        return order
