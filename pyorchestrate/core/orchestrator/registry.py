"""What the orchestrator knows about each agent: its spec and its runtime entry.

Names are checked at registration by :func:`~pyorchestrate.core.names.check_agent_name`
(re-exported here).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from ..agent.base import AgentConfig, BaseAgent
from ..agent.flags import ControlEvents, StateEvents
from ..agent.plugins import AgentPlugin
from ..agent.status import AgentTerminationStatus
from ..errors import RegistrationError
from ..names import check_agent_name, check_agent_name_type
from ..schedule import Schedule
from ..supervision_config import RestartTracker, SupervisionConfig
from ..utilities.messaging import AgentLink, MessageChannel
from ..utilities.output import AgentOutput
from .states import ACTIVE_STATES, AgentState

__all__ = [
    "AgentEntry",
    "AgentRegistry",
    "AgentSpec",
    "check_agent_name",
    "check_agent_name_type",
]


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """How to build an agent: what ``register_agent`` takes, as one value.

    Build these yourself to hand a list of agents to a ``Pool…Agent``.
    """

    agent_class: type[BaseAgent]
    name: str
    config: AgentConfig | None = None
    plugin: AgentPlugin | None = None
    control_events: ControlEvents | None = None
    state_events: StateEvents | None = None
    msg_channel: MessageChannel | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    schedule: Schedule | None = None
    """When it runs on its own (``None``: when started)."""

    def __post_init__(self) -> None:
        check_agent_name(self.name)


@dataclass(slots=True, eq=False)
class AgentEntry:
    """One registered agent and everything known about its current generation.

    Only the lifecycle manager writes ``state``; read it freely.
    """

    spec: AgentSpec
    index: int
    state: AgentState = AgentState.REGISTERED
    generation_id: int = 0
    agent: BaseAgent | None = None
    exit_seen: bool = False
    restart_pending: bool = False
    reader: Connection | None = None
    link: AgentLink | None = None
    pid: int | None = None
    launched: bool = False
    reached_running: bool = False
    close_seen: bool = False
    reader_eof: bool = False
    kill_at: float | None = None
    started_mono: float | None = None
    ended_mono: float | None = None
    start_deadline: float | None = None
    ready_deadline: float | None = None
    beat_deadline: float | None = None
    stop_deadline: float | None = None
    restart_at: float | None = None
    stop_requested: bool = False
    stop_reason: str | None = None
    failure: str | None = None
    reached_ready: bool = False
    ready_mono: float | None = None
    exit_code: int | None = None
    last_signal: str | None = None
    last_error: str | None = None
    termination_status: AgentTerminationStatus | None = None
    starts: int = 0
    restart_attempt: int = 0
    fatal_reason: str | None = None
    tracker: RestartTracker = field(default_factory=RestartTracker)
    output: AgentOutput | None = None
    """A process agent's captured stderr (its last lines), this generation's."""
    output_deadline: float | None = None
    """Set while an ended process agent's exit waits for its stderr pipe to end."""
    held_errors: list[dict[str, Any]] = field(default_factory=list)
    """A process agent's AGENT_ERROR events held until its exit (or ``error_hold_until``)."""
    error_hold_until: float | None = None

    @property
    def name(self) -> str:
        """The agent's registered name."""
        return self.spec.name

    @property
    def agent_class(self) -> type[BaseAgent]:
        """The registered agent class."""
        return self.spec.agent_class

    @property
    def flavour(self) -> str:
        """``thread`` or ``process``."""
        return str(self.spec.agent_class.flavour)

    @property
    def supervision(self) -> SupervisionConfig:
        """The agent's supervision policy (restarts, watchdog, deadlines)."""
        config = self.spec.config
        return config.supervision if config is not None else _NO_SUPERVISION

    @property
    def is_initialized(self) -> bool:
        """Whether an instance exists (the agent has been started at least once)."""
        return self.agent is not None

    @property
    def instance(self) -> BaseAgent:
        """The agent object of the current generation.

        Raises:
            RuntimeError: before the agent's first start.
        """
        if self.agent is None:
            raise RuntimeError(f"agent {self.name!r} has not been started")
        return self.agent

    def require_instance(self) -> BaseAgent:
        """Same as :attr:`instance`."""
        return self.instance

    def is_alive(self) -> bool:
        """Whether the agent's thread or process is running."""
        return self.agent is not None and self.agent.is_alive()

    @property
    def active(self) -> bool:
        """Whether the agent holds a worker slot."""
        return self.state in ACTIVE_STATES

    @property
    def config(self) -> AgentConfig | None:
        """The live config once started, else the registered one (maybe ``None``)."""
        if self.agent is not None:
            return self.agent.config
        return self.spec.config


_NO_SUPERVISION = SupervisionConfig()


class AgentRegistry:
    """Agents by name, in registration order."""

    def __init__(self) -> None:
        self._entries: dict[str, AgentEntry] = {}
        self._lock = threading.Lock()
        self.version = 0
        """Goes up by one with every agent added or removed."""

    def add(self, spec: AgentSpec) -> AgentEntry:
        """Add an entry for ``spec``; a duplicate name raises and keeps the first."""
        with self._lock:
            if spec.name in self._entries:
                raise RegistrationError(
                    f"an agent named {spec.name!r} is already registered"
                )
            entry = AgentEntry(spec=spec, index=len(self._entries))
            self._entries[spec.name] = entry
            self.version += 1
            return entry

    def remove(self, name: str) -> AgentEntry:
        """Take the entry called ``name`` out (the caller checked it is not live).

        Raises:
            RegistrationError: no agent has that name.
        """
        with self._lock:
            entry = self._entries.pop(name, None)
            self.version += 1
        if entry is None:
            raise RegistrationError(f"no agent named {name!r} is registered")
        return entry

    def get(self, name: str) -> AgentEntry | None:
        """The entry called ``name``, or ``None``."""
        return self._entries.get(name)

    def require(self, name: str) -> AgentEntry:
        """The entry called ``name``.

        Raises:
            TypeError: ``name`` is not a string.
            RegistrationError: no agent has that name.
        """
        check_agent_name_type(name)
        entry = self._entries.get(name)
        if entry is None:
            raise RegistrationError(f"no agent named {name!r} is registered")
        return entry

    def names(self) -> list[str]:
        """Names in registration order."""
        return list(self._entries)

    def __iter__(self) -> Iterator[AgentEntry]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
