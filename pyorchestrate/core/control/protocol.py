"""The wire protocol of the command channel: newline-delimited JSON envelopes.

A request is one line::

    {"sender": "cli", "event_name": "COMMAND", "timestamp": "…",
     "payload": {"command": "status", "args": ["worker"], "request_id": "…",
                 "timestamp": "…", "meta": {}}}

(a bare payload object, ``{"command": "ps"}``, is accepted too). The reply, on the same
connection, is one line::

    {"sender": "<orchestrator>", "event_name": "STATUS", "timestamp": "…",
     "payload": {"status": "success"|"error", "code": 0|400|403|404|409|500,
                 "data": {…}, "error": null|"…", "error_type": null|"…",
                 "request_id": "…", "timestamp": "…", "protocol_version": "1.0"}}

After a successful ``subscribe``, the server also writes one line per new event::

    {"sender": "<orchestrator>", "event_name": "EVENT", "timestamp": "…",
     "payload": {"event": {<EventRecord.to_dict()>}, "request_id": "<the subscribe's>"}}

After a successful ``logs``, the server writes the agent's lines in batches, then (unless
the connection closes first) one end line::

    {"sender": "<orchestrator>", "event_name": "LOG", "timestamp": "…",
     "payload": {"entries": [{"ts": "…", "stream": "stdout", "line": "…"}, …],
                 "request_id": "<the logs request's>"}}
    {"sender": "<orchestrator>", "event_name": "LOG_END", "timestamp": "…",
     "payload": {"reason": "done"|"shutdown"|"error", "error": null|"…",
                 "request_id": "<the logs request's>"}}

Standard library only: the CLI imports it and must start fast.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

from ..errors import ControlError, ProtocolError

__all__ = [
    "MAX_LINE_BYTES",
    "PROTOCOL_VERSION",
    "Request",
    "build_request",
    "encode",
    "error_reply",
    "event_line",
    "log_end",
    "log_lines",
    "now_iso",
    "parse_reply",
    "parse_request",
    "success_reply",
]

PROTOCOL_VERSION = "1.0"
MAX_LINE_BYTES = 1_048_576
"""The longest request line the server reads (1 MiB); longer ones are refused."""


def now_iso() -> str:
    """The current time as ISO 8601 with the local offset."""
    return _dt.datetime.now().astimezone().isoformat()


def encode(message: dict[str, Any]) -> bytes:
    """One JSON line, UTF-8, ending in a newline."""
    return (json.dumps(message, default=str, separators=(",", ":")) + "\n").encode()


class Request(NamedTuple):
    """A parsed request (a NamedTuple: no dataclasses import on the CLI's path)."""

    command: str
    args: list[Any]
    request_id: str | None = None
    sender: str = ""
    meta: dict[str, Any] = {}  # noqa: RUF012 - never mutated; parse_request fills it


def build_request(
    command: str,
    args: Sequence[Any] = (),
    *,
    sender: str = "client",
    request_id: str | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A request envelope, with a fresh ``request_id`` unless one is given."""
    stamp = now_iso()
    return {
        "sender": sender,
        "event_name": "COMMAND",
        "timestamp": stamp,
        "payload": {
            "command": command,
            "args": list(args),
            "request_id": request_id or os.urandom(16).hex(),
            "timestamp": stamp,
            "meta": meta or {},
        },
    }


def parse_request(line: bytes) -> Request:
    """Parse one request line.

    Raises:
        ProtocolError: not UTF-8, not JSON, not an object, or fields of the wrong type.
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("request is not UTF-8 text") from None
    try:
        message = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ProtocolError("request is not valid JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError("request must be a JSON object")
    payload = message.get("payload", message) if "command" not in message else message
    if not isinstance(payload, dict):
        raise ProtocolError("payload must be a JSON object")
    kind = message.get("event_name", "COMMAND")
    if kind != "COMMAND":
        raise ProtocolError(f"event_name must be 'COMMAND', not {kind!r}")
    request_id = payload.get("request_id")
    if request_id is not None and not isinstance(request_id, str | int):
        raise ProtocolError("request_id must be a string")
    command = payload.get("command")
    rid = None if request_id is None else str(request_id)
    if command is None or command == "":
        raise ProtocolError("no command given", data={"request_id": rid})
    if not isinstance(command, str):
        raise ProtocolError("command must be a string", data={"request_id": rid})
    args = payload.get("args", [])
    if args is None:
        args = []
    if not isinstance(args, list):
        raise ProtocolError("args must be a JSON array", data={"request_id": rid})
    meta = payload.get("meta") or {}
    if not isinstance(meta, dict):
        raise ProtocolError("meta must be a JSON object", data={"request_id": rid})
    sender = message.get("sender", "")
    return Request(
        command=command.strip().lower(),
        args=args,
        request_id=rid,
        sender=sender if isinstance(sender, str) else "",
        meta=meta,
    )


def _envelope(sender: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "sender": sender,
        "event_name": kind,
        "timestamp": now_iso(),
        "payload": payload,
    }


def success_reply(
    request_id: str | None, data: dict[str, Any], *, sender: str
) -> dict[str, Any]:
    """A success reply envelope."""
    return _envelope(
        sender,
        "STATUS",
        {
            "status": "success",
            "code": 0,
            "data": data,
            "error": None,
            "error_type": None,
            "request_id": request_id,
            "timestamp": now_iso(),
            "protocol_version": PROTOCOL_VERSION,
        },
    )


def error_reply(
    request_id: str | None, error: ControlError, *, sender: str
) -> dict[str, Any]:
    """An error reply envelope for ``error`` (its ``code``, message and data)."""
    return _envelope(
        sender,
        "STATUS",
        {
            "status": "error",
            "code": error.code,
            "data": error.data,
            "error": error.message,
            "error_type": type(error).__name__,
            "request_id": request_id,
            "timestamp": now_iso(),
            "protocol_version": PROTOCOL_VERSION,
        },
    )


def event_line(
    record: dict[str, Any], *, request_id: str | None, sender: str
) -> dict[str, Any]:
    """A subscription's event envelope."""
    return _envelope(sender, "EVENT", {"event": record, "request_id": request_id})


def log_lines(
    entries: list[dict[str, str]], *, request_id: str | None, sender: str
) -> dict[str, Any]:
    """A batch of a ``logs`` stream's lines."""
    return _envelope(sender, "LOG", {"entries": entries, "request_id": request_id})


def log_end(
    reason: str, *, request_id: str | None, sender: str, error: str | None = None
) -> dict[str, Any]:
    """The end of a ``logs`` stream: ``done`` (everything asked for was sent),
    ``shutdown`` (the orchestrator is stopping) or ``error`` (reading failed)."""
    return _envelope(
        sender,
        "LOG_END",
        {"reason": reason, "error": error, "request_id": request_id},
    )


def parse_reply(line: bytes) -> dict[str, Any]:
    """Parse one reply or event line into its envelope.

    Raises:
        ProtocolError: the line is not a JSON object with a ``payload`` object.
    """
    try:
        message = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ProtocolError("the orchestrator sent a line that is not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("payload"), dict):
        raise ProtocolError("the orchestrator sent a reply without a payload")
    return message
