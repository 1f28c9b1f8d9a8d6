"""Events, messages and timers shared by agents and the orchestrator."""

from __future__ import annotations

from .event import (
    CALLBACK_KEYWORDS,
    AgentEvent,
    EventCallback,
    EventRecord,
    OrchestratorEvent,
    Severity,
)
from .messaging import (
    AgentLink,
    MessageChannel,
    MessageType,
    ServiceMessage,
    mp_context,
)
from .timer import PeriodicTimer

__all__ = [
    "CALLBACK_KEYWORDS",
    "AgentEvent",
    "AgentLink",
    "EventCallback",
    "EventRecord",
    "MessageChannel",
    "MessageType",
    "OrchestratorEvent",
    "PeriodicTimer",
    "ServiceMessage",
    "Severity",
    "mp_context",
]
