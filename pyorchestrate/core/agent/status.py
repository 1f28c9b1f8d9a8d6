"""How an agent's run ended."""

from __future__ import annotations

import enum

__all__ = ["AgentTerminationStatus"]


class AgentTerminationStatus(enum.StrEnum):
    """The outcome an agent reports when it closes.

    SUCCESS: ``execute`` returned. WARNING: it was terminated by a signal but closed.
    ERROR: its config was rejected. CRITICAL: an exception ended it.
    """

    SUCCESS = "success"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"
