"""Durations and times given on the command line (``--for``, ``--until``, ``--older-than``)."""

from __future__ import annotations

import datetime as _dt
import time

import typer

from .._durations import parse_duration

__all__ = [
    "duration_option",
    "parse_duration",
    "until_option",
]


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
