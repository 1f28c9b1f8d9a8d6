"""pyorchestrate: run a fleet of agents under one orchestrator, and hear about it.

The names users need are re-exported here::

    from pyorchestrate import Orchestrator, RunMode, OrchestratorEvent, LoopingThreadAgent
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

from .core.agent import (
    AgentConfig,
    AgentPlugin,
    AgentTerminationStatus,
    BaseAgent,
    BaseProcessAgent,
    BaseThreadAgent,
    ControlEvents,
    LoopingProcessAgent,
    LoopingThreadAgent,
    OneShotProcessAgent,
    OneShotThreadAgent,
    PeriodicProcessAgent,
    PeriodicThreadAgent,
    PoolProcessAgent,
    PoolThreadAgent,
    StateEvents,
    make_event,
)
from .core.config import ValidationPolicy, ValidationResult, ValidationSeverity
from .core.errors import (
    ConfigError,
    ConfigValidationError,
    DependencyError,
    LifecycleError,
    NonRecoverableException,
    PyOrchestrateError,
    RecoverableException,
    RegistrationError,
    TerminateAgent,
)
from .core.orchestrator import (
    AgentEntry,
    AgentSpec,
    AgentState,
    Orchestrator,
    OrchestratorConfig,
    RunMode,
    StartStatus,
    WorkerStartResult,
)
from .core.utilities.event import AgentEvent, EventRecord, OrchestratorEvent, Severity
from .core.utilities.messaging import MessageChannel, ServiceMessage

try:
    __version__ = version("pyorchestrate")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

logging.getLogger("pyorchestrate").addHandler(logging.NullHandler())

__all__ = [
    "AgentConfig",
    "AgentEntry",
    "AgentEvent",
    "AgentPlugin",
    "AgentSpec",
    "AgentState",
    "AgentTerminationStatus",
    "BaseAgent",
    "BaseProcessAgent",
    "BaseThreadAgent",
    "ConfigError",
    "ConfigValidationError",
    "ControlEvents",
    "DependencyError",
    "EventRecord",
    "LifecycleError",
    "LoopingProcessAgent",
    "LoopingThreadAgent",
    "MessageChannel",
    "NonRecoverableException",
    "OneShotProcessAgent",
    "OneShotThreadAgent",
    "Orchestrator",
    "OrchestratorConfig",
    "OrchestratorEvent",
    "PeriodicProcessAgent",
    "PeriodicThreadAgent",
    "PoolProcessAgent",
    "PoolThreadAgent",
    "PyOrchestrateError",
    "RecoverableException",
    "RegistrationError",
    "RunMode",
    "ServiceMessage",
    "Severity",
    "StartStatus",
    "StateEvents",
    "TerminateAgent",
    "ValidationPolicy",
    "ValidationResult",
    "ValidationSeverity",
    "WorkerStartResult",
    "__version__",
    "make_event",
]
