"""What the alert rules share: one PipelineState, and one Alert per alert in the chain.

The rules (:mod:`notifiers.pipeline`) keep nothing of their own between calls: what
they know of each agent, group, repeat and held alert is here, in one object the
pipeline owns, changed only under its lock.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import heapq
import itertools
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from ..base import Notification, Severity
from ..state import Mute
from ..templates import PIPELINE_TEMPLATES, Template, render_alert
from .config import PipelineConfig
from .events import ALERTS_DIGEST

__all__ = [
    "MIXED",
    "Agent",
    "Alert",
    "Group",
    "Held",
    "PipelineState",
    "PipelineStats",
]

MIXED: Any = object()  # a window whose alerts are not all identical

Key = tuple[str | None, str | None, str | None]
Fire = Callable[[float, float], None]  # (deadline, now)
Valid = Callable[[float], bool]  # (deadline)


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
class Group:
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
class Agent:
    name: str | None
    failures: deque[float]
    up: bool = False
    ready_at: float | None = None
    last_failure: float | None = None
    incident_at: float | None = None
    incident_wall: float = 0.0
    incident_errors: int = 0
    incident_restarts: int = 0
    back_at: float | None = None  # READY after the incident began (no failure since)
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
class Held:
    count: int
    first_wall: float
    last_wall: float
    last: str
    severity: Severity


_MAX_NOTES = 32


class Alert:
    """One alert on its way through the rules (what each rule is called with).

    Attributes:
        notification: the alert.
        state: the :class:`PipelineState` every rule shares.
        now: the pipeline's clock (monotonic seconds) when it was offered.
        forward: ``False``: the pipeline is only told of it (e.g. AGENT_READY for
            recovery); it is never sent.
        synthesized: made by the rules (a summary, a flapping or recovery message, a
            report, a digest); only mutes and quiet hours apply to it.
        final: passed on as it is (an AGENT_FATAL, or ``synthesized``): grouping and
            dedup leave it alone.
        taken: a rule took it (dropped, held or grouped it): it is not sent, and only
            rules with ``sees_taken`` still see it.
        count: how many alerts it stands for (a summary of 12 counts 12).
        agent: what the pipeline knows of the alert's agent (a private record).
    """

    __slots__ = (
        "agent",
        "count",
        "final",
        "forward",
        "notes",
        "notification",
        "now",
        "state",
        "synthesized",
        "taken",
    )

    def __init__(
        self,
        notification: Notification,
        state: PipelineState,
        now: float,
        agent: Agent,
        forward: bool = True,
    ) -> None:
        self.notification = notification
        self.state = state
        self.now = now
        self.agent = agent
        self.forward = forward
        self.taken = not forward
        self.synthesized = self.final = self.notes = False
        self.count = 1

    def __repr__(self) -> str:
        flags = [
            name
            for name in ("synthesized", "final", "taken")
            if getattr(self, name) is True
        ]
        return f"<Alert {self.notification.title!r} {' '.join(flags)}>".replace(
            " >", ">"
        )


class PipelineState:
    """Everything the alert rules know, shared by them (one per pipeline).

    Attributes:
        config: the rules' settings.
        stats: the counters.
        mutes: the pipeline's mutes (config and :meth:`AlertPipeline.mute`).
    """

    def __init__(
        self,
        config: PipelineConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] | None = None,
        templates: Mapping[str, Template] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        if wall_clock is None:
            if clock is time.monotonic:
                wall_clock = time.time
            else:
                anchor = time.time() - clock()

                def wall_clock() -> float:
                    return anchor + clock()

        self.wall = wall_clock
        self.templates: dict[str, Template] = {
            **PIPELINE_TEMPLATES,
            **{k: v for k, v in (templates or {}).items() if k in PIPELINE_TEMPLATES},
        }
        self.tz = ZoneInfo(config.timezone) if config.timezone else None
        quiet = config.quiet_hours
        zone = (quiet.timezone if quiet else None) or config.timezone
        self.quiet_tz = ZoneInfo(zone) if zone else None
        self.stats = PipelineStats()
        self.mutes: list[Mute] = []
        # The rules' records.
        self.agents: dict[str | None, Agent] = {}
        self.groups: dict[tuple[str | None, str | None], Group] = {}
        self.group_specs: dict[
            tuple[str | None, str | None], tuple[float, bool] | None
        ] = {}
        self.dedup: OrderedDict[Key, float] = OrderedDict()
        self.held: dict[tuple[str | None, str | None], Held] = {}  # the digest
        self.held_total = 0
        self.held_overflow = 0
        self.digest_due: float | None = None
        self.quiet_valid_until = -math.inf  # quiet hours, cached until this wall time
        self.quiet_active = False
        # Timers: (deadline, seq, fire, valid); a stale entry is skipped.
        self.heap: list[tuple[float, int, Fire, Valid]] = []
        self._seq = itertools.count()
        # Set by the pipeline for each call: the chain, and where messages go.
        self.run: Callable[[Alert], bool] = lambda alert: not alert.taken
        self.out: list[Notification] = []

    # ------------------------------------------------------------ records
    def agent(self, name: str | None) -> Agent:
        """The record of agent ``name`` (made on first use)."""
        agent = self.agents.get(name)
        if agent is None:
            size = self.config.flap_threshold or 1
            agent = self.agents[name] = Agent(name, deque(maxlen=size))
        return agent

    # ------------------------------------------------------------ timers
    def schedule(self, deadline: float, fire: Fire, valid: Valid) -> None:
        """Call ``fire(deadline, now)`` once the clock reaches ``deadline``, if
        ``valid(deadline)`` still holds then."""
        heapq.heappush(self.heap, (deadline, next(self._seq), fire, valid))

    def next_due(self) -> float | None:
        heap = self.heap
        while heap and not heap[0][3](heap[0][0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def collect_due(self, now: float) -> None:
        heap = self.heap
        while heap and heap[0][0] <= now:
            deadline, _, fire, valid = heapq.heappop(heap)
            if valid(deadline):
                fire(deadline, now)

    # ------------------------------------------------------------ output
    def emit(
        self,
        notification: Notification,
        now: float,
        *,
        count: int = 1,
        notes: bool = False,
    ) -> bool:
        """Send a message the rules made, through the rules (mutes, quiet hours);
        ``True`` if it went out. ``notes``: its count includes the agent's notes."""
        alert = Alert(notification, self, now, self.agent(notification.agent))
        alert.synthesized = alert.final = True
        alert.count = count
        alert.notes = notes  # its count includes the agent's notes (a report)
        return self.run(alert)

    def send(self, notification: Notification) -> None:
        """Out it goes, with the counts noted for its agent ("+7 identical …")."""
        agent = self.agents.get(notification.agent)
        if agent is not None and agent.notes:
            lines = [
                self._note_text(agent, key, note, notification)
                for key, note in agent.notes.items()
            ]
            agent.notes.clear()
            body = notification.body
            body = "\n".join([*lines, body]) if body else "\n".join(lines)
            notification = dataclasses.replace(notification, body=body)
        self.stats.sent += 1
        self.out.append(notification)

    def note(
        self,
        agent: Agent,
        key: Any,
        count: int,
        since: float,
        event: str | None = None,
        last: str | None = None,
        *,
        state: str | None = None,
    ) -> None:
        """Count ``count`` alerts of ``agent`` not sent, for its next message."""
        note = agent.notes.get(key)
        if note is None:
            if len(agent.notes) >= _MAX_NOTES:
                key = ("other",)
                note = agent.notes.get(key)
            if note is None:
                agent.notes[key] = _Note(count, since, event, last, state)
                return
        note.count += count
        note.last = last if last is not None else note.last

    def _note_text(self, agent: Agent, key: Any, note: _Note, n: Notification) -> str:
        kind = key[0]
        fields: dict[str, Any] = {
            "agent": agent.name,
            "count": note.count,
            "since": self.time(note.since),
            "event": note.event or "alerts",
            "last": note.last,
            "state": note.state,
        }
        if kind == "dedup" and key[1] == n.key:
            name = "note_identical"
        elif kind == "muted":
            name = "note_muted"
        elif kind == "quiet":
            name = "note_quiet"
        else:
            name = "note_suppressed"
        return render_alert(name, fields, self.templates)[1]

    def emit_digest(self) -> None:
        """Send what quiet hours held, as one digest (when they end, and at flush)."""
        quiet = self.config.quiet_hours
        limit = quiet.digest_lines if quiet else 20
        entries = sorted(self.held.items(), key=lambda item: item[1].first_wall)
        lines = [
            render_alert(
                "digest_line",
                {
                    "agent": agent or "-",
                    "event": event,
                    "count": held.count,
                    "first": self.time(held.first_wall),
                    "last_time": self.time(held.last_wall),
                    "last": held.last,
                },
                self.templates,
            )[1]
            for (agent, event), held in entries[:limit]
        ]
        more = len(entries) - len(lines)
        if more > 0 or self.held_overflow:
            extra = self.held_overflow + sum(h.count for _, h in entries[limit:])
            lines.append(f"… and {extra} more")
        severity = max((h.severity for h in self.held.values()), default=Severity.INFO)
        title, body, _ = render_alert(
            "alerts_digest",
            {
                "count": self.held_total,
                "lines": "\n".join(lines),
                "shown": len(entries[:limit]),
                "more": max(more, 0),
            },
            self.templates,
        )
        self.held.clear()
        self.held_total = self.held_overflow = 0
        self.digest_due = None
        self.stats.digests += 1
        self.stats.sent += 1
        self.out.append(Notification(title, body, severity, event=ALERTS_DIGEST))

    # ------------------------------------------------------------ texts
    def time(self, wall: float, *, seconds: bool = False) -> str:
        """``wall`` as local ``HH:MM`` (or ``HH:MM:SS``) in the config's time zone."""
        local = _dt.datetime.fromtimestamp(wall, self.tz)
        return local.strftime("%H:%M:%S" if seconds else "%H:%M")
