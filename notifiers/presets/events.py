"""What the orchestrator gives: its registration protocol, events, their severity."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pyorchestrate import EventRecord, OrchestratorEvent, severity_of

from ..base import Notification, Severity

__all__ = [
    "EventHandler",
    "SupportsRegisterEvent",
    "event_severity",
    "observed",
]

EventHandler = Callable[..., object]
"""What is registered for each event: it takes the callback keywords as ``**kwargs``."""


class SupportsRegisterEvent(Protocol):
    """What :func:`attach` needs of an orchestrator (``pyorchestrate.Orchestrator``)."""

    def register_event(
        self, event: OrchestratorEvent, callback: Callable[..., object]
    ) -> None: ...

    def unregister_event(
        self, event: OrchestratorEvent, callback: Callable[..., object]
    ) -> object: ...


def observed(kwargs: Mapping[str, Any]) -> Notification:
    """What the pipeline needs of an event it watches but does not send."""
    event = kwargs.get("event")
    generation = kwargs.get("generation_id")
    agent = kwargs.get("agent_name")
    name = str(getattr(event, "value", event))
    return Notification(
        f"{agent}: {name}",
        "",
        event_severity(kwargs),
        agent=agent,
        event=name,
        generation=generation if isinstance(generation, int) else None,
        error=kwargs.get("error_message"),
    )


def event_severity(kwargs: Mapping[str, Any]) -> Severity:
    """How bad the event itself says it is: DEBUG when it says nothing.

    The core decides an event's severity (:func:`pyorchestrate.severity_of`) and
    puts it in the typed ``record``; this only reads it (an event handed over
    without a record, as a test may do, is judged by the same function). INFO is
    every plain event's, so it says nothing: the template's severity stands.
    """
    record = kwargs.get("record")
    if isinstance(record, EventRecord):
        found = record.severity
    else:
        event = kwargs.get("event")
        if not isinstance(event, OrchestratorEvent):
            return Severity.DEBUG
        found = severity_of(event, kwargs)
    return found if found > Severity.INFO else Severity.DEBUG
