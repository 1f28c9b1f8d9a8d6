"""Alert rules between the events and the channels: alerts people can live with.

An :class:`AlertPipeline` sits between the preset's handler and the dispatcher. It is
pure (no I/O, no threads of its own), thread-safe (one lock) and does O(1) work per
alert (amortised; timers are a heap of at most one entry per group, agent and
digest). Time comes from an injectable monotonic clock, local time for quiet hours,
mutes and the texts from an injectable wall clock.

* :meth:`~AlertPipeline.offer` takes one :class:`~notifiers.base.Notification` and
  returns what to send now (maybe nothing, maybe a summary that fell due).
* :meth:`~AlertPipeline.due` returns the summaries, recoveries and digests whose time
  has come; :meth:`~AlertPipeline.next_due` says when the next one does.
  :class:`PipelineTimer` is the small thread that calls it (started on the first
  pending summary, stopped and joined by ``close()``).
* :meth:`~AlertPipeline.flush` returns everything still pending (at detach).

The rules (:class:`PipelineConfig`):

Grouping
    Alerts of one (agent, event) in ``group_events`` within ``group_window`` seconds
    become one summary, "worker-3: agent_error ×12 in 48 s" with the last error; the
    first one of a window goes out at once (``group_send_first``). While alerts keep
    coming, each further window ends in one summary; a quiet window closes the group.
Dedup
    An identical alert (same agent, event and error text) is not sent again within
    ``dedup_window`` seconds. For a grouped event this stretches the group's window
    while only identical alerts arrive; for other events (at least
    ``dedup_min_severity``) the repeats are dropped and counted, and the next message
    sent for that agent says "(+7 identical suppressed since 09:58)". AGENT_FATAL is
    never deduplicated.
Flapping and FATAL
    ``flap_threshold`` AGENT_ERRORs of one agent within ``flap_window`` seconds send
    one "is flapping" alert; an AGENT_FATAL is sent once (``quiet_after_fatal``). Then
    the agent is quiet: its alerts are counted, not sent, until it is stable again
    (READY and no error for ``stable_after`` seconds) or, after FATAL, an operator
    starts it. Pending group counts of the agent are put on that alert.
Recovery (``recovery``, off by default)
    An agent that failed and then is READY with no error for ``stable_after`` seconds
    gives "✔ worker-3 recovered after 42 s" (from its first failure to the READY that
    held).
Mutes
    ``mutes`` in the config (until a time), :meth:`~AlertPipeline.mute` at run time
    (for some seconds, or until a time) and a ``muted(agent, event)`` predicate drop
    matching alerts; the next message for the agent after the mute counts them.
Quiet hours
    Between ``quiet_hours.start`` and ``.end`` (local time in a time zone; may cross
    midnight) alerts below ``quiet_hours.hold_below`` (CRITICAL) are held and sent as
    one "Quiet hours digest: 14 alerts held" when the quiet hours end.

Texts come from :data:`~notifiers.templates.PIPELINE_TEMPLATES` (overridable).
"""  # noqa: RUF002

from __future__ import annotations

import dataclasses
import datetime as _dt
import fnmatch
import heapq
import itertools
import logging
import math
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pyorchestrate import OrchestratorEvent

from .base import Notification, Severity
from .errors import NotifierConfigError
from .templates import PIPELINE_TEMPLATES, Template, format_duration, render_alert

__all__ = [
    "AGENT_FLAPPING",
    "AGENT_RECOVERED",
    "ALERTS_DIGEST",
    "OBSERVED_EVENTS",
    "AlertPipeline",
    "GroupRule",
    "Mute",
    "MuteRule",
    "PipelineConfig",
    "PipelineStats",
    "PipelineTimer",
    "QuietHours",
]

logger = logging.getLogger("notifiers.pipeline")

AGENT_RECOVERED = "agent_recovered"
"""The ``event`` of a recovery message."""
AGENT_FLAPPING = "agent_flapping"
"""The ``event`` of a flapping alert."""
ALERTS_DIGEST = "alerts_digest"
"""The ``event`` of a quiet-hours digest (its ``agent`` is ``None``)."""

_E = OrchestratorEvent
_STARTED = _E.AGENT_STARTED.value
_READY = _E.AGENT_READY.value
_TERMINATED = _E.AGENT_TERMINATED.value
_ERROR = _E.AGENT_ERROR.value
_RESTARTING = _E.AGENT_RESTARTING.value
_FATAL = _E.AGENT_FATAL.value
_WATCHDOG = _E.AGENT_WATCHDOG_TIMEOUT.value

OBSERVED_EVENTS: frozenset[OrchestratorEvent] = frozenset(
    {
        _E.AGENT_STARTED,
        _E.AGENT_READY,
        _E.AGENT_TERMINATED,
        _E.AGENT_ERROR,
        _E.AGENT_RESTARTING,
        _E.AGENT_FATAL,
    }
)
"""What the pipeline watches to know an agent's state (recovery, flapping, FATAL),
whether or not the preset sends them."""

_KNOWN_EVENTS = {e.value for e in OrchestratorEvent}
_MIXED: Any = object()  # a window whose alerts are not all identical

Key = tuple[str | None, str | None, str | None]


# ---------------------------------------------------------------- configuration


