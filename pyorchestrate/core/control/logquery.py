"""What a ``logs`` request asks for, as the client writes it and the server reads it.

A request is ``logs AGENT [QUERY]``, where ``QUERY`` is an object (or a JSON string)
with any of:

``lines``   how many of the newest lines to send first (an integer ≥ 0; ``null``:
            every stored line, or every line since ``since``). Default 100, or
            ``null`` when ``since`` is given.
``follow``  after those, send new lines as they are written (default ``false``).
``streams`` ``["stdout", "stderr"]`` (the default: both, merged in time order), or
            one of them.
``since``   only lines written at or after this moment: an ISO 8601 timestamp (one
            without an offset is UTC).

:func:`parse_since` turns what a person types (``10m``, ``2h``, ``1d``, an ISO
timestamp in local time) into the aware UTC moment the request carries.

Standard library only: the CLI imports it and must start fast.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from typing import Any, Literal, NamedTuple

from ..errors import UnknownCommand

__all__ = [
    "DEFAULT_LINES",
    "LOG_STREAMS",
    "MAX_LINES",
    "LogQuery",
    "LogStreamName",
    "build_log_query",
    "parse_log_query",
    "parse_since",
]

LogStreamName = Literal["stdout", "stderr"]
"""A captured stream (the same as ``outputfiles.Stream``, kept here so the client
need not import the writer's module)."""

LOG_STREAMS: tuple[LogStreamName, ...] = ("stdout", "stderr")
"""The two captured streams, in the order they are named everywhere."""

DEFAULT_LINES = 100
"""Lines sent first when neither ``lines`` nor ``since`` is given (like ``tail``'s
10, but a screenful of a chatty job)."""

MAX_LINES = 1_000_000
"""The largest ``lines`` accepted (``null`` asks for everything, streamed)."""

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)


class LogQuery(NamedTuple):
    """A parsed ``logs`` query (a NamedTuple: no dataclasses import on the CLI path)."""

    agent: str
    lines: int | None = DEFAULT_LINES
    """``None``: every line (since ``since``)."""
    follow: bool = False
    streams: tuple[LogStreamName, ...] = LOG_STREAMS
    since: _dt.datetime | None = None
    """An aware datetime, or ``None``."""

    def to_dict(self) -> dict[str, Any]:
        """The query as the reply echoes it."""
        return {
            "agent": self.agent,
            "lines": self.lines,
            "follow": self.follow,
            "streams": list(self.streams),
            "since": None if self.since is None else self.since.isoformat(),
        }


def parse_since(text: str, *, now: _dt.datetime | None = None) -> _dt.datetime:
    """The moment ``text`` names: a duration back from ``now`` (``90`` or ``90s``,
    ``10m``, ``2h``, ``1d``, ``1w``) or an ISO 8601 timestamp (local time when it has
    no offset). Returns an aware datetime in UTC.

    Raises:
        ValueError: neither a duration nor a timestamp.
    """
    match = _DURATION.match(text)
    if match:
        seconds = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
        start = now or _dt.datetime.now(_dt.UTC)
        return (start - _dt.timedelta(seconds=seconds)).astimezone(_dt.UTC)
    try:
        moment = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r} is neither a duration (30s, 10m, 2h, 1d) nor an ISO "
            "timestamp (2026-12-03T14:00, 2026-12-03 14:00:00+01:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a person's timestamp: their local time
    return moment.astimezone(_dt.UTC)


def build_log_query(
    *,
    lines: int | None = DEFAULT_LINES,
    follow: bool = False,
    streams: tuple[str, ...] | list[str] = LOG_STREAMS,
    since: _dt.datetime | None = None,
) -> dict[str, Any]:
    """The query object a client sends (``since`` as ISO 8601 in UTC)."""
    query: dict[str, Any] = {"lines": lines, "follow": follow, "streams": list(streams)}
    if since is not None:
        if since.tzinfo is None:
            since = since.replace(tzinfo=_dt.UTC)
        query["since"] = since.astimezone(_dt.UTC).isoformat()
    return query


def parse_log_query(args: list[Any]) -> LogQuery:
    """Read ``[agent, query?]`` from a request's args.

    Raises:
        UnknownCommand: a field of the wrong type or value (the message names it).
    """
    agent = args[0] if args else None
    if not isinstance(agent, str) or not agent:
        raise UnknownCommand("logs: the agent name must be a non-empty string")
    raw: Any = args[1] if len(args) > 1 else None
    if raw in (None, ""):
        raw = {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise UnknownCommand("logs: the query must be a JSON object") from None
    if not isinstance(raw, dict):
        raise UnknownCommand("logs: the query must be a JSON object")
    unknown = sorted(str(key) for key in raw if key not in LogQuery._fields)
    if unknown or "agent" in raw:
        known = ", ".join(("lines", "follow", "streams", "since"))
        name = unknown[0] if unknown else "agent"
        raise UnknownCommand(f"logs: unknown field {name!r}; known fields: {known}")
    since = _since(raw.get("since"))
    lines = raw.get("lines", None if since is not None else DEFAULT_LINES)
    if lines is not None and (
        isinstance(lines, bool) or not isinstance(lines, int) or lines < 0
    ):
        raise UnknownCommand("logs: field 'lines' must be an integer ≥ 0 or null")
    if lines is not None and lines > MAX_LINES:
        raise UnknownCommand(
            f"logs: field 'lines' must be at most {MAX_LINES} (null: every line)"
        )
    follow = raw.get("follow", False)
    if not isinstance(follow, bool):
        raise UnknownCommand("logs: field 'follow' must be true or false")
    streams = raw.get("streams", list(LOG_STREAMS))
    if isinstance(streams, str):
        streams = [streams]
    if (
        not isinstance(streams, list)
        or not streams
        or any(stream not in LOG_STREAMS for stream in streams)
    ):
        raise UnknownCommand(
            "logs: field 'streams' must be a non-empty list of 'stdout', 'stderr'"
        )
    ordered = tuple(stream for stream in LOG_STREAMS if stream in streams)
    return LogQuery(agent, lines, follow, ordered, since)


def _since(value: Any) -> _dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise UnknownCommand("logs: field 'since' must be an ISO 8601 timestamp")
    try:
        moment = _dt.datetime.fromisoformat(value)
    except ValueError:
        raise UnknownCommand(
            f"logs: field 'since' is not an ISO 8601 timestamp: {value[:64]!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return moment
