"""The command channel: a Unix socket server serving a ``ControlTarget``, and its
client.

``core.control`` never imports the orchestrator: it defines what it needs of one
(:class:`ControlTarget`, with the snapshots it hands over), and the orchestrator,
which satisfies it, starts a :class:`~pyorchestrate.core.control.server.CommandServer`
for itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import lazy_exports
from .permissions import (
    COMMANDS,
    PERMISSION_PRESETS,
    PRESETS,  # the former name of PERMISSION_PRESETS  # noqa: F401
    resolve_allowed_commands,
)

if TYPE_CHECKING:
    from .target import (
        AgentDetails,
        AgentSnapshot,
        ControlTarget,
        HistoryView,
        OrchestratorSnapshot,
        PoolCounts,
        ReopenOutcome,
        StartOutcome,
    )

# The CLI imports this package (for the client): the rest loads on first use.
__getattr__, __dir__ = lazy_exports(
    __name__,
    dict.fromkeys(
        (
            "AgentDetails",
            "AgentSnapshot",
            "ControlTarget",
            "HistoryView",
            "OrchestratorSnapshot",
            "PoolCounts",
            "ReopenOutcome",
            "StartOutcome",
        ),
        ".target",
    ),
)

__all__ = [
    "COMMANDS",
    "PERMISSION_PRESETS",
    "AgentDetails",
    "AgentSnapshot",
    "ControlTarget",
    "HistoryView",
    "OrchestratorSnapshot",
    "PoolCounts",
    "ReopenOutcome",
    "StartOutcome",
    "resolve_allowed_commands",
]