def _event_names(value: object) -> object:
    if value is None:
        return None
    items = [value] if isinstance(value, str | OrchestratorEvent) else value
    if not isinstance(items, Iterable):
        raise ValueError("must be a list of event names")
    names = []
    for item in items:
        name = item.value if isinstance(item, OrchestratorEvent) else str(item).lower()
        if name not in _KNOWN_EVENTS:
            known = ", ".join(sorted(_KNOWN_EVENTS))
            raise ValueError(f"unknown event {item!r} (known: {known})")
        names.append(name)
    return frozenset(names)


def _globs(value: object) -> object:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Iterable) or isinstance(items, Mapping):
        raise ValueError("must be an agent-name glob or a list of them")
    globs = tuple(str(item) for item in items)
    if not globs or not all(globs):
        raise ValueError("needs at least one non-empty glob ('*' for all)")
    return globs


def _severity(value: object) -> object:
    if isinstance(value, str | int | Severity) and not isinstance(value, bool):
        try:
            return Severity.parse(value)
        except ValueError:
            pass
    names = ", ".join(m.name.lower() for m in Severity)
    raise ValueError(f"must be one of {names}")


def _zone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            "unknown time zone; use an IANA name such as 'Europe/Berlin' or 'UTC'"
        ) from None
    return value


class _Rules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GroupRule(_Rules):
    """Grouping for some events of some agents, over the config's defaults.

    The first rule that matches an alert's event and agent decides; ``window=None``
    turns grouping off for them.
    """

    events: frozenset[str] = Field(description="Event names (or members).")
    agents: tuple[str, ...] = Field(default=("*",), description="Agent-name globs.")
    window: float | None = Field(
        default=60.0, gt=0, description="Seconds; None = do not group."
    )
    send_first: bool = Field(
        default=True, description="Send a window's first alert at once."
    )

    _check_events = field_validator("events", mode="before")(_event_names)
    _check_agents = field_validator("agents", mode="before")(_globs)


class MuteRule(_Rules):
    """A mute in the configuration: matching alerts are dropped until ``until``."""

    agents: tuple[str, ...] = Field(default=("*",), description="Agent-name globs.")
    events: frozenset[str] | None = Field(
        default=None, description="Event names; None = every event."
    )
    until: _dt.datetime = Field(description="When it ends (with a time zone).")
    reason: str = ""

    _check_events = field_validator("events", mode="before")(_event_names)
    _check_agents = field_validator("agents", mode="before")(_globs)

    @field_validator("until")
    @classmethod
    def _aware(cls, value: _dt.datetime) -> _dt.datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("needs a time zone, e.g. 2026-11-25T10:00:00+01:00")
        return value


class QuietHours(_Rules):
    """Hold alerts below ``hold_below`` from ``start`` to ``end`` (local time).

    ``start`` after ``end`` crosses midnight (22:00 to 07:00). What is held goes out
    as one digest when the quiet hours end.
    """

    start: _dt.time = Field(description="Local time, e.g. '22:00'.")
    end: _dt.time = Field(description="Local time, e.g. '07:00'.")
    timezone: str | None = Field(
        default=None,
        description="IANA name (default: the config's timezone, else the system's).",
    )
    hold_below: Severity = Field(
        default=Severity.CRITICAL,
        description="Alerts at least this severe are sent anyway.",
    )
    digest_lines: int = Field(
        default=20, ge=1, le=1000, description="Lines listed in the digest."
    )

    _check_timezone = field_validator("timezone")(_zone)
    _check_hold_below = field_validator("hold_below", mode="before")(_severity)

    @field_validator("start", "end")
    @classmethod
    def _naive(cls, value: _dt.time) -> _dt.time:
        if value.tzinfo is not None:
            raise ValueError("give a local time; set the zone with 'timezone'")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


_DEFAULT_GROUPED = frozenset({_ERROR, _RESTARTING, _WATCHDOG})


