"""How the CLI shows replies: rich tables for people, JSON for programs."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = [
    "STATE_STYLES",
    "console",
    "err_console",
    "format_uptime",
    "history_header",
    "history_line",
    "history_row",
    "history_table",
    "key_value_table",
    "print_json",
    "ps_table",
    "stats_table",
]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

STATE_STYLES = {
    "READY": "green",
    "RUNNING": "green",
    "STARTING": "cyan",
    "QUEUED": "cyan",
    "STOPPING": "yellow",
    "QUARANTINED": "bold red",
    "FAILED": "bold red",
    "BACKOFF": "yellow",
    "FATAL": "bold white on red",
    "TERMINATED": "dim",
    "REGISTERED": "dim",
}


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (no colours, no wrapping)."""
    print(json.dumps(data, indent=2, default=str))


def format_uptime(seconds: Any) -> str:
    """``3725.2`` → ``1:02:05``; ``-`` when unknown."""
    if not isinstance(seconds, int | float):
        return "-"
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    text = str(_dt.timedelta(seconds=rest))
    return f"{days}d {text}" if days else text


def _state(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def _ps_state(agent: dict[str, Any]) -> Text:
    """The state, with the time to the next try while in BACKOFF."""
    text = _state(str(agent.get("lifecycle_state")))
    next_start_in = agent.get("next_start_in")
    if isinstance(next_start_in, int | float):
        text.append(f" (retry in {next_start_in:.1f}s)", style="yellow")
    return text


def _ps_exit(agent: dict[str, Any]) -> str:
    """The last exit: the signal's name if one killed it, else the exit code."""
    if agent.get("signal"):
        return str(agent["signal"])
    exit_code = agent.get("exit_code")
    return "-" if exit_code is None else str(exit_code)


def _ps_error(agent: dict[str, Any]) -> Text:
    parts = [
        str(agent[key]) for key in ("fatal_reason", "last_error") if agent.get(key)
    ]
    return Text("; ".join(parts), style="red")


def ps_table(data: dict[str, Any]) -> Table:
    """The ``ps`` table: name, state (BACKOFF with its next try), pid, uptime,
    restarts, last exit code or signal, last error (with why it is FATAL)."""
    table = Table(
        title=(
            f"running {data.get('running_count', 0)}/{data.get('max_workers', '?')}, "
            f"queued {data.get('waiting_count', 0)}"
        ),
        title_justify="left",
        box=None,
        header_style="bold",
    )
    for column in ("NAME", "STATE", "PID", "UPTIME", "RESTARTS", "EXIT", "LAST ERROR"):
        table.add_column(column, overflow="fold")
    for agent in data.get("agents", []):
        table.add_row(
            str(agent.get("name")),
            _ps_state(agent),
            str(agent.get("pid") or "-") if agent.get("alive") else "-",
            format_uptime(agent.get("uptime")),
            str(agent.get("restarts", 0)),
            _ps_exit(agent),
            _ps_error(agent),
        )
    return table


def key_value_table(data: dict[str, Any]) -> Table:
    """A two-column table of a flat mapping."""
    table = Table(box=None, show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in data.items():
        if isinstance(value, dict | list):
            value = json.dumps(value, default=str)
        if key == "lifecycle_state":
            table.add_row(key, _state(str(value)))
        elif key == "uptime":
            table.add_row(key, format_uptime(value))
        else:
            table.add_row(key, "-" if value is None else str(value))
    return table


def history_table(events: list[dict[str, Any]]) -> Table:
    """The ``history`` table: seq, time, category, event, agent, severity, details."""
    table = Table(box=None, header_style="bold")
    for column in ("SEQ", "TIME", "CATEGORY", "EVENT", "AGENT", "SEV", "DETAILS"):
        table.add_column(column, overflow="fold")
    for event in events:
        table.add_row(*history_row(event))
    return table


def history_row(event: dict[str, Any]) -> list[str | Text]:
    """One history row (also used by ``history --follow``)."""
    data = event.get("data") or {}
    details = data.get("error_message") or " ".join(
        f"{k}={v}" for k, v in data.items() if k not in ("pid", "generation_id")
    )
    severity = str(event.get("severity", ""))
    return [
        str(event.get("seq")),
        str(event.get("timestamp", ""))[11:23],
        str(event.get("category", "")),
        str(event.get("event_name", "")),
        str(event.get("agent") or "-"),
        Text(severity, style="red" if severity in ("ERROR", "CRITICAL") else ""),
        details,
    ]


_LINE = "{:>6}  {:<12}  {:<12}  {:<18}  {:<16}  {:<8}  {}"


def history_header() -> Text:
    """The header of ``history --follow`` lines."""
    return Text(
        _LINE.format("SEQ", "TIME", "CATEGORY", "EVENT", "AGENT", "SEV", "DETAILS"),
        style="bold",
    )


def history_line(event: dict[str, Any]) -> Text:
    """One event as a fixed-width line, aligned under :func:`history_header`."""
    cells = [str(cell) for cell in history_row(event)]
    severity = cells[5]
    return Text(
        _LINE.format(*cells),
        style="red" if severity in ("ERROR", "CRITICAL") else "",
    )


def stats_table(data: dict[str, Any]) -> Table:
    """The ``stats`` table: per agent pid, cpu, memory, threads, uptime."""
    head = data.get("orchestrator", {})
    table = Table(
        title=(
            f"orchestrator pid {head.get('pid')}  cpu {head.get('cpu_percent')}%  "
            f"mem {head.get('memory_mb')} MB  threads {head.get('threads')}  "
            f"running {head.get('running_agents')}/{head.get('max_workers')}"
        ),
        title_justify="left",
        box=None,
        header_style="bold",
    )
    for column in (
        "NAME",
        "STATE",
        "PID",
        "CPU %",
        "MEM MB",
        "MEM %",
        "THREADS",
        "UPTIME",
    ):
        table.add_column(column)
    for agent in data.get("agents", []):
        table.add_row(
            str(agent.get("name")),
            _state(str(agent.get("lifecycle_state"))),
            str(agent.get("pid") or "-"),
            str(agent.get("cpu_percent")),
            str(agent.get("memory_mb")),
            str(agent.get("memory_percent")),
            str(agent.get("threads")),
            format_uptime(agent.get("uptime")),
        )
    return table
