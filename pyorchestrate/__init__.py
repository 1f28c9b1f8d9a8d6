"""pyorchestrate: run a fleet of agents under one orchestrator, and hear about it.

The names users need are re-exported here::

    from pyorchestrate import Orchestrator, RunMode, OrchestratorEvent, LoopingThreadAgent
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    __version__: str
    from .core.agent import (
        AgentConfig,
        AgentPlugin,
        AgentTerminationStatus,
        BaseAgent,
        BaseProcessAgent,
        BaseThreadAgent,
        CommandAgent,
        CommandConfig,
        CommandSpawnError,
        ControlEvents,
        ExternalJob,
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
    from .core.events import (
        AgentEvent,
        EventRecord,
        OrchestratorEvent,
        Severity,
        severity_of,
    )
    from .core.orchestrator import (
        AgentEntry,
        AgentFailure,
        AgentSpec,
        AgentState,
        ExitCode,
        Orchestrator,
        OrchestratorConfig,
        RunMode,
        RunOutcome,
        StartStatus,
        WorkerStartResult,
    )
    from .core.schedule import Schedule
    from .core.supervision_config import SupervisionConfig
    from .core.utilities.messaging import MessageChannel, ServiceMessage

from ._lazy import lazy_exports

# Names load on first use, so ``import pyorchestrate.cli`` (and the CLI's start-up)
# does not pay for pydantic and the whole core.
_LAZY: dict[str, str] = {
    "AgentConfig": ".core.agent",
    "AgentEntry": ".core.orchestrator",
    "AgentEvent": ".core.events",
    "AgentPlugin": ".core.agent",
    "AgentFailure": ".core.orchestrator",
    "AgentSpec": ".core.orchestrator",
    "AgentState": ".core.orchestrator",
    "AgentTerminationStatus": ".core.agent",
    "BaseAgent": ".core.agent",
    "BaseProcessAgent": ".core.agent",
    "BaseThreadAgent": ".core.agent",
    "CommandAgent": ".core.agent",
    "CommandConfig": ".core.agent",
    "CommandSpawnError": ".core.agent",
    "ConfigError": ".core.errors",
    "ConfigValidationError": ".core.errors",
    "ControlEvents": ".core.agent",
    "DependencyError": ".core.errors",
    "EventRecord": ".core.events",
    "ExitCode": ".core.orchestrator",
    "ExternalJob": ".core.agent",
    "LifecycleError": ".core.errors",
    "LoopingProcessAgent": ".core.agent",
    "LoopingThreadAgent": ".core.agent",
    "MessageChannel": ".core.utilities.messaging",
    "NonRecoverableException": ".core.errors",
    "OneShotProcessAgent": ".core.agent",
    "OneShotThreadAgent": ".core.agent",
    "Orchestrator": ".core.orchestrator",
    "OrchestratorConfig": ".core.orchestrator",
    "OrchestratorEvent": ".core.events",
    "PeriodicProcessAgent": ".core.agent",
    "PeriodicThreadAgent": ".core.agent",
    "PoolProcessAgent": ".core.agent",
    "PoolThreadAgent": ".core.agent",
    "PyOrchestrateError": ".core.errors",
    "RecoverableException": ".core.errors",
    "RegistrationError": ".core.errors",
    "RunMode": ".core.orchestrator",
    "RunOutcome": ".core.orchestrator",
    "Schedule": ".core.schedule",
    "ServiceMessage": ".core.utilities.messaging",
    "Severity": ".core.events",
    "StartStatus": ".core.orchestrator",
    "StateEvents": ".core.agent",
    "SupervisionConfig": ".core.supervision_config",
    "TerminateAgent": ".core.errors",
    "ValidationPolicy": ".core.config",
    "ValidationResult": ".core.config",
    "ValidationSeverity": ".core.config",
    "WorkerStartResult": ".core.orchestrator",
    "make_event": ".core.agent",
    "severity_of": ".core.events",
}


def _read_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyorchestrate")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


_lazy_getattr, __dir__ = lazy_exports(__name__, _LAZY)


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value = _read_version()
        globals()[name] = value
        return value
    return _lazy_getattr(name)


__all__ = [
    "AgentConfig",
    "AgentEntry",
    "AgentEvent",
    "AgentFailure",
    "AgentPlugin",
    "AgentSpec",
    "AgentState",
    "AgentTerminationStatus",
    "BaseAgent",
    "BaseProcessAgent",
    "BaseThreadAgent",
    "CommandAgent",
    "CommandConfig",
    "CommandSpawnError",
    "ConfigError",
    "ConfigValidationError",
    "ControlEvents",
    "DependencyError",
    "EventRecord",
    "ExitCode",
    "ExternalJob",
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
    "RunOutcome",
    "Schedule",
    "ServiceMessage",
    "Severity",
    "StartStatus",
    "StateEvents",
    "SupervisionConfig",
    "TerminateAgent",
    "ValidationPolicy",
    "ValidationResult",
    "ValidationSeverity",
    "WorkerStartResult",
    "__version__",
    "make_event",
    "severity_of",
]
