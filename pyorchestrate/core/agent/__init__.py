"""Agents: user code that runs in a thread or a process and reports its lifecycle.

Subclass a concrete flavour and fill in the hook:

=====================  ===================  ==========================
kind                   thread flavour       process flavour
=====================  ===================  ==========================
base (``execute``)     BaseThreadAgent      BaseProcessAgent
looping (``cycle``)    LoopingThreadAgent   LoopingProcessAgent
periodic (``runner``)  PeriodicThreadAgent  PeriodicProcessAgent
one-shot (``task``)    OneShotThreadAgent   OneShotProcessAgent
pool (children)        PoolThreadAgent      PoolProcessAgent
=====================  ===================  ==========================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import lazy_exports
from ..errors import NonRecoverableException, RecoverableException, TerminateAgent
from .base import AgentConfig, BaseAgent, build_agent_config
from .command import CommandAgent, CommandConfig, CommandSpawnError
from .external import ExternalJob
from .flags import (
    AnyEvent,
    ControlEvents,
    Flavour,
    ProcessEvent,
    StateEvents,
    make_event,
)
from .flavours import DEFAULT_START_METHOD, ProcessFlavour, StartMethod, ThreadFlavour
from .looping import LoopingAgent, LoopingConfig
from .oneshot import OneShotAgent
from .periodic import PeriodicAgent, PeriodicConfig
from .plugins import AgentPlugin, PluginManager, PluginProtocol
from .status import AgentTerminationStatus

if TYPE_CHECKING:
    from ..pool import PoolAgent, PoolAgentConfig, PoolProcessAgent, PoolThreadAgent

# A pool agent runs an orchestrator of its own, so it lives above the orchestrator
# (``pyorchestrate.core.pool``); its old import path loads it on first use.
__getattr__, __dir__ = lazy_exports(
    __name__,
    dict.fromkeys(
        ("PoolAgent", "PoolAgentConfig", "PoolProcessAgent", "PoolThreadAgent"),
        "pyorchestrate.core.pool",
    ),
)

__all__ = [
    "DEFAULT_START_METHOD",
    "AgentConfig",
    "AgentPlugin",
    "AgentTerminationStatus",
    "AnyEvent",
    "BaseAgent",
    "BaseProcessAgent",
    "BaseThreadAgent",
    "CommandAgent",
    "CommandConfig",
    "CommandSpawnError",
    "ControlEvents",
    "ExternalJob",
    "Flavour",
    "LoopingAgent",
    "LoopingConfig",
    "LoopingProcessAgent",
    "LoopingThreadAgent",
    "NonRecoverableException",
    "OneShotAgent",
    "OneShotProcessAgent",
    "OneShotThreadAgent",
    "PeriodicAgent",
    "PeriodicConfig",
    "PeriodicProcessAgent",
    "PeriodicThreadAgent",
    "PluginManager",
    "PluginProtocol",
    "PoolAgent",
    "PoolAgentConfig",
    "PoolProcessAgent",
    "PoolThreadAgent",
    "ProcessEvent",
    "ProcessFlavour",
    "RecoverableException",
    "StartMethod",
    "StateEvents",
    "TerminateAgent",
    "ThreadFlavour",
    "build_agent_config",
    "make_event",
]


class BaseThreadAgent(ThreadFlavour, BaseAgent):
    """A base agent in a thread: override ``execute()``."""


class BaseProcessAgent(ProcessFlavour, BaseAgent):
    """A base agent in a process: override ``execute()``."""


class LoopingThreadAgent(ThreadFlavour, LoopingAgent):
    """A looping agent in a thread: override ``cycle()``."""


class LoopingProcessAgent(ProcessFlavour, LoopingAgent):
    """A looping agent in a process: override ``cycle()``."""


class PeriodicThreadAgent(ThreadFlavour, PeriodicAgent):
    """A periodic agent in a thread: override ``runner()``."""


class PeriodicProcessAgent(ProcessFlavour, PeriodicAgent):
    """A periodic agent in a process: override ``runner()``."""


class OneShotThreadAgent(ThreadFlavour, OneShotAgent):
    """A one-shot agent in a thread: override ``task()``."""


class OneShotProcessAgent(ProcessFlavour, OneShotAgent):
    """A one-shot agent in a process: override ``task()``."""
