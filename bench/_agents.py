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


class _Chatty:
    """Sends ``count`` DATA messages (kwarg, default 10,000) as fast as it can."""

    count: int = 10_000

    def execute(self) -> None:
        for i in range(self.count):  # type: ignore[attr-defined]
            self.send_message({"i": i})  # type: ignore[attr-defined]
        self.wait(_LIFETIME)  # type: ignore[attr-defined]


class ChattyThread(_Chatty, BaseThreadAgent):
    """Sends its messages from a thread (run on Ray: from its actor)."""


class ChattyProcess(_Chatty, BaseProcessAgent):
    """Sends its messages from a process of its own."""
