"""The orchestrator: a facade over small managers, each with one job."""

from __future__ import annotations

from .callbacks import CallbackExecutor, EventBus
from .config import OrchestratorConfig, RunMode, default_socket_path
from .dependencies import DependencyGraph
from .history import EventHistory
from .lifecycle import LifecycleManager
from .orchestrator import Orchestrator
from .outcome import AgentFailure, ExitCode, RunOutcome
from .registry import AgentEntry, AgentRegistry, AgentSpec
from .router import MessageRouter
from .states import AgentState
from .workers import StartStatus, WorkerPool, WorkerStartResult

AgentLifecycleState = AgentState
"""The original library's name for :class:`AgentState`."""

__all__ = [
    "AgentEntry",
    "AgentFailure",
    "AgentLifecycleState",
    "AgentRegistry",
    "AgentSpec",
    "AgentState",
    "CallbackExecutor",
    "DependencyGraph",
    "EventBus",
    "EventHistory",
    "ExitCode",
    "LifecycleManager",
    "MessageRouter",
    "Orchestrator",
    "OrchestratorConfig",
    "RunMode",
    "RunOutcome",
    "StartStatus",
    "WorkerPool",
    "WorkerStartResult",
    "default_socket_path",
]
