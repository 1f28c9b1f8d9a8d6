"""How the ``notify`` commands show things: ages, times, tables, JSON, row errors, mutes."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.table import Table

from ._common import RowState

if TYPE_CHECKING:
    from ..state import Mute, OutboxRow

__all__: list[str] = [
    "age",
    "breakdown",
    "mute_data",
    "print_json",
    "row_error",
    "stamp",
]


def age(seconds: float) -> str:
    """``3`` → ``3s``; ``125`` → ``2m 5s``; ``7500`` → ``2h 5m``; ``90000`` → ``1d 1h``."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs}s" if secs and minutes < 10 else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def clock_text(when: float, now: float) -> str:
    """Local time: ``14:03:02`` today, else ``2024-11-25 14:03``."""
    moment = _dt.datetime.fromtimestamp(when)
    if moment.date() == _dt.datetime.fromtimestamp(now).date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


def stamp(when: Any, now: float, *, never: str = "-") -> str:
    """``14:03:02 (5m ago)``; ``never`` if unknown."""
    if not isinstance(when, int | float):
        return never
    if when <= now:
        return f"{clock_text(when, now)} ({age(now - when)} ago)"
    return f"{clock_text(when, now)} (in {age(when - now)})"


def _iso(when: Any) -> str | None:
    if not isinstance(when, int | float):
        return None
    return _dt.datetime.fromtimestamp(when).astimezone().isoformat(timespec="seconds")


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def new_table(*columns: str) -> Table:
    table = Table(box=None, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def state_values(states: Sequence[RowState] | None) -> list[str] | None:
    return None if not states else [s.value for s in states]


def breakdown(counts: dict[str, int]) -> str:
    """``{"pending": 2, "dead": 1}`` → ``2 pending, 1 dead``."""
    parts = [f"{counts[s.value]} {s.value}" for s in RowState if counts.get(s.value)]
    return ", ".join(parts) or "empty"


def row_error(row: OutboxRow) -> str:
    from ..redact import redact

    error = row.last_error or ""
    if row.error_class and not error.startswith(row.error_class):
        error = f"{row.error_class}: {error}" if error else row.error_class
    return redact(error)


def mute_data(mute: Mute, now: float) -> dict[str, Any]:
    return {
        "kind": mute.kind,
        "value": mute.value,
        "until": mute.until,
        "until_iso": _iso(mute.until),
        "left": None if mute.until is None else max(0.0, mute.until - now),
        "created": mute.created,
        "reason": mute.reason,
    }
