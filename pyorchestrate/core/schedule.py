"""When a job runs: the validated :class:`Schedule` of a scheduled agent.

API (what a fleet file maps its keys onto)::

    from pyorchestrate import Schedule

    orchestrator.register_agent(
        CommandAgent, "backup", command=["restic", "backup", "/data"],
        schedule=Schedule(cron="0 3 * * *", timezone="Europe/Berlin",
                          max_runtime="2h", warn_after="90m", grace="10m"),
    )
    orchestrator.register_agent(Report, "report", schedule={"every": "15m"})

Fields (durations are seconds, or strings such as ``"90s"``, ``"15m"``, ``"1h30m"``,
``"2d"``; ``ms``, ``s``, ``m``, ``h``, ``d``, ``w``):

===============  ==============================================================
``cron``         a cron expression (``croniter``: 5 fields, or 6 with seconds
                 last), e.g. ``"0 3 * * *"``; exactly one of ``cron``/``every``
``every``        a duration: a run every so long, the first one ``every`` after
                 the orchestrator starts
``timezone``     the IANA zone the cron expression is read in (default ``"UTC"``,
                 so a schedule means the same on every host); DST is followed
``jitter``       each run starts up to this much later than due (uniform random)
``max_runtime``  a run still going after this long is stopped (AGENT_ERROR
                 ``reason="max_runtime"``)
``warn_after``   a run still going after this long emits AGENT_LATE (once)
``overlap``      a run due while the previous one still runs: ``"skip"`` it
                 (default), ``"queue"`` it (at most one waits), or ``"replace"``
                 the running one
``catch_up``     ``"none"`` (default) or ``"last"``: run once at start (or after a
                 suspend or a wall-clock jump) when a due run was missed
``grace``        a run that has not started this long after its due time is
                 missed: AGENT_MISSED (default 60 s); for an external job, a
                 ping must arrive by then
===============  ==============================================================

Only one-shot agents (``OneShotThreadAgent``, ``OneShotProcessAgent``), command agents
and external jobs (``ExternalJob``, fed by ``pyorchestrate ping``) can be scheduled;
``register_agent`` refuses a schedule on a looping agent.
"""

from __future__ import annotations

import datetime as _dt
import re
import zoneinfo
from typing import Any, Literal, Self

from croniter import croniter
from pydantic import Field, field_validator, model_validator

from .config import ConfigModel

__all__ = ["CatchUp", "Overlap", "Schedule", "parse_duration"]

Overlap = Literal["skip", "queue", "replace"]
CatchUp = Literal["none", "last"]

_EPSILON = 1e-6
"""Seconds two due times may differ by and still be one (float rounding)."""

_TICK = _dt.timedelta(milliseconds=1)
"""croniter's ``get_prev`` is strictly before its start: this makes it "at or before"."""

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_WHOLE = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*(?:ms|s|m|h|d|w)\s*)+$", re.IGNORECASE)


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as ``"90"``, ``"15m"``, ``"1h30m"``.

    Raises:
        ValueError: not a duration (the message shows the forms accepted).
    """
    if isinstance(value, bool):
        raise ValueError(
            f"a duration is a number or a string like '15m', not {value!r}"
        )
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        if _WHOLE.match(text):
            return sum(
                float(number) * _UNITS[unit.lower()]
                for number, unit in _PART.findall(text)
            )
    raise ValueError(
        f"invalid duration {value!r}: use seconds or a string like '90s', '15m', "
        "'1h30m', '2d'"
    )


class Schedule(ConfigModel):
    """When a scheduled agent runs, and what counts as late or missed (see the
    module docstring for every field)."""

    cron: str | None = Field(
        default=None, description="cron expression, e.g. '0 3 * * *' (croniter)"
    )
    every: float | None = Field(
        default=None, gt=0, description="run every so long (seconds or '15m')"
    )
    timezone: str = Field(
        default="UTC", description="IANA time zone the cron expression is read in"
    )
    jitter: float = Field(
        default=0.0, ge=0, description="start up to this much later than due (s)"
    )
    max_runtime: float | None = Field(
        default=None, gt=0, description="stop a run still going after this long (s)"
    )
    warn_after: float | None = Field(
        default=None, gt=0, description="AGENT_LATE for a run going this long (s)"
    )
    overlap: Overlap = Field(
        default="skip", description="a run due while one runs: skip, queue, replace"
    )
    catch_up: CatchUp = Field(
        default="none", description="none, or last: run once for missed due runs"
    )
    grace: float = Field(
        default=60.0,
        gt=0,
        description="a run not started this long after due is missed (s)",
    )

    @field_validator(
        "every", "jitter", "max_runtime", "warn_after", "grace", mode="before"
    )
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = " ".join(value.split())
        try:
            croniter(text)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"invalid cron expression {value!r} ({exc})") from None
        return text

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"invalid timezone {value!r}: use an IANA name such as 'UTC' or "
                "'Europe/Berlin'"
            ) from None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give exactly one of 'cron' and 'every'")
        if (
            self.warn_after is not None
            and self.max_runtime is not None
            and self.warn_after >= self.max_runtime
        ):
            raise ValueError(
                f"warn_after ({self.warn_after:g} s) must be shorter than max_runtime "
                f"({self.max_runtime:g} s)"
            )
        return self

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The :attr:`timezone` as a ``ZoneInfo``."""
        return zoneinfo.ZoneInfo(self.timezone)

    def describe(self) -> str:
        """``cron '0 3 * * *' Europe/Berlin`` or ``every 900 s``."""
        if self.cron is not None:
            return f"cron {self.cron!r} {self.timezone}"
        return f"every {self.every:g} s"

    def next_due(self, after: float, *, anchor: float) -> float:
        """The first due time strictly after ``after`` (wall-clock seconds since the
        epoch). ``anchor`` is when an ``every`` schedule was armed (its runs fall at
        ``anchor + n * every``).

        A cron time that occurs twice when the clocks go back runs once (the first);
        one skipped when they go forward runs at the first minute after the gap.
        """
        if self.every is not None:
            # A due time itself is not "after" it, whatever the rounding of the
            # epoch-sized floats (a ULP there is 0.24 µs): hence _EPSILON.
            steps = int((after - anchor + _EPSILON) // self.every) + 1
            at = anchor + max(steps, 1) * self.every
            return at if at > after else at + self.every
        assert self.cron is not None
        zone = self.zone
        start = _dt.datetime.fromtimestamp(after, zone)
        found = croniter(self.cron, start).get_next(_dt.datetime)
        previous = croniter(self.cron, start + _TICK).get_prev(_dt.datetime)
        # The repeated hour (fold): croniter gives the same wall time at both offsets.
        if found.replace(tzinfo=None) == previous.replace(tzinfo=None):
            found = croniter(self.cron, found).get_next(_dt.datetime)
        return found.timestamp()

    def previous_due(self, before: float, *, anchor: float) -> float | None:
        """The last due time at or before ``before`` (``None``: none since
        ``anchor`` for an ``every`` schedule)."""
        if self.every is not None:
            if before < anchor + self.every:
                return None
            steps = int((before - anchor + _EPSILON) // self.every)
            return anchor + steps * self.every
        assert self.cron is not None
        start = _dt.datetime.fromtimestamp(before, self.zone) + _TICK
        return croniter(self.cron, start).get_prev(_dt.datetime).timestamp()
