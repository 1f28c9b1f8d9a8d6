"""Agents for the benchmarks, at module level so process agents can be unpickled.

Each idles until it is stopped (or killed), so one registered agent can be started,
measured and stopped again many times.
"""

from __future__ import annotations

from pyorchestrate import BaseProcessAgent, BaseThreadAgent

_LIFETIME = 60.0  # an agent never outlives a benchmark, whatever happens


class _Idle:
    """Waits for its stop event, doing nothing."""

    def execute(self) -> None:
        self.wait(_LIFETIME)  # type: ignore[attr-defined]


class IdleThread(_Idle, BaseThreadAgent):
    """Idles in a thread of the orchestrator's process."""


class IdleProcess(_Idle, BaseProcessAgent):
    """Idles in a process of its own."""
