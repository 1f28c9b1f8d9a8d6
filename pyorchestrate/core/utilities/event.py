"""The seed's import path for the event contract, which lives in
:mod:`pyorchestrate.core.events` (``from pyorchestrate.core.utilities.event import
OrchestratorEvent`` keeps working; both name the same objects)."""

from __future__ import annotations

from ..events import (
    CALLBACK_KEYWORDS,
    AgentEvent,
    EventCallback,
    EventRecord,
    OrchestratorEvent,
    Severity,
    severity_of,
)

__all__ = [
    "CALLBACK_KEYWORDS",
    "AgentEvent",
    "EventCallback",
    "EventRecord",
    "OrchestratorEvent",
    "Severity",
    "severity_of",
]
