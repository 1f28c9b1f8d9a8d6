"""The events the pipeline watches, and the ones it sends of its own."""

from __future__ import annotations

from collections.abc import Iterable

from pyorchestrate import OrchestratorEvent

__all__ = [
    "AGENT_ERROR",
    "AGENT_FATAL",
    "AGENT_FLAPPING",
    "AGENT_HELD_BACK",
    "AGENT_READY",
    "AGENT_RECOVERED",
    "AGENT_RESTARTING",
    "AGENT_STARTED",
    "AGENT_TERMINATED",
    "AGENT_WATCHDOG_TIMEOUT",
    "ALERTS_DIGEST",
    "OBSERVED_EVENTS",
    "event_name",
    "event_names",
]

AGENT_RECOVERED = "agent_recovered"
"""The ``event`` of a recovery message."""
AGENT_FLAPPING = "agent_flapping"
"""The ``event`` of a flapping alert."""
AGENT_HELD_BACK = "agent_held_back"
"""The ``event`` of a report of what an agent's quiet (flapping, FATAL) held back."""
ALERTS_DIGEST = "alerts_digest"
"""The ``event`` of a quiet-hours digest (its ``agent`` is ``None``)."""

_E = OrchestratorEvent
AGENT_STARTED = _E.AGENT_STARTED.value
AGENT_READY = _E.AGENT_READY.value
AGENT_TERMINATED = _E.AGENT_TERMINATED.value
AGENT_ERROR = _E.AGENT_ERROR.value
AGENT_RESTARTING = _E.AGENT_RESTARTING.value
AGENT_FATAL = _E.AGENT_FATAL.value
AGENT_WATCHDOG_TIMEOUT = _E.AGENT_WATCHDOG_TIMEOUT.value

OBSERVED_EVENTS: frozenset[OrchestratorEvent] = frozenset(
    {
        _E.AGENT_STARTED,
        _E.AGENT_READY,
        _E.AGENT_TERMINATED,
        _E.AGENT_ERROR,
        _E.AGENT_RESTARTING,
        _E.AGENT_FATAL,
    }
)
"""What the pipeline watches to know an agent's state (recovery, flapping, FATAL),
whether or not the preset sends them."""

_KNOWN_EVENTS = {e.value for e in OrchestratorEvent}


def event_names(value: object) -> object:
    if value is None:
        return None
    items = [value] if isinstance(value, str | OrchestratorEvent) else value
    if not isinstance(items, Iterable):
        raise ValueError("must be a list of event names")
    names = []
    for item in items:
        name = item.value if isinstance(item, OrchestratorEvent) else str(item).lower()
        if name not in _KNOWN_EVENTS:
            known = ", ".join(sorted(_KNOWN_EVENTS))
            raise ValueError(f"unknown event {item!r} (known: {known})")
        names.append(name)
    return frozenset(names)


def event_name(event: str | OrchestratorEvent) -> str:
    names = event_names([event])
    assert isinstance(names, frozenset)
    return str(next(iter(names)))
