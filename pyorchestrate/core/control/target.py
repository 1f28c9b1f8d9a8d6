"""What the control commands need from what they control: the ``ControlTarget``.

The commands and the server see an orchestrator only through this protocol, so
``core.control`` never imports ``core.orchestrator`` (the orchestrator imports
control, to serve it). A target hands over plain snapshots, read under its own lock;
:mod:`~pyorchestrate.core.control.reports` turns them into the JSON replies.

``Orchestrator`` satisfies :class:`ControlTarget`; so can any other object that
answers these few questions (a test double, an orchestrator proxy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:  # annotations only: the CLI imports this package, and stays light
    from pathlib import Path

    from ..utilities.event import EventRecord
    from .process_stats import ProcessStats

__all__ = [
    "AgentDetails",
    "AgentSnapshot",
    "ControlTarget",
    "HistoryView",
    "OrchestratorSnapshot",
    "PoolCounts",
    "ReopenOutcome",
    "StartOutcome",
]


class AgentSnapshot(NamedTuple):
    """One agent as its orchestrator saw it at one moment, as far as a listing
    (``ps``, ``stats``) needs it (durations in seconds, not yet rounded).

    A named tuple, not a frozen dataclass: ``ps`` makes one per agent under the
    lifecycle lock, and a named tuple is built in half the time (2 µs against 4).
    """

    name: str
    class_name: str
    state: str
    """The lifecycle state's value (``RUNNING``, ``TERMINATED``, ...)."""
    flavour: str
    alive: bool
    started: bool
    """Whether it reached RUNNING in its latest start."""
    in_queue: bool
    pid: int | None
    uptime: float | None
    """Since its latest start, while active; ``None`` otherwise."""
    starts: int
    exit_code: int | None
    signal: str | None
    next_start_in: float | None
    """Time left before a scheduled restart (``None`` if none is scheduled)."""
    fatal_reason: str | None
    last_error: str | None
    next_run: str | None = None
    """A scheduled agent's next due time (ISO 8601 in its schedule's time zone)."""
    last_result: str | None = None
    """A scheduled agent's last run: ``success``, ``failed``, ``max_runtime`` or
    ``missed`` (``None``: not scheduled, or no run yet)."""
    node: str | None = None
    """A Ray agent's node (its IP address), once its actor is placed."""


@dataclass(frozen=True, slots=True)
class AgentDetails:
    """One agent's whole state, read at one moment: its :class:`AgentSnapshot` and
    what only ``status NAME`` shows (the config is dumped here, so a listing never
    pays for it)."""

    agent: AgentSnapshot
    generation_id: int
    restart_policy: str
    restart_attempt: int
    termination_status: str | None
    dependencies: tuple[str, ...]
    config: dict[str, Any] | None
    ray: dict[str, Any] | None = None
    """A Ray agent's actor: name, namespace, id, node and resources."""


@dataclass(frozen=True, slots=True)
class PoolCounts:
    """How many agents hold a worker slot, may hold one, and wait for one."""

    running: int
    max_workers: int
    waiting: int


@dataclass(frozen=True, slots=True)
class OrchestratorSnapshot:
    """The orchestrator itself at one moment."""

    name: str
    run_mode: str
    started: bool
    shutdown_requested: bool
    uptime: float
    """Wall-clock seconds since it was built."""
    total_agents: int
    pool: PoolCounts
    dependencies: dict[str, list[str]]
    """Only the agents that have dependencies."""
    command_interface_enabled: bool
    command_socket_path: str


class StartOutcome(Protocol):
    """What a start request did (``Orchestrator.start_agent``'s result)."""

    @property
    def status(self) -> StrEnum:
        """``started``, ``queued``, ..."""
        ...

    @property
    def reason(self) -> str:
        """Why, for a person."""
        ...


class ReopenOutcome(Protocol):
    """What a reopen of the log files did (``Orchestrator.reopen_logs``'s result)."""

    @property
    def reopened(self) -> tuple[Path, ...]:
        """The files reopened."""
        ...

    @property
    def failed(self) -> tuple[tuple[Path, str], ...]:
        """The files that could not be, with the error."""
        ...


