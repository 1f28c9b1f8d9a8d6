"""What the pipeline keeps: mutes, counters, and per agent, group and held alert."""

from __future__ import annotations

import datetime as _dt
import fnmatch
import math
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..base import Notification, Severity

__all__ = ["Mute", "PipelineStats"]

_MIXED: Any = object()  # a window whose alerts are not all identical

Key = tuple[str | None, str | None, str | None]


@dataclass(frozen=True, slots=True)
class Mute:
    """An active mute: alerts of matching agents and events are dropped until ``until``.

    ``agent`` is a glob (``None``: every agent), ``event`` an event name (``None``:
    every event); ``until`` is wall-clock seconds since the epoch.
    """

    agent: str | None
    event: str | None
    until: float
    reason: str = ""
    _pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, agent: str | None, event: str | None) -> bool:
        """Whether an alert of ``agent`` and ``event`` is muted by this (if active)."""
        if self.event is not None and event != self.event:
            return False
        if self.agent is None:
            return True
        pattern = self._pattern
        if pattern is None:  # built by hand, not by the pipeline: compile the glob
            pattern = re.compile(fnmatch.translate(self.agent))
            object.__setattr__(self, "_pattern", pattern)
        return pattern.fullmatch(agent or "") is not None

    @property
    def until_datetime(self) -> _dt.datetime:
        """``until`` as an aware local datetime."""
        return _dt.datetime.fromtimestamp(self.until).astimezone()


@dataclass
class PipelineStats:
    """Counters of an :class:`AlertPipeline` (a snapshot from :meth:`~AlertPipeline.stats`)."""

    offered: int = 0
    sent: int = 0
    grouped: int = 0
    deduplicated: int = 0
    muted: int = 0
    quiet: int = 0  # held back while flapping or FATAL
    reports: int = 0  # messages reporting what was held back (agent_held_back)
    held: int = 0  # held for the quiet-hours digest
    summaries: int = 0
    flapping: int = 0
    recoveries: int = 0
    digests: int = 0
    notes_dropped: int = 0  # counts never shown (left at flush)


@dataclass(slots=True)
class _Note:
    count: int
    since: float  # wall
    event: str | None = None
    last: str | None = None
    state: str | None = None


@dataclass(slots=True, eq=False)
class _Group:
    agent: str | None
    event: str | None
    window: float
    send_first: bool
    deadline: float = -math.inf
    count: int = 0
    hidden: int = 0
    first_at: float = 0.0
    first_wall: float = 0.0
    hidden_wall: float = 0.0
    last_at: float = 0.0
    last_wall: float = 0.0
    last: Notification | None = None
    severity: Severity = Severity.DEBUG
    sent_first: bool = False
    window_key: Any = None
    reported_key: Key | None = None
    reported_at: float = -math.inf
    token: int = 0
    scheduled: bool = False


@dataclass(slots=True, eq=False)
class _Agent:
    name: str | None
    failures: deque[float]
    up: bool = False
    ready_at: float | None = None
    last_failure: float | None = None
    incident_at: float | None = None
    incident_wall: float = 0.0
    incident_errors: int = 0
    incident_restarts: int = 0
    back_at: float | None = (
        None  # READY after the incident began (and no failure since)
    )
    quiet: str | None = None  # "flapping" | "FATAL"
    quiet_wall: float = 0.0
    quiet_count: int = 0  # held back since quiet_wall, not yet in a note
    quiet_last: str | None = None
    quiet_severity: Severity = Severity.DEBUG
    stable_due: float | None = None
    report_due: float | None = None  # the next report of what is held back
    generation: int | None = None
    groups: set[tuple[str | None, str | None]] = field(default_factory=set)
    notes: dict[Any, _Note] = field(default_factory=dict)


@dataclass(slots=True)
class _Held:
    count: int
    first_wall: float
    last_wall: float
    last: str
    severity: Severity


_MAX_NOTES = 32
