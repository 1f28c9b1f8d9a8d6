"""Durations written as text: ``"30s"``, ``"10m"``, ``"1h30m"`` (standard library only:
the settings, the CLI and the chat commands read them alike)."""

from __future__ import annotations

import math
import re

__all__ = ["format_duration", "parse_duration"]

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


def format_duration(seconds: float) -> str:
    """``600`` → ``"10 min"``, ``3600`` → ``"1 h"``, ``5400`` → ``"1 h 30 min"``,
    ``45`` → ``"45 s"``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    hours, rest = divmod(whole, 3600)
    minutes = round(rest / 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"