class HistoryView(Protocol):
    """The event history, as the ``history`` commands and ``subscribe`` read it."""

    @property
    def max_events(self) -> int:
        """The capacity of the main store."""
        ...

    @property
    def last_seq(self) -> int:
        """The ``seq`` of the newest record that is not a heartbeat (0 when none)."""
        ...

    def last(
        self,
        n: int = 100,
        *,
        agent: str | None = None,
        event_name: str | None = None,
        after_seq: int | None = None,
    ) -> list[EventRecord]:
        """Up to ``n`` newest matching records, oldest first."""
        ...

    def position(self, record: EventRecord) -> tuple[int, bool, int]:
        """A key that only grows as records are made (see ``EventHistory``)."""
        ...

    def subscribe(
        self, listener: Callable[[EventRecord], None], *, after_seq: int | None = None
    ) -> tuple[list[EventRecord], Callable[[], None]]:
        """Call ``listener`` (without blocking) for every new record; returns the
        backlog after ``after_seq`` and the function that unsubscribes."""
        ...

    def stats(self, agent: str | None = None) -> dict[str, object]:
        """Counts of every record ever made, by event name."""
        ...

    def capacity_info(self) -> dict[str, object]:
        """Sizes and capacities of the stores."""
        ...


class ControlTarget(Protocol):
    """Everything a control command asks of an orchestrator.

    Reads return snapshots (one consistent picture each); the requests are the
    orchestrator's own public methods, with their errors (``RegistrationError``,
    ``LifecycleError``) left for the commands to turn into replies.
    """

    @property
    def name(self) -> str:
        """The orchestrator's name (the ``sender`` of every reply)."""
        ...

    @property
    def allowed_commands(self) -> frozenset[str]:
        """The commands its control interface accepts."""
        ...

    @property
    def history(self) -> HistoryView:
        """Its event history."""
        ...

    @property
    def process_stats(self) -> ProcessStats:
        """The psutil reader kept across ``stats`` calls (CPU % needs two readings)."""
        ...

    def snapshot(self) -> OrchestratorSnapshot:
        """The orchestrator now."""
        ...

    def has_agent(self, name: str) -> bool:
        """Whether an agent ``name`` is registered."""
        ...

    def agent_snapshots(self) -> list[AgentSnapshot]:
        """Every agent, in registration order, in one consistent picture."""
        ...

    def agent_details(self, name: str) -> AgentDetails:
        """One agent's whole state now; raises ``RegistrationError`` if it is
        unknown."""
        ...

    def output_tail(self, name: str) -> str | None:
        """The last stderr lines of process agent ``name`` (``None``: a thread
        agent, or not started)."""
        ...

    @property
    def logs_dir(self) -> Path | None:
        """The directory of the process agents' output files (``None``: they are not
        written to files); ``logs`` reads them there."""
        ...

    def reopen_logs(self) -> ReopenOutcome:
        """Close and open again every output file in use, at its path (after
        logrotate renamed them)."""
        ...

    def start_agent(self, name: str) -> StartOutcome:
        """Start (or queue) one agent."""
        ...

    def stop_agent(self, name: str) -> str:
        """Ask one agent to stop; what happened, for a person."""
        ...

    def restart_agent(self, name: str) -> str:
        """Stop one agent if it runs and start it again; what happened."""
        ...

    def ping(self, name: str, *, failed: bool = False, message: str = "") -> str:
        """An external job reports a run (success, or ``failed``); what happened."""
        ...

    def record_action(
        self,
        action: str,
        *,
        agent: str | None = None,
        source: str,
        actor: str | None = None,
        ok: bool = True,
        result: str = "ok",
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Record an ``OPERATOR_ACTION`` event: who (``actor``), from where
        (``source``), did what to which agent, and the result."""
        ...

    def request_shutdown(self) -> None:
        """Stop every agent and the orchestrator."""
        ...

    def reload(self) -> dict[str, Any]:
        """Re-read the file the target was built from; the reply's data (what was
        added, removed, changed). Raises a ``ControlError`` when there is nothing to
        reload, or the file is invalid (then nothing changed)."""
        ...
