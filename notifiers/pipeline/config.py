"""The alert rules: PipelineConfig and its parts, validated by pydantic."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
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

from ..base import Severity
from ..errors import NotifierConfigError
from .events import AGENT_ERROR, AGENT_RESTARTING, AGENT_WATCHDOG_TIMEOUT, event_names

__all__ = ["GroupRule", "MuteRule", "PipelineConfig", "QuietHours"]


def _globs(value: object) -> object:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Iterable) or isinstance(items, Mapping):
        raise ValueError("must be an agent-name glob or a list of them")
    globs = tuple(str(item) for item in items)
    if not globs or not all(globs):
        raise ValueError("needs at least one non-empty glob ('*' for all)")
    return globs


OFF = frozenset({"", "none", "null", "off", "false", "no"})


def _off_is_none(value: object) -> object:
    """``"off"`` (or ``none``, ``null``, empty) is ``None``: environment variables and
    TOML have no null, so this is how settings turn a rule off."""
    if isinstance(value, str) and value.strip().lower() in OFF:
        return None
    return value


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

    _check_events = field_validator("events", mode="before")(event_names)
    _check_agents = field_validator("agents", mode="before")(_globs)
    _check_off = field_validator("window", mode="before")(_off_is_none)


class MuteRule(_Rules):
    """A mute in the configuration: matching alerts are dropped until ``until``."""

    agents: tuple[str, ...] = Field(default=("*",), description="Agent-name globs.")
    events: frozenset[str] | None = Field(
        default=None, description="Event names; None = every event."
    )
    until: _dt.datetime = Field(description="When it ends (with a time zone).")
    reason: str = ""

    _check_events = field_validator("events", mode="before")(event_names)
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


_DEFAULT_GROUPED = frozenset({AGENT_ERROR, AGENT_RESTARTING, AGENT_WATCHDOG_TIMEOUT})


class PipelineConfig(_Rules):
    """The alert rules of one attachment. Durations are seconds; ``None`` turns off.

    Defaults make a crash loop humane: failures are grouped per agent and event over
    60 s with the first sent at once, identical alerts are not repeated within 5
    minutes, five errors within a minute are "flapping" (one alert, then quiet until
    the agent is stable for 30 s), and after FATAL the agent is quiet until an
    operator starts it; what a quiet agent holds back is reported when the quiet
    ends, every 5 minutes while it lasts, and at detach. Recovery messages and
    quiet hours are opt-in.

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
    held_report_interval: float | None = Field(
        default=300.0,
        gt=0,
        description="While an agent is quiet (flapping, FATAL), report what was held "
        "back at most this often; None = only when the quiet ends and at detach.",
    )
    quiet_hours: QuietHours | None = None
    mutes: tuple[MuteRule, ...] = ()
    timezone: str | None = Field(
        default=None, description="IANA zone for times in messages (default: local)."
    )
    max_keys: int = Field(
        default=10_000, ge=16, description="Distinct alerts remembered for dedup."
    )

    _check_off = field_validator(
        "dedup_window",
        "group_window",
        "flap_threshold",
        "held_report_interval",
        mode="before",
    )(_off_is_none)
    _check_group_events = field_validator("group_events", mode="before")(event_names)
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
