"""What the orchestrator gives: its registration protocol, events, their severity."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pyorchestrate import OrchestratorEvent

from ..base import Notification, Severity

__all__ = ["EventHandler", "SupportsRegisterEvent"]

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


def _event(value: object) -> OrchestratorEvent:
    if isinstance(value, OrchestratorEvent):
        return value
    if isinstance(value, str):
        try:
            return OrchestratorEvent(value.lower())
        except ValueError:
            pass
    known = ", ".join(e.value for e in OrchestratorEvent)
    raise ValueError(f"not an orchestrator event: {value!r} (known: {known})")


_STATUS_SEVERITY = {
    "success": Severity.INFO,
    "warning": Severity.WARNING,
    "error": Severity.ERROR,
    "critical": Severity.CRITICAL,
}


def _observed(kwargs: Mapping[str, Any]) -> Notification:
    """What the pipeline needs of an event it watches but does not send."""
    event = kwargs.get("event")
    generation = kwargs.get("generation_id")
    agent = kwargs.get("agent_name")
    name = str(getattr(event, "value", event))
    return Notification(
        f"{agent}: {name}",
        "",
        _severity_of(kwargs),
        agent=agent,
        event=name,
        generation=generation if isinstance(generation, int) else None,
        error=kwargs.get("error_message"),
    )


def _severity_of(kwargs: Mapping[str, Any]) -> Severity:
    """How bad the event itself says it is (DEBUG when it says nothing).

    A terminated agent's status (``warning``, ``error``, ``critical``) counts, and so
    does its history record's severity when above INFO (INFO is every event's default).
    """
    found = Severity.DEBUG
    status = kwargs.get("termination_status")
    if status is not None:
        found = _STATUS_SEVERITY.get(
            str(getattr(status, "value", status)).lower(), found
        )
    record = kwargs.get("record")
    level = getattr(record, "severity", None)
    if level is not None:
        with contextlib.suppress(ValueError):
            parsed = Severity.parse(str(getattr(level, "value", level)))
            if parsed > Severity.INFO:
                found = max(found, parsed)
    return found
