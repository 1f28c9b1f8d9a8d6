"""The event contract: what agents report, what the orchestrator emits, how bad it is,
and what the history keeps.

Everything an event is lives here: :class:`OrchestratorEvent` (what callbacks and the
history see), :class:`AgentEvent` (what an agent reports over its link; four of its
values *are* orchestrator events), :class:`Severity` (one enum for the core and
``notifiers``), :func:`severity_of` (the one place that decides how bad an event is),
the frozen :class:`EventRecord` the history stores, and the callback contract below.
``pyorchestrate.core.utilities.event`` re-exports it all (the seed's import path).

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
``output_tail``     AGENT_ERROR and AGENT_TERMINATED of a process agent: the last
                    lines it wrote to stdout and stderr (``""`` if none); absent
                    for threads
``reason``          AGENT_ERROR: ``exception``, ``config``, ``killed``, ``exited``,
                    ``start_timeout``, ``start_failed``, ``dependency_failed``,
                    ``watchdog``, ``ready_timeout``, ``abandoned``, ``max_runtime``,
                    ``ping_fail``; AGENT_MISSED: ``not_started``, ``late``,
                    ``down``, ``no_ping``; AGENT_LATE: ``warn_after``;
                    AGENT_RESTARTING: why the agent ended (``exited with code 3``);
                    AGENT_FATAL: ``flapping`` or ``max_restarts``
``attempt``         AGENT_RESTARTING: the restart's number since the agent was last
                    stable (1 = first); AGENT_FATAL: restarts made before giving up
``delay``           AGENT_RESTARTING: seconds until the restart
``restarts``        AGENT_FATAL: restarts within the flap window
``timeout``         AGENT_WATCHDOG_TIMEOUT: the ``heartbeat_timeout`` that passed;
                    AGENT_LATE: ``warn_after``; AGENT_ERROR ``max_runtime``: it
``due``             AGENT_MISSED: the missed run's due time (ISO 8601, in the
                    schedule's time zone)
``runtime``         AGENT_LATE: seconds the run has been going
``exit_code``       AGENT_TERMINATED/AGENT_ERROR of process agents: the exit code,
                    negative for a signal (``-9``); ``None`` for threads
``signal``          the signal's name when a process was killed (``SIGKILL``)
``termination_status``  AGENT_TERMINATED: ``success``, ``warning``, ``error``, ``critical``
``orchestrator``    the orchestrator's name
``seq``             the event's sequence number in the history
``record``          the :class:`EventRecord` stored in the history; its ``severity``
                    is :func:`severity_of` the event
``action``          OPERATOR_ACTION: what was done (``restart``, ``stop``,
                    ``start``, ``shutdown``, ``reload``, ``reopen-logs``, or one
                    done elsewhere: ``mute``, ``unmute``, ``ack``)
``source``          OPERATOR_ACTION: where it came from (``cli``, ``web``,
                    ``telegram``, ``api``)
``actor``           OPERATOR_ACTION: who, when the source knows (``@alice``)
``ok``              OPERATOR_ACTION: whether it succeeded
``result``          OPERATOR_ACTION: what it did, or why it failed; other facts
                    the source gave (``chat``) are in ``record.data``
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
    "severity_of",
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
    AGENT_MISSED = "agent_missed"
    """A scheduled run did not start within ``grace`` of its due time, or an
    external job sent no ping for it (the dead man's switch)."""
    AGENT_LATE = "agent_late"
    """A scheduled run is still going ``warn_after`` seconds after its start."""
    OPERATOR_ACTION = "operator_action"
    """Someone acted on the orchestrator from outside (the CLI, the web page, a chat,
    ``Orchestrator.run_command``), or recorded an action done elsewhere (a mute, an
    acknowledgement): who, from where, what, and the result. Its agent is the one
    acted on, if any."""


class AgentEvent(enum.Enum):
    """Status events an agent sends to its orchestrator (the ``event`` of a STATUS).

    An agent's report and the event the orchestrator then emits share one value, so
    the wire carries the orchestrator event's name: ``START`` is
    ``OrchestratorEvent.AGENT_STARTED.value``, and so on. ``CLOSE`` (the agent's
    outcome, before it ends) has no event of its own: the orchestrator emits
    ``AGENT_TERMINATED`` once the agent has ended. :attr:`orchestrator_event` gives
    the event each report leads to.
    """

    START = OrchestratorEvent.AGENT_STARTED.value
    READY = OrchestratorEvent.AGENT_READY.value
    ERROR = OrchestratorEvent.AGENT_ERROR.value
    CLOSE = "agent_close"
    HEARTBEAT = OrchestratorEvent.AGENT_HEARTBEAT.value

    @property
    def orchestrator_event(self) -> OrchestratorEvent:
        """The event the orchestrator emits for this report (``CLOSE``:
        ``AGENT_TERMINATED``, when the agent has ended)."""
        if self is AgentEvent.CLOSE:
            return OrchestratorEvent.AGENT_TERMINATED
        return OrchestratorEvent(self.value)


class Severity(enum.IntEnum):
    """How bad an event (or an alert) is: ordered like ``logging``'s levels, so
    ``severity >= Severity.ERROR`` and ``max()`` work.

    Its text is its name: ``str(Severity.ERROR)`` and ``f"{Severity.ERROR}"`` are
    ``"ERROR"``, and so is the ``severity`` of a record's JSON (``history``,
    ``subscribe``). ``Severity("error")``, ``Severity("ERROR")`` and
    ``Severity(40)`` all give ``Severity.ERROR``; :meth:`parse` also strips spaces and
    names the choices when it fails.
    """

    DEBUG = 10
    INFO = 20
    WARNING = 30
    ERROR = 40
    CRITICAL = 50

    def __str__(self) -> str:
        return self.name

    def __format__(self, format_spec: str) -> str:
        return format(self.name, format_spec)

    def __eq__(self, other: object) -> bool:
        # It was a StrEnum: ``record.severity == "ERROR"`` in user code keeps working.
        if isinstance(other, str):
            return self.name == other.strip().upper()
        return int.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = int.__hash__

    @classmethod
    def _missing_(cls, value: object) -> Severity | None:
        if isinstance(value, str):
            return cls.__members__.get(value.strip().upper())
        return None

    @classmethod
    def parse(cls, value: str | int | Severity) -> Severity:
        """``"error"``, ``"ERROR"``, ``40`` or ``Severity.ERROR`` → ``Severity.ERROR``.

        Raises:
            ValueError: not a severity; the message names the choices.
        """
        if isinstance(value, Severity):
            return value
        found: object
        if isinstance(value, str):
            found = cls._missing_(value)
        else:
            found = cls._value2member_map_.get(value)
        if not isinstance(found, Severity):
            names = ", ".join(m.name.lower() for m in cls)
            raise ValueError(f"unknown severity {value!r}; use one of {names}")
        return found


_EVENT_SEVERITY: dict[object, Severity] = {
    OrchestratorEvent.AGENT_ERROR: Severity.ERROR,
    OrchestratorEvent.AGENT_WATCHDOG_TIMEOUT: Severity.ERROR,
    OrchestratorEvent.AGENT_RESTARTING: Severity.WARNING,
    OrchestratorEvent.AGENT_FATAL: Severity.CRITICAL,
    OrchestratorEvent.AGENT_HEARTBEAT: Severity.DEBUG,
    OrchestratorEvent.AGENT_MISSED: Severity.ERROR,
    OrchestratorEvent.AGENT_LATE: Severity.WARNING,
}
# AGENT_TERMINATED: by the status the agent reported (AgentTerminationStatus values).
_TERMINATION_SEVERITY: dict[str, Severity] = {
    "success": Severity.INFO,
    "warning": Severity.WARNING,
    "error": Severity.ERROR,
    "critical": Severity.CRITICAL,
}


def severity_of(
    event: OrchestratorEvent, context: Mapping[str, object] | None = None
) -> Severity:
    """How bad ``event`` is: the one place that decides it.

    The history stores it in :attr:`EventRecord.severity`, and ``notifiers`` sends
    alerts at it (a template may only raise it). ERROR for ``AGENT_ERROR``,
    ``AGENT_WATCHDOG_TIMEOUT`` and ``AGENT_MISSED`` (a job that did not run is a
    failure), WARNING for ``AGENT_RESTARTING`` and ``AGENT_LATE``, CRITICAL for
    ``AGENT_FATAL``, DEBUG for ``AGENT_HEARTBEAT``; ``AGENT_TERMINATED`` by the
    ``termination_status`` in ``context`` (``success`` INFO, ``warning`` WARNING,
    ``error`` ERROR, ``critical`` CRITICAL); ``OPERATOR_ACTION`` WARNING when it
    failed (``ok`` false); INFO otherwise.
    """
    found = _EVENT_SEVERITY.get(event)
    if found is not None:
        return found
    if event is OrchestratorEvent.OPERATOR_ACTION and context:
        return Severity.WARNING if context.get("ok") is False else Severity.INFO
    if event is OrchestratorEvent.AGENT_TERMINATED and context:
        status = context.get("termination_status")
        if status is not None:
            text = str(getattr(status, "value", status)).lower()
            return _TERMINATION_SEVERITY.get(text, Severity.INFO)
    return Severity.INFO


CALLBACK_KEYWORDS: tuple[str, ...] = (
    "action",
    "actor",
    "agent_name",
    "attempt",
    "delay",
    "due",
    "error_message",
    "error_type",
    "event",
    "event_date",
    "event_time",
    "exit_code",
    "generation_id",
    "ok",
    "orchestrator",
    "output_tail",
    "pid",
    "reason",
    "record",
    "restarts",
    "result",
    "runtime",
    "seq",
    "signal",
    "source",
    "termination_status",
    "timeout",
    "traceback",
)
"""Every keyword a callback may receive (see the module docstring)."""

EventCallback = Callable[..., object]
"""A callable registered for an :class:`OrchestratorEvent`; see the module docstring."""


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One entry of the event history, and the typed form of one emitted event.

    Attributes:
        seq: the history's sequence number, dense (1, 2, 3, …); a heartbeat takes
            none of its own and carries the ``seq`` of the record before it.
        t_wall: wall-clock time (seconds since the epoch).
        t_mono_ns: monotonic clock in nanoseconds, for ordering and durations.
        category: ``orchestrator`` for agent events, ``system`` for INIT/SHUTDOWN.
        event_name: the event's value, e.g. ``agent_error``.
        agent: the agent's name, or ``None``.
        severity: :class:`Severity`, as :func:`severity_of` decided it.
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
        """Return the record as JSON-safe data, with an ISO ``timestamp``; the
        severity as its name (``"ERROR"``)."""
        return {
            "seq": self.seq,
            "t_wall": self.t_wall,
            "t_mono_ns": self.t_mono_ns,
            "timestamp": self.timestamp,
            "category": self.category,
            "event_name": self.event_name,
            "agent": self.agent,
            "severity": self.severity.name,
            "data": dict(self.data),
        }
