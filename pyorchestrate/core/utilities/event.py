"""Events: what agents report, what the orchestrator emits, and what history keeps.

The callback contract is frozen here. A callback registered with
``Orchestrator.register_event(event, callback)`` is called with keyword arguments, and
receives only those its signature names (or all of them if it takes ``**kwargs``):

==================  ===========================================================
``event_date``      ISO date of the event (``2026-11-25``), local time
``event_time``      ISO time of the event (``09:58:21.123456``), local time
``agent_name``      the agent's registered name
``event``           the :class:`OrchestratorEvent` member
``generation_id``   which start of the agent this is (1 for the first start)
``pid``             the agent's process id (the orchestrator's pid for threads)
``error_message``   AGENT_ERROR only: what went wrong, e.g. ``ValueError: boom``
``error_type``      AGENT_ERROR of an exception: its class name (``ValueError``)
``traceback``       AGENT_ERROR of an exception: the formatted traceback
``output_tail``     AGENT_ERROR of a process agent: the last lines it wrote to
                    stderr (``""`` if none); ``None`` for threads
``reason``          AGENT_ERROR: ``exception``, ``config``, ``killed``, ``exited``,
                    ``start_timeout``, ``start_failed``, ``dependency_failed``,
                    ``watchdog``, ``ready_timeout``, ``abandoned``;
                    AGENT_RESTARTING: why the agent ended (``exited with code 3``);
                    AGENT_FATAL: ``flapping`` or ``max_restarts``
``attempt``         AGENT_RESTARTING: the restart's number since the agent was last
                    stable (1 = first); AGENT_FATAL: restarts made before giving up
``delay``           AGENT_RESTARTING: seconds until the restart
``restarts``        AGENT_FATAL: restarts within the flap window
``timeout``         AGENT_WATCHDOG_TIMEOUT: the ``heartbeat_timeout`` that passed
``exit_code``       AGENT_TERMINATED/AGENT_ERROR of process agents: the exit code,
                    negative for a signal (``-9``); ``None`` for threads
``signal``          the signal's name when a process was killed (``SIGKILL``)
``termination_status``  AGENT_TERMINATED: ``success``, ``warning``, ``error``, ``critical``
``orchestrator``    the orchestrator's name
``seq``             the event's sequence number in the history
``record``          the :class:`EventRecord` stored in the history
==================  ===========================================================
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CALLBACK_KEYWORDS",
    "AgentEvent",
    "EventCallback",
    "EventRecord",
    "OrchestratorEvent",
    "Severity",
]


class OrchestratorEvent(enum.Enum):
    """Events the orchestrator emits to callbacks and records in its history."""

    AGENT_REGISTERED = "agent_registered"
    AGENT_STARTED = "agent_started"
    AGENT_READY = "agent_ready"
    AGENT_TERMINATED = "agent_terminated"
    AGENT_ERROR = "agent_error"
    AGENT_HEARTBEAT = "agent_heartbeat"
    AGENT_RESTARTING = "agent_restarting"
    """An agent ended on its own and will start again after ``delay`` seconds."""
    AGENT_FATAL = "agent_fatal"
    """An agent flapped or used up ``max_restarts``: no more automatic restarts."""
    AGENT_WATCHDOG_TIMEOUT = "agent_watchdog_timeout"
    """An agent sent no heartbeat for ``heartbeat_timeout`` seconds."""


class AgentEvent(enum.Enum):
    """Status events an agent sends to its orchestrator (the ``event`` of a STATUS)."""

    START = "agent_started"
    READY = "agent_ready"
    ERROR = "agent_error"
    CLOSE = "agent_close"
    HEARTBEAT = "agent_heartbeat"


class Severity(enum.StrEnum):
    """Severity of a history record."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


CALLBACK_KEYWORDS: tuple[str, ...] = (
    "agent_name",
    "attempt",
    "delay",
    "error_message",
    "error_type",
    "event",
    "event_date",
    "event_time",
    "exit_code",
    "generation_id",
    "orchestrator",
    "output_tail",
    "pid",
    "reason",
    "record",
    "restarts",
    "seq",
    "signal",
    "termination_status",
    "timeout",
    "traceback",
)
"""Every keyword a callback may receive (see the module docstring)."""

EventCallback = Callable[..., object]
"""A callable registered for an :class:`OrchestratorEvent`; see the module docstring."""


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One entry of the event history.

    Attributes:
        seq: the history's sequence number, dense (1, 2, 3, …); a heartbeat takes
            none of its own and carries the ``seq`` of the record before it.
        t_wall: wall-clock time (seconds since the epoch).
        t_mono_ns: monotonic clock in nanoseconds, for ordering and durations.
        category: ``orchestrator`` for agent events, ``system`` for INIT/SHUTDOWN.
        event_name: the event's value, e.g. ``agent_error``.
        agent: the agent's name, or ``None``.
        severity: :class:`Severity`.
        data: context as strings, each cut to the history's payload limit.
    """

    seq: int
    t_wall: float
    t_mono_ns: int
    category: str
    event_name: str
    agent: str | None
    severity: Severity
    data: Mapping[str, str] = field(default_factory=dict)

    @property
    def timestamp(self) -> str:
        """The wall-clock time as an ISO 8601 string with the local offset."""
        return _dt.datetime.fromtimestamp(self.t_wall).astimezone().isoformat()

    def to_dict(self) -> dict[str, Any]:
        """Return the record as JSON-safe data, with an ISO ``timestamp``."""
        return {
            "seq": self.seq,
            "t_wall": self.t_wall,
            "t_mono_ns": self.t_mono_ns,
            "timestamp": self.timestamp,
            "category": self.category,
            "event_name": self.event_name,
            "agent": self.agent,
            "severity": self.severity.value,
            "data": dict(self.data),
        }