class PipelineConfig(_Rules):
    """The alert rules of one attachment. Durations are seconds; ``None`` turns off.

    Defaults make a crash loop humane: failures are grouped per agent and event over
    60 s with the first sent at once, identical alerts are not repeated within 5
    minutes, five errors within a minute are "flapping" (one alert, then quiet until
    the agent is stable for 30 s), and after FATAL the agent is quiet until an
    operator starts it. Recovery messages and quiet hours are opt-in.

    Invalid values raise pydantic's ``ValidationError`` (naming the field);
    :meth:`parse` turns them into :class:`~notifiers.errors.NotifierConfigError`.
    """

    dedup_window: float | None = Field(
        default=300.0, gt=0, description="Identical alerts are sent once per window."
    )
    dedup_min_severity: Severity = Field(
        default=Severity.WARNING,
        description="Ungrouped alerts below this are never deduplicated.",
    )
    group_window: float | None = Field(
        default=60.0, gt=0, description="Group alerts per (agent, event); None = off."
    )
    group_events: frozenset[str] = Field(
        default=_DEFAULT_GROUPED, description="The events grouped."
    )
    group_send_first: bool = Field(
        default=True, description="Send the first alert of a group window at once."
    )
    group_rules: tuple[GroupRule, ...] = Field(
        default=(), description="Per-agent/event grouping, first match wins."
    )
    recovery: bool = Field(
        default=False,
        description="Send 'recovered after …' when a failed agent is stable.",
    )
    stable_after: float = Field(
        default=30.0, ge=0, description="READY without an error this long is stable."
    )
    quiet_after_fatal: bool = Field(
        default=True,
        description="After FATAL, hold the agent's alerts until it is started.",
    )
    flap_threshold: int | None = Field(
        default=5, ge=2, description="This many errors within flap_window is flapping."
    )
    flap_window: float = Field(default=60.0, gt=0)
    quiet_hours: QuietHours | None = None
    mutes: tuple[MuteRule, ...] = ()
    timezone: str | None = Field(
        default=None, description="IANA zone for times in messages (default: local)."
    )
    max_keys: int = Field(
        default=10_000, ge=16, description="Distinct alerts remembered for dedup."
    )

    _check_group_events = field_validator("group_events", mode="before")(_event_names)
    _check_min_severity = field_validator("dedup_min_severity", mode="before")(
        _severity
    )
    _check_timezone = field_validator("timezone")(_zone)

    @classmethod
    def parse(
        cls, value: PipelineConfig | Mapping[str, Any] | None, *, where: str = "rules"
    ) -> PipelineConfig:
        """``value`` as a config (``None``: the defaults).

        Raises:
            NotifierConfigError: one ``rules.field: reason`` line per problem.
        """
        if value is None:
            return cls()
        if isinstance(value, PipelineConfig):
            return value
        if not isinstance(value, Mapping):
            raise NotifierConfigError(
                "invalid alert rules",
                [(where, "must be a PipelineConfig or a mapping of its fields")],
            )
        try:
            return cls.model_validate(dict(value))
        except ValidationError as exc:
            errors = []
            for error in exc.errors(include_input=False, include_url=False):
                path = ".".join(str(part) for part in (where, *error["loc"]))
                message = str(error["msg"]).removeprefix("Value error, ")
                if error["type"] == "extra_forbidden":
                    message = "unknown setting"
                errors.append((path, message))
            raise NotifierConfigError("invalid alert rules", errors) from None

    @classmethod
    def off(cls) -> PipelineConfig:
        """Every rule off: each alert passes as it is (mutes still apply)."""
        return cls(
            dedup_window=None,
            group_window=None,
            quiet_after_fatal=False,
            flap_threshold=None,
        )


# ---------------------------------------------------------------- state


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
        if self._pattern is None:
            return True
        return self._pattern.fullmatch(agent or "") is not None

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
    quiet_count: int = 0
    stable_due: float | None = None
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


# ---------------------------------------------------------------- the pipeline


