"""Durations and times given on the command line (``--for``, ``--until``, ``--older-than``)."""

from __future__ import annotations

import datetime as _dt
import math
import re
import time

import typer

__all__ = [
    "duration_option",
    "parse_duration",
    "until_option",
]

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([a-z]*)")
_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86_400.0),
    **dict.fromkeys(("w", "week", "weeks"), 604_800.0),
}


def parse_duration(text: str) -> float:
    """``"30s"``, ``"10m"``, ``"2h"``, ``"1d"``, ``"1h30m"``, ``"1.5h"`` or plain
    seconds (``"90"``) → seconds.

    Raises:
        ValueError: not a positive duration.
    """
    compact = re.sub(r"\s+", "", text.lower())
    parts = []
    position = 0
    while position < len(compact):
        match = _DURATION_PART.match(compact, position)
        if match is None:
            break
        parts.append(match.groups())
        position = match.end()
    problem = position < len(compact) or not parts
    if len(parts) > 1 and any(not unit for _, unit in parts):
        problem = True  # "1h30": 30 what?
    if not problem and all(unit in _UNITS or not unit for _, unit in parts):
        total = sum(float(number) * _UNITS.get(unit, 1.0) for number, unit in parts)
        if total > 0 and math.isfinite(total):
            return total
    raise ValueError(f"{text!r} is not a duration: use e.g. 30s, 10m, 2h, 1d or 1h30m")


def duration_option(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def until_option(text: str) -> float:
    """An ISO date-time (local time unless it has an offset), or a time of day (the
    next one to come) → epoch seconds, in the future."""
    now = time.time()
    try:
        moment = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        try:
            clock = _dt.time.fromisoformat(text.strip())
        except ValueError:
            raise typer.BadParameter(
                f"{text!r} is not a time: use e.g. 18:30 or 2030-01-31T18:30 "
                "(local time unless an offset is given)"
            ) from None
        today = _dt.datetime.now(clock.tzinfo).date()
        moment = _dt.datetime.combine(today, clock)
        if moment.timestamp() <= now:
            moment += _dt.timedelta(days=1)
    when = moment.timestamp()
    if when <= now:
        raise typer.BadParameter(f"{text!r} is in the past")
    return when
