"""Replies for a phone: short, HTML-escaped, never over Telegram's 4,096 characters."""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "MAX_TEXT",
    "fit",
    "format_history",
    "format_ps",
    "format_status",
    "hhmm",
    "uptime",
]

MAX_TEXT = 4096
"""Telegram's limit on a message's text."""


def hhmm(epoch: float) -> str:
    """``03:12`` in local time."""
    return _dt.datetime.fromtimestamp(epoch).strftime("%H:%M")


def uptime(seconds: object) -> str:
    """``42s``, ``3m12s``, ``2h05m``, ``3d04h`` (``-`` for none)."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86_400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86_400}d{whole % 86_400 // 3600:02d}h"


def fit(head: str, lines: Sequence[str], *, pre: bool = False, tail: str = "") -> str:
    """``head`` (HTML, already escaped) then ``lines`` (plain text, escaped here,
    inside ``<pre>`` if ``pre``), then ``tail`` (HTML); lines are left out from the
    end, with a line saying how many, until it fits in :data:`MAX_TEXT`: never a
    cut inside a tag or an entity."""
    kept = list(lines)
    dropped = 0
    while True:
        body = "\n".join(html.escape(line, quote=False) for line in kept)
        if dropped:
            body += f"\n… {dropped} more line(s) not shown"
        if pre and body:
            body = f"<pre>{body}</pre>"
        text = "\n".join(part for part in (head, body, tail) if part)
        if len(text) <= MAX_TEXT or not kept:
            return text[:MAX_TEXT] if not kept else text
        cut = max(1, (len(text) - MAX_TEXT) // 80)
        del kept[-cut:]
        dropped += cut


def _cell(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def format_ps(data: Mapping[str, Any]) -> str:
    """``ps``'s reply: one line per agent, in a fixed-width block."""
    agents = data.get("agents") or []
    rows = [("NAME", "STATE", "PID", "UP", "RST")]
    for agent in agents:
        rows.append(
            (
                _cell(agent.get("name")),
                _cell(agent.get("lifecycle_state")),
                _cell(agent.get("pid")),
                uptime(agent.get("uptime")) if agent.get("alive") else "-",
                _cell(agent.get("restarts")),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in rows
    ]
    head = (
        f"<b>{len(agents)} agent(s)</b>, {data.get('running_count', 0)} running"
        f" of {data.get('max_workers', '?')} slots"
    )
    return fit(head, lines, pre=True)


def format_status(name: str, data: Mapping[str, Any]) -> str:
    """``status NAME``'s reply: the facts an on-call engineer looks at first."""
    state = _cell(data.get("lifecycle_state"))
    lines = [f"state: {state}"]
    if data.get("pid") is not None:
        lines.append(f"pid: {data['pid']}, up {uptime(data.get('uptime'))}")
    lines.append(f"restarts: {_cell(data.get('restarts'))}")
    end = data.get("signal") or data.get("exit_code")
    if end not in (None, ""):
        lines.append(f"last exit: {end}")
    if data.get("last_error"):
        lines.append(f"last error: {str(data['last_error'])[:300]}")
    if data.get("fatal_reason"):
        lines.append(f"fatal: {str(data['fatal_reason'])[:300]}")
    if data.get("next_start_in") is not None:
        lines.append(f"next try in: {uptime(data.get('next_start_in'))}")
    tail = str(data.get("output_tail") or "").strip("\n").split("\n")[-5:]
    tail = [line for line in tail if line]
    head = f"<b>{html.escape(name, quote=False)}</b>: {html.escape(state, quote=False)}"
    text = fit(head, lines)
    if tail:
        text = fit(text, tail, pre=True)
    return text


def format_orchestrator(data: Mapping[str, Any]) -> str:
    """``status``'s reply (no agent named)."""
    lines = [
        f"{key}: {value}"
        for key, value in data.items()
        if isinstance(value, str | int | float) and not isinstance(value, bool)
    ][:15]
    return fit("<b>orchestrator</b>", lines)


def format_history(data: Mapping[str, Any]) -> str:
    """``history``'s reply: one line per event, newest last."""
    lines: list[str] = []
    for event in data.get("events") or []:
        when = _dt.datetime.fromtimestamp(float(event.get("t_wall") or 0)).strftime(
            "%H:%M:%S"
        )
        name = str(event.get("event_name") or "?")
        agent = event.get("agent") or "-"
        extra = ""
        info = event.get("data") or {}
        if name == "operator_action":
            who = info.get("actor") or "?"
            ok = "ok" if str(info.get("ok")).lower() in ("true", "1") else "failed"
            extra = f" {info.get('action')} by {who} ({info.get('source')}, {ok})"
        elif info.get("error_message"):
            extra = f" {str(info['error_message'])[:80]}"
        lines.append(f"{when} {agent} {name}{extra}")
    if not lines:
        return "no events"
    return fit(f"<b>last {len(lines)} event(s)</b>", lines, pre=True)