class AlertPipeline:
    """Dedup, grouping, flapping, recovery, mutes and quiet hours (see the module).

    Args:
        config: the rules (a :class:`PipelineConfig`, a mapping of its fields, or
            ``None`` for the defaults).
        clock: monotonic seconds (``time.monotonic``; a
            :class:`~pyorchestrate.testing.FakeClock` works).
        wall_clock: seconds since the epoch, for quiet hours, mutes and the times in
            texts. Default: ``time.time`` with the real clock; with another ``clock``,
            the wall time at construction moved on by that clock.
        muted: ``muted(agent, event) -> bool``; true drops the alert. Called under the
            pipeline's lock: keep it quick, and do not call the pipeline from it.
        templates: overrides of :data:`~notifiers.templates.PIPELINE_TEMPLATES`.
    """

    def __init__(
        self,
        config: PipelineConfig | Mapping[str, Any] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] | None = None,
        muted: Callable[[str | None, str | None], bool] | None = None,
        templates: Mapping[str, Template] | None = None,
    ) -> None:
        self.config = PipelineConfig.parse(config)
        self._clock = clock
        if wall_clock is None:
            if clock is time.monotonic:
                wall_clock = time.time
            else:
                anchor = time.time() - clock()

                def wall_clock() -> float:
                    return anchor + clock()

        self._wall = wall_clock
        self._predicate = muted
        self._templates: dict[str, Template] = {
            **PIPELINE_TEMPLATES,
            **{k: v for k, v in (templates or {}).items() if k in PIPELINE_TEMPLATES},
        }
        cfg = self.config
        self._tz = ZoneInfo(cfg.timezone) if cfg.timezone else None
        quiet = cfg.quiet_hours
        zone = (quiet.timezone if quiet else None) or cfg.timezone
        self._quiet_tz = ZoneInfo(zone) if zone else None
        self._quiet_valid_until = -math.inf
        self._quiet_active = False
        self._lock = threading.Lock()
        self._agents: dict[str | None, _Agent] = {}
        self._dedup: OrderedDict[Key, float] = OrderedDict()
        self._groups: dict[tuple[str | None, str | None], _Group] = {}
        self._group_specs: dict[
            tuple[str | None, str | None], tuple[float, bool] | None
        ] = {}
        self._heap: list[tuple[float, int, str, Any, int]] = []
        self._seq = itertools.count()
        self._held: dict[tuple[str | None, str | None], _Held] = {}
        self._held_total = 0
        self._held_overflow = 0
        self._digest_due: float | None = None
        self._mutes: list[Mute] = [
            self._make_mute(glob, event, rule.until.timestamp(), rule.reason)
            for rule in cfg.mutes
            for glob in rule.agents
            for event in (sorted(rule.events) if rule.events else [None])
        ]
        self._stats = PipelineStats()

    # ------------------------------------------------------------ public
    def now(self) -> float:
        """The pipeline's clock (monotonic seconds)."""
        return self._clock()

    def offer(
        self, notification: Notification, *, forward: bool = True
    ) -> list[Notification]:
        """Take one alert; return what to send now (in order).

        ``forward=False`` only tells the pipeline what happened (an event the preset
        does not send, e.g. AGENT_READY for recovery): it is never sent itself.
        """
        with self._lock:
            now = self._clock()
            out: list[Notification] = []
            self._collect_due(now, out)
            self._stats.offered += 1
            agent = self._agent(notification.agent)
            if notification.generation is not None:
                agent.generation = notification.generation
            if agent.quiet is not None or agent.incident_at is not None:
                self._check_stable(agent, now, out)
            consumed = self._observe(agent, notification, now, out)
            if forward and not consumed:
                self._route(agent, notification, now, out)
            if notification.event == _FATAL and self.config.quiet_after_fatal:
                self._go_quiet(agent, "FATAL")
            return out

    def due(self) -> list[Notification]:
        """The summaries, recoveries and digests whose time has come."""
        with self._lock:
            out: list[Notification] = []
            self._collect_due(self._clock(), out)
            return out

    def next_due(self) -> float | None:
        """When (on :meth:`now`'s clock) :meth:`due` next has something; ``None``: never."""
        with self._lock:
            heap = self._heap
            while heap and not self._valid(heap[0]):
                heapq.heappop(heap)
            return heap[0][0] if heap else None

    def flush(self) -> list[Notification]:
        """Everything pending, now: open groups' summaries and the digest (at detach).

        Counts still waiting for a next message ("+7 identical suppressed") are
        logged and dropped.
        """
        with self._lock:
            now = self._clock()
            out: list[Notification] = []
            self._collect_due(now, out)
            for group in list(self._groups.values()):
                if group.hidden:
                    self._summarise(group, now, out, final=True)
            if self._held_total:
                self._emit_digest(out)
            self._heap.clear()
            self._digest_due = None
            for agent in self._agents.values():
                agent.stable_due = None
                for note in agent.notes.values():
                    self._stats.notes_dropped += note.count
                agent.notes.clear()
            if self._stats.notes_dropped:
                logger.info(
                    "alert pipeline flushed; %d suppressed alert(s) were never "
                    "reported in a later message",
                    self._stats.notes_dropped,
                )
            return out

    def mute(
        self,
        agent: str | None = None,
        event: str | OrchestratorEvent | None = None,
        *,
        seconds: float | None = None,
        until: _dt.datetime | None = None,
        reason: str = "",
    ) -> Mute:
        """Drop alerts of ``agent`` (a glob) and ``event`` for ``seconds`` or ``until``.

        ``None`` means every agent, or every event.

        Raises:
            ValueError: neither or both of ``seconds`` and ``until``; a bad event; a
                naive ``until``.
        """
        if (seconds is None) == (until is None):
            raise ValueError("give seconds= or until=, not both or neither")
        name = None if event is None else _event_name(event)
        with self._lock:
            if seconds is not None:
                if not seconds > 0:
                    raise ValueError("seconds: must be greater than 0")
                end = self._wall() + seconds
            else:
                assert until is not None
                if until.tzinfo is None or until.utcoffset() is None:
                    raise ValueError("until: needs a time zone")
                end = until.timestamp()
            mute = self._make_mute(agent, name, end, reason)
            self._mutes.append(mute)
            return mute

    def unmute(
        self,
        mute: Mute | None = None,
        *,
        agent: str | None = None,
        event: str | OrchestratorEvent | None = None,
    ) -> int:
        """End ``mute``, or every mute with this ``agent`` glob and ``event``; return how many."""
        name = None if event is None else _event_name(event)
        with self._lock:
            before = len(self._mutes)
            if mute is not None:
                self._mutes = [m for m in self._mutes if m is not mute]
            else:
                self._mutes = [
                    m for m in self._mutes if (m.agent, m.event) != (agent, name)
                ]
            return before - len(self._mutes)

    def mutes(self) -> list[Mute]:
        """The mutes still active."""
        with self._lock:
            wall = self._wall()
            self._mutes = [m for m in self._mutes if m.until > wall]
            return list(self._mutes)

    def stats(self) -> PipelineStats:
        """A snapshot of the counters."""
        with self._lock:
            return dataclasses.replace(self._stats)

    # ------------------------------------------------------------ agent state
    def _agent(self, name: str | None) -> _Agent:
        agent = self._agents.get(name)
        if agent is None:
            size = self.config.flap_threshold or 1
            agent = self._agents[name] = _Agent(name, deque(maxlen=size))
        return agent

    def _observe(
        self, agent: _Agent, n: Notification, now: float, out: list[Notification]
    ) -> bool:
        """Update what we know of the agent; True if ``n`` is consumed (flapping)."""
        event = n.event
        cfg = self.config
        if event in (_ERROR, _WATCHDOG, _FATAL):
            agent.last_failure = now
            agent.back_at = None
            if agent.incident_at is None:
                agent.incident_at = now
                agent.incident_wall = self._wall()
                agent.incident_errors = agent.incident_restarts = 0
            if event == _ERROR:
                agent.incident_errors += 1
            if event == _FATAL:
                agent.up = False
            elif event == _ERROR and cfg.flap_threshold is not None:
                return self._count_failure(agent, n, now, out)
        elif event == _READY:
            agent.up = True
            agent.ready_at = now
            if agent.incident_at is not None:
                agent.back_at = now
            self._schedule_stable(agent, now)
        elif event == _RESTARTING:
            agent.up = False
            if agent.incident_at is not None:
                agent.incident_restarts += 1
        elif event == _TERMINATED:
            agent.up = False
            if n.severity <= Severity.INFO and agent.back_at is not None:
                # Restarted, ran, and ended cleanly: that is a recovery too.
                self._stable(agent, now, out, ended=True)
        elif event == _STARTED and agent.quiet == "FATAL":
            self._end_quiet(agent)  # after FATAL only an operator starts it
        return False

    def _count_failure(
        self, agent: _Agent, n: Notification, now: float, out: list[Notification]
    ) -> bool:
        cfg = self.config
        failures = agent.failures
        failures.append(now)
        while failures and failures[0] < now - cfg.flap_window:
            failures.popleft()
        if agent.quiet is not None or len(failures) < (cfg.flap_threshold or 0):
            return False
        self._stats.flapping += 1
        span = now - failures[0]
        self._fold_groups(agent, now)
        title, body, severity = render_alert(
            "agent_flapping",
            {
                "agent": agent.name,
                "event": n.event,
                "count": len(failures),
                "span": format_duration(span),
                "window": format_duration(cfg.flap_window),
                "last": n.error or n.title,
                "stable_after": format_duration(cfg.stable_after),
                "host": n.host,
            },
            self._templates,
        )
        flapping = Notification(
            title,
            body,
            severity,
            agent=agent.name,
            event=AGENT_FLAPPING,
            generation=n.generation,
            error=n.error,
            host=n.host,
        )
        self._emit(flapping, now, out, synthesized=True)
        self._go_quiet(agent, "flapping")
        return True

    def _go_quiet(self, agent: _Agent, state: str) -> None:
        if agent.quiet == state:
            return
        if agent.quiet is not None:
            self._end_quiet(agent)  # flapping, then FATAL: keep the count so far
        agent.quiet = state
        agent.quiet_wall = self._wall()
        agent.quiet_count = 0

    def _end_quiet(self, agent: _Agent) -> None:
        if agent.quiet is not None and agent.quiet_count:
            self._note(
                agent,
                ("quiet", agent.quiet),
                agent.quiet_count,
                agent.quiet_wall,
                state=agent.quiet,
            )
        agent.quiet = None
        agent.quiet_count = 0

    def _schedule_stable(self, agent: _Agent, now: float) -> None:
        """Wake up when the agent may be stable, if a recovery message hangs on it."""
        if not self.config.recovery or agent.incident_at is None:
            return
        if agent.stable_due is None:
            agent.stable_due = now + self.config.stable_after
            self._push(agent.stable_due, "stable", agent.name, 0)

    def _check_stable(self, agent: _Agent, now: float, out: list[Notification]) -> None:
        if not agent.up:
            return
        since = max(agent.ready_at or -math.inf, agent.last_failure or -math.inf)
        if now >= since + self.config.stable_after:
            self._stable(agent, now, out)

    def _stable(
        self, agent: _Agent, now: float, out: list[Notification], *, ended: bool = False
    ) -> None:
        """The agent is fine again: end its quiet, send the recovery (if wanted)."""
        self._end_quiet(agent)
        self._forget_reported(agent)
        agent.failures.clear()
        started, back = agent.incident_at, agent.back_at
        if started is not None and back is not None and self.config.recovery:
            self._stats.recoveries += 1
            title, body, severity = render_alert(
                "agent_recovered",
                {
                    "agent": agent.name,
                    "duration": format_duration(back - started),
                    "since": self._time(agent.incident_wall, seconds=True),
                    "up_at": self._time(self._wall() - (now - back), seconds=True),
                    "errors": agent.incident_errors,
                    "restarts": agent.incident_restarts,
                    "stable_after": format_duration(self.config.stable_after),
                    "outcome": "then ended cleanly"
                    if ended
                    else f"stable for {format_duration(self.config.stable_after)}",
                },
                self._templates,
            )
            recovered = Notification(
                title,
                body,
                severity,
                agent=agent.name,
                event=AGENT_RECOVERED,
                generation=agent.generation,
            )
            self._emit(recovered, now, out, synthesized=True)
        agent.incident_at = agent.back_at = None
        agent.stable_due = None

    # ------------------------------------------------------------ routing
    def _route(
        self, agent: _Agent, n: Notification, now: float, out: list[Notification]
    ) -> None:
        event = n.event
        if self._is_muted(n.agent, event):
            self._stats.muted += 1
            self._note(agent, ("muted",), 1, self._wall())
            return
        if agent.quiet is not None and event != _FATAL:
            agent.quiet_count += 1
            self._stats.quiet += 1
            return
        if event == _FATAL:
            self._fold_groups(agent, now)
            self._end_quiet(agent)
            self._emit(n, now, out)
            return
        if self._holding(n):
            self._hold(n, 1)
            return
        spec = self._group_spec(n.agent, event)
        if spec is not None:
            self._group(agent, n, spec, now, out)
            return
        cfg = self.config
        if cfg.dedup_window is not None and n.severity >= cfg.dedup_min_severity:
            key = n.key
            dedup = self._dedup
            last = dedup.get(key)
            if last is not None and now - last < cfg.dedup_window:
                self._stats.deduplicated += 1
                self._note(
                    agent, ("dedup", key), 1, self._wall(), n.event, n.error or n.title
                )
                return
            dedup[key] = now
            dedup.move_to_end(key)
            while dedup:
                at = next(iter(dedup.values()))
                if now - at < cfg.dedup_window and len(dedup) <= cfg.max_keys:
                    break
                dedup.popitem(last=False)
        self._emit(n, now, out)

    def _group_spec(
        self, agent: str | None, event: str | None
    ) -> tuple[float, bool] | None:
        if (agent, event) in self._group_specs:
            return self._group_specs[(agent, event)]
        spec: tuple[float, bool] | None = None
        cfg = self.config
        for rule in cfg.group_rules:
            if event in rule.events and any(
                fnmatch.fnmatchcase(agent or "", glob) for glob in rule.agents
            ):
                spec = None if rule.window is None else (rule.window, rule.send_first)
                break
        else:
            if cfg.group_window is not None and event in cfg.group_events:
                spec = (cfg.group_window, cfg.group_send_first)
        if len(self._group_specs) < 4 * self.config.max_keys:
            self._group_specs[(agent, event)] = spec
        return spec

    def _group(
        self,
        agent: _Agent,
        n: Notification,
        spec: tuple[float, bool],
        now: float,
        out: list[Notification],
    ) -> None:
        gkey = (n.agent, n.event)
        group = self._groups.get(gkey)
        if group is None:
            group = self._groups[gkey] = _Group(n.agent, n.event, *spec)
            agent.groups.add(gkey)
        key = n.key
        wall = self._wall()
        if group.hidden == 0 and now >= group.deadline:  # no window open: a new one
            cfg = self.config
            group.count = 1
            group.first_at = group.last_at = now
            group.first_wall = group.last_wall = wall
            group.last = n
            group.severity = n.severity
            group.window_key = key
            group.deadline = now + group.window
            group.token += 1
            repeated = (
                cfg.dedup_window is not None
                and key == group.reported_key
                and now < group.reported_at + cfg.dedup_window
            )
            if group.send_first and not repeated:
                group.sent_first = True
                group.reported_key = key
                group.reported_at = now
                self._emit(n, now, out)
            else:
                group.sent_first = False
                group.hidden = 1
                group.hidden_wall = wall
                self._stats.grouped += 1
                self._schedule_group(group)
            return
        if group.count == 0:  # a continuation window's first alert
            group.first_at = now
            group.first_wall = wall
            group.window_key = key
            group.severity = n.severity
        elif group.window_key is not _MIXED and group.window_key != key:
            group.window_key = _MIXED
        if group.hidden == 0:
            group.hidden_wall = wall
        group.count += 1
        group.hidden += 1
        group.last = n
        group.last_at = now
        group.last_wall = wall
        group.severity = max(group.severity, n.severity)
        self._stats.grouped += 1
        if not group.scheduled:
            self._schedule_group(group)

    def _schedule_group(self, group: _Group) -> None:
        group.scheduled = True
        self._push(group.deadline, "group", (group.agent, group.event), group.token)

    def _close_window(
        self, group: _Group, deadline: float, out: list[Notification]
    ) -> None:
        group.scheduled = False
        if not group.hidden:
            return
        cfg = self.config
        if (
            cfg.dedup_window is not None
            and group.window_key is not _MIXED
            and group.window_key == group.reported_key
            and deadline < group.reported_at + cfg.dedup_window
        ):
            # Only repeats of what was last reported: wait out the dedup window.
            group.deadline = group.reported_at + cfg.dedup_window
            self._schedule_group(group)
            return
        self._summarise(group, deadline, out)

    def _summarise(
        self, group: _Group, now: float, out: list[Notification], *, final: bool = False
    ) -> None:
        last = group.last
        assert last is not None
        hidden = group.hidden
        self._stats.summaries += 1
        title, body, _ = render_alert(
            "alert_group",
            {
                "agent": group.agent,
                "event": group.event,
                "count": group.count,
                "hidden": hidden,
                "span": format_duration(group.last_at - group.first_at),
                "window": format_duration(group.window),
                "first": self._time(group.first_wall, seconds=True),
                "last_time": self._time(group.last_wall, seconds=True),
                "first_sent": " (the first was sent on its own)"
                if group.sent_first
                else "",
                "last": last.error or last.title,
                "host": last.host,
            },
            self._templates,
        )
        summary = Notification(
            title,
            body,
            group.severity,
            agent=group.agent,
            event=group.event,
            generation=last.generation,
            error=last.error,
            host=last.host,
        )
        group.reported_key = None if group.window_key is _MIXED else group.window_key
        group.reported_at = now
        # A continuation window starts now: while alerts keep coming, one summary
        # per window; a window without alerts closes the group.
        group.count = group.hidden = 0
        group.sent_first = False
        group.window_key = None
        group.deadline = now if final else now + group.window
        group.token += 1
        self._emit(summary, now, out, synthesized=True, count=hidden)

    def _fold_groups(self, agent: _Agent, now: float) -> None:
        """Close the agent's open groups; their counts go on its next message."""
        for gkey in agent.groups:
            group = self._groups.get(gkey)
            if group is None or not group.hidden:
                continue
            last = group.last
            self._note(
                agent,
                ("group", gkey),
                group.hidden,
                group.hidden_wall,
                group.event,
                (last.error or last.title) if last else None,
            )
            group.count = group.hidden = 0
            group.deadline = now
            group.token += 1
            group.scheduled = False
        self._forget_reported(agent)

    def _forget_reported(self, agent: _Agent) -> None:
        """What comes after a flapping/FATAL alert or a recovery is news again."""
        for gkey in agent.groups:
            group = self._groups.get(gkey)
            if group is not None:
                group.reported_key = None

    # ------------------------------------------------------------ output
    def _emit(
        self,
        n: Notification,
        now: float,
        out: list[Notification],
        *,
        synthesized: bool = False,
        count: int = 1,
    ) -> None:
        if synthesized and self._is_muted(n.agent, n.event):
            self._stats.muted += 1
            return
        if self._holding(n):
            self._hold(n, count)
            return
        agent = self._agents.get(n.agent)
        if agent is not None and agent.notes:
            lines = [
                self._note_text(agent, k, note, n) for k, note in agent.notes.items()
            ]
            agent.notes.clear()
            body = "\n".join([*lines, n.body]) if n.body else "\n".join(lines)
            n = dataclasses.replace(n, body=body)
        self._stats.sent += 1
        out.append(n)

    def _note(
        self,
        agent: _Agent,
        key: Any,
        count: int,
        since: float,
        event: str | None = None,
        last: str | None = None,
        *,
        state: str | None = None,
    ) -> None:
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

    def _note_text(self, agent: _Agent, key: Any, note: _Note, n: Notification) -> str:
        kind = key[0]
        fields: dict[str, Any] = {
            "agent": agent.name,
            "count": note.count,
            "since": self._time(note.since),
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
        return render_alert(name, fields, self._templates)[1]

    # ------------------------------------------------------------ mutes
    def _make_mute(
        self, agent: str | None, event: str | None, until: float, reason: str
    ) -> Mute:
        pattern = (
            None
            if agent is None or agent == "*"
            else re.compile(fnmatch.translate(agent))
        )
        return Mute(agent, event, until, reason, pattern)

    def _is_muted(self, agent: str | None, event: str | None) -> bool:
        if self._predicate is not None:
            try:
                if self._predicate(agent, event):
                    return True
            except Exception:
                logger.exception("the muted() predicate raised; not muting")
        if not self._mutes:
            return False
        wall = self._wall()
        expired = False
        found = False
        for mute in self._mutes:
            if mute.until <= wall:
                expired = True
            elif not found and mute.matches(agent, event):
                found = True
        if expired:
            self._mutes = [m for m in self._mutes if m.until > wall]
        return found

    # ------------------------------------------------------------ quiet hours
    def _holding(self, n: Notification) -> bool:
        quiet = self.config.quiet_hours
        if quiet is None or n.severity >= quiet.hold_below:
            return False
        return self._in_quiet_hours(self._wall())

    def _in_quiet_hours(self, wall: float) -> bool:
        quiet = self.config.quiet_hours
        if quiet is None:
            return False
        if wall < self._quiet_valid_until:
            return self._quiet_active
        tz = self._quiet_tz
        local = _dt.datetime.fromtimestamp(wall, tz)
        now = local.time().replace(tzinfo=None)
        start, end = quiet.start, quiet.end
        active = start <= now < end if start < end else (now >= start or now < end)
        boundary = end if active else start
        nxt = _dt.datetime.combine(local.date(), boundary, tzinfo=tz)
        if nxt <= local:
            nxt = _dt.datetime.combine(
                local.date() + _dt.timedelta(days=1), boundary, tzinfo=tz
            )
        self._quiet_active = active
        self._quiet_valid_until = max(nxt.timestamp(), wall + 1e-3)
        return active

    def _hold(self, n: Notification, count: int) -> None:
        self._stats.held += count
        self._held_total += count
        wall = self._wall()
        hkey = (n.agent, n.event)
        held = self._held.get(hkey)
        last = n.error or n.title
        if held is not None:
            held.count += count
            held.last_wall = wall
            held.last = last
            held.severity = max(held.severity, n.severity)
        elif len(self._held) < self.config.max_keys:
            self._held[hkey] = _Held(count, wall, wall, last, n.severity)
        else:
            self._held_overflow += count
        if self._digest_due is None:
            now = self._clock()
            self._in_quiet_hours(wall)
            self._digest_due = now + max(0.0, self._quiet_valid_until - wall)
            self._push(self._digest_due, "digest", None, 0)

    def _emit_digest(self, out: list[Notification]) -> None:
        quiet = self.config.quiet_hours
        limit = quiet.digest_lines if quiet else 20
        entries = sorted(self._held.items(), key=lambda item: item[1].first_wall)
        lines = [
            render_alert(
                "digest_line",
                {
                    "agent": agent or "-",
                    "event": event,
                    "count": held.count,
                    "first": self._time(held.first_wall),
                    "last_time": self._time(held.last_wall),
                    "last": held.last,
                },
                self._templates,
            )[1]
            for (agent, event), held in entries[:limit]
        ]
        more = len(entries) - len(lines)
        if more > 0 or self._held_overflow:
            extra = self._held_overflow + sum(h.count for _, h in entries[limit:])
            lines.append(f"… and {extra} more")
        severity = max((h.severity for h in self._held.values()), default=Severity.INFO)
        title, body, _ = render_alert(
            "alerts_digest",
            {
                "count": self._held_total,
                "lines": "\n".join(lines),
                "shown": len(entries[:limit]),
                "more": max(more, 0),
            },
            self._templates,
        )
        self._held.clear()
        self._held_total = self._held_overflow = 0
        self._digest_due = None
        self._stats.digests += 1
        self._stats.sent += 1
        out.append(Notification(title, body, severity, event=ALERTS_DIGEST))

    # ------------------------------------------------------------ timers
    def _push(self, deadline: float, kind: str, ref: Any, token: int) -> None:
        heapq.heappush(self._heap, (deadline, next(self._seq), kind, ref, token))

    def _valid(self, item: tuple[float, int, str, Any, int]) -> bool:
        deadline, _, kind, ref, token = item
        if kind == "group":
            group = self._groups.get(ref)
            return group is not None and group.scheduled and group.token == token
        if kind == "stable":
            agent = self._agents.get(ref)
            return agent is not None and agent.stable_due == deadline
        return self._digest_due == deadline

    def _collect_due(self, now: float, out: list[Notification]) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            item = heapq.heappop(heap)
            if not self._valid(item):
                continue
            deadline, _, kind, ref, _ = item
            if kind == "group":
                self._close_window(self._groups[ref], deadline, out)
            elif kind == "stable":
                agent = self._agents[ref]
                agent.stable_due = None
                if agent.incident_at is None and agent.quiet is None:
                    continue
                self._check_stable(agent, now, out)
                if agent.incident_at is not None and agent.up:
                    since = max(
                        agent.ready_at or -math.inf, agent.last_failure or -math.inf
                    )
                    agent.stable_due = since + self.config.stable_after
                    self._push(agent.stable_due, "stable", agent.name, 0)
            else:
                wall = self._wall()
                if self._in_quiet_hours(wall):
                    self._digest_due = now + max(1e-3, self._quiet_valid_until - wall)
                    self._push(self._digest_due, "digest", None, 0)
                else:
                    self._emit_digest(out)

    # ------------------------------------------------------------ texts
    def _time(self, wall: float, *, seconds: bool = False) -> str:
        local = _dt.datetime.fromtimestamp(wall, self._tz)
        return local.strftime("%H:%M:%S" if seconds else "%H:%M")

    def __repr__(self) -> str:
        return (
            f"<AlertPipeline {len(self._groups)} groups, {len(self._mutes)} mutes, "
            f"{self._held_total} held>"
        )


def _event_name(event: str | OrchestratorEvent) -> str:
    names = _event_names([event])
    assert isinstance(names, frozenset)
    return str(next(iter(names)))


# ---------------------------------------------------------------- the timer


class PipelineTimer:
    """A small thread that hands :meth:`AlertPipeline.due` to ``submit`` on time.

    Started by the first :meth:`schedule` with a deadline (no pending summary: no
    thread); :meth:`close` stops and joins it. It waits on the real clock for the
    pipeline clock's remaining time; with a fake clock, call :meth:`poke` after moving
    it (a :class:`~pyorchestrate.testing.FakeClock` is followed by itself).

    Args:
        pipeline: the pipeline.
        submit: called with each notification, on the timer's thread.
        name: the thread's name (``notifiers-pipeline`` …).
        max_wait: the longest real wait before looking again (seconds).
    """

    def __init__(
        self,
        pipeline: AlertPipeline,
        submit: Callable[[Notification], object],
        *,
        name: str = "notifiers-pipeline",
        max_wait: float = 60.0,
    ) -> None:
        self.pipeline = pipeline
        self.name = name
        self._submit = submit
        self._max_wait = max_wait
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._wake_at = math.inf
        on_advance = getattr(pipeline._clock, "on_advance", None)
        if callable(on_advance):
            on_advance(self.poke)

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def schedule(self, deadline: float | None) -> None:
        """Something is due at ``deadline`` (pipeline clock): wake up by then."""
        if deadline is None:
            return
        with self._cond:
            if self._closed or deadline >= self._wake_at:
                return
            self._wake_at = deadline
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=self.name, daemon=True
                )
                self._thread.start()
            else:
                self._cond.notify()

    def poke(self) -> None:
        """Look at the pipeline again now (e.g. after a fake clock moved)."""
        with self._cond:
            if self._thread is not None:
                self._cond.notify()

    def close(self, timeout: float = 5.0) -> bool:
        """Stop the thread and join it; ``False`` if it is still running."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _run(self) -> None:
        pipeline = self.pipeline
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    deadline = pipeline.next_due()
                    if deadline is None:
                        self._wake_at = math.inf
                        self._cond.wait()
                        continue
                    remaining = deadline - pipeline.now()
                    if remaining <= 0:
                        break
                    self._wake_at = deadline
                    self._cond.wait(min(remaining, self._max_wait))
                self._wake_at = math.inf
            try:
                for notification in pipeline.due():
                    self._submit(notification)
            except Exception:
                logger.exception("alert pipeline timer: due() or submit failed")
                with self._cond:
                    self._cond.wait(0.1)

    def __repr__(self) -> str:
        state = "running" if self.running else "idle"
        return f"<PipelineTimer {self.name!r} {state}>"
