"""How the CLI shows replies: rich tables for people, plain lines for pipes, JSON.

On a terminal a table is a rich table that folds long cells to the window. When
stdout is not a terminal (``pyorchestrate ps | grep boom``) the same table is written
as plain text: one row a line, every cell whole (line breaks inside a cell shown as
``\\n``), columns aligned with two spaces, no colour and no wrapping, so each line can
be grepped, cut and sorted.

rich is imported only when something is drawn on a terminal: a pipe, ``--json`` and
every error path print with the standard library alone (the CLI starts faster).
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from collections.abc import Sequence
from functools import cache
from typing import IO, TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

__all__ = [
    "STATE_STYLES",
    "Grid",
    "Styled",
    "error",
    "format_uptime",
    "history_header",
    "history_line",
    "history_row",
    "history_table",
    "is_terminal",
    "key_value_table",
    "orchestrators_table",
    "out",
    "print_json",
    "print_line",
    "ps_summary",
    "ps_table",
    "show",
    "stats_table",
    "terminal_console",
    "warning",
]

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


class Styled(NamedTuple):
    """Text with a rich style (``"bold red"``), drawn styled on a terminal only."""

    text: str
    style: str = ""

    def joined(self, other: Styled) -> Styled:
        """Both texts; the style of the first (enough for a cell's suffix)."""
        return Styled(self.text + other.text, self.style)


Cell = str | Styled


class Grid:
    """A table's content, drawn by :func:`show` for a terminal or for a pipe.

    ``key_column``: the first column holds keys (bold on a terminal).
    """

    def __init__(
        self,
        columns: Sequence[str],
        *,
        title: str | None = None,
        show_header: bool = True,
        key_column: bool = False,
    ) -> None:
        self.columns = columns
        self.rows: list[Sequence[Cell]] = []
        self.title = title
        self.show_header = show_header
        self.key_column = key_column

    def table(self) -> Table:
        """A rich table (for a terminal): long cells fold to the window's width."""
        from rich.table import Table

        table = Table(
            title=self.title,
            title_justify="left",
            box=None,
            header_style="bold",
            show_header=self.show_header,
        )
        for index, column in enumerate(self.columns):
            table.add_column(
                column,
                overflow="fold",
                style="bold" if self.key_column and index == 0 else None,
            )
        for row in self.rows:
            table.add_row(*(_rich(cell) for cell in row))
        return table

    def lines(self) -> list[str]:
        """Plain lines (for a pipe): the title, the header, then one line a row.

        Every column but the last is padded to its widest cell; nothing is cut.
        """
        cells = [[_plain(cell) for cell in row] for row in self.rows]
        if self.show_header:
            cells.insert(0, list(self.columns))
        widths = [
            max((len(row[i]) for row in cells if i < len(row)), default=0)
            for i in range(len(self.columns))
        ]
        lines = [] if self.title is None else [self.title]
        for row in cells:
            padded = [
                cell if i == len(row) - 1 else cell.ljust(widths[i])
                for i, cell in enumerate(row)
            ]
            lines.append("  ".join(padded).rstrip())
        return lines


def _plain(cell: Cell) -> str:
    text = cell.text if isinstance(cell, Styled) else str(cell)
    return text.replace("\r", "").replace("\n", "\\n").replace("\t", " ")


def _rich(cell: Cell) -> Text | str:
    if not isinstance(cell, Styled):
        return cell
    from rich.text import Text

    return Text(cell.text, style=cell.style)


def is_terminal(stream: IO[str]) -> bool:
    """Whether ``stream`` is a terminal (a closed or odd stream is not)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


@cache
def _console(stderr: bool) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def terminal_console() -> Console:
    """The rich console on stdout (made on first use), e.g. for a live view."""
    return _console(False)


def show(grid: Grid) -> None:
    """Print ``grid``: a rich table on a terminal, plain aligned lines otherwise."""
    if is_terminal(sys.stdout):
        terminal_console().print(grid.table())
    else:
        sys.stdout.write("".join(line + "\n" for line in grid.lines()))


def print_line(cell: Cell) -> None:
    """Print one line: styled on a terminal; whole, on one line, in a pipe."""
    if is_terminal(sys.stdout):
        terminal_console().print(_rich(cell), highlight=False, soft_wrap=True)
    else:
        print(_plain(cell), flush=True)


def out(text: str, style: str = "") -> None:
    """Print a message line (``style`` applies on a terminal only; no markup)."""
    print_line(Styled(text, style))


def _to_stderr(label: Styled, message: str) -> None:
    if is_terminal(sys.stderr):
        from rich.text import Text

        _console(True).print(
            Text.assemble((label.text, label.style), " ", message), highlight=False
        )
    else:
        print(f"{label.text} {message}", file=sys.stderr, flush=True)


def error(message: str) -> None:
    """``Error: message`` on stderr; not folded when stderr is not a terminal."""
    _to_stderr(Styled("Error:", "bold red"), message)


def warning(message: str) -> None:
    """``warning: message`` on stderr."""
    _to_stderr(Styled("warning:", "yellow"), message)


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


def _state(state: str) -> Styled:
    return Styled(state, STATE_STYLES.get(state, ""))


def _ps_state(agent: dict[str, Any]) -> Styled:
    """The state, with the time to the next try while in BACKOFF."""
    text = _state(str(agent.get("lifecycle_state")))
    next_start_in = agent.get("next_start_in")
    if isinstance(next_start_in, int | float):
        text = text.joined(Styled(f" (retry in {next_start_in:.1f}s)"))
    return text


def _ps_exit(agent: dict[str, Any]) -> str:
    """The last exit: the signal's name if one killed it, else the exit code."""
    if agent.get("signal"):
        return str(agent["signal"])
    exit_code = agent.get("exit_code")
    return "-" if exit_code is None else str(exit_code)


def _ps_error(agent: dict[str, Any]) -> Styled:
    parts = [
        str(agent[key]) for key in ("fatal_reason", "last_error") if agent.get(key)
    ]
    return Styled("; ".join(parts), "red")


def ps_summary(data: dict[str, Any]) -> str:
    """What ``ps``'s counts mean, e.g. ``3 agents; running 1 of max_workers 5 (worker
    slots in use); queued 0 (waiting for a slot)``."""
    agents = data.get("agents", [])
    return (
        f"{len(agents)} agent{'' if len(agents) == 1 else 's'}; "
        f"running {data.get('running_count', 0)} of "
        f"max_workers {data.get('max_workers', '?')} (worker slots in use); "
        f"queued {data.get('waiting_count', 0)} (waiting for a slot)"
    )


def _ps_next_run(agent: dict[str, Any]) -> str:
    """``2026-12-04 03:00+01:00`` from the ISO due time (``-``: not scheduled)."""
    text = agent.get("next_run")
    if not isinstance(text, str):
        return "-"
    day, _, rest = text.partition("T")
    clock, offset = rest[:8], rest[8:]
    if clock.endswith(":00"):
        clock = clock[:5]
    return f"{day} {clock}{offset}"


_RESULT_STYLES = {"success": "green", "failed": "red", "max_runtime": "red"}


def _ps_last_result(agent: dict[str, Any]) -> Styled:
    result = agent.get("last_result")
    if not isinstance(result, str):
        return Styled("-")
    return Styled(result, _RESULT_STYLES.get(result, "yellow"))


def ps_table(data: dict[str, Any]) -> Grid:
    """The ``ps`` table: name, state (BACKOFF with its next try), pid, uptime,
    restarts, last exit code or signal, last error (with why it is FATAL); with
    scheduled agents, their NEXT RUN and LAST RESULT too; with Ray agents, the NODE
    each runs on (its pid is its worker's, on that node)."""
    agents = data.get("agents", [])
    scheduled = any(a.get("next_run") or a.get("last_result") for a in agents)
    on_ray = any("node" in a for a in agents)
    columns: tuple[str, ...] = ("NAME", "STATE", "PID")
    if on_ray:
        columns += ("NODE",)
    columns += ("UPTIME", "RESTARTS", "EXIT")
    if scheduled:
        columns += ("NEXT RUN", "LAST RESULT")
    grid = Grid((*columns, "LAST ERROR"), title=ps_summary(data))
    for agent in agents:
        row: tuple[Cell, ...] = (
            str(agent.get("name")),
            _ps_state(agent),
            str(agent.get("pid") or "-") if agent.get("alive") else "-",
        )
        if on_ray:
            row += (str(agent.get("node") or "-"),)
        row += (
            format_uptime(agent.get("uptime")),
            str(agent.get("restarts", 0)),
            _ps_exit(agent),
        )
        if scheduled:
            row += (_ps_next_run(agent), _ps_last_result(agent))
        grid.rows.append((*row, _ps_error(agent)))
    return grid


def key_value_table(data: dict[str, Any]) -> Grid:
    """A two-column table of a flat mapping."""
    grid = Grid(("KEY", "VALUE"), show_header=False, key_column=True)
    for key, value in data.items():
        if isinstance(value, dict | list):
            value = json.dumps(value, default=str)
        if key == "lifecycle_state":
            grid.rows.append((key, _state(str(value))))
        elif key == "uptime":
            grid.rows.append((key, format_uptime(value)))
        else:
            grid.rows.append((key, "-" if value is None else str(value)))
    return grid


def history_table(events: list[dict[str, Any]]) -> Grid:
    """The ``history`` table: seq, time, category, event, agent, severity, details."""
    grid = Grid(("SEQ", "TIME", "CATEGORY", "EVENT", "AGENT", "SEV", "DETAILS"))
    grid.rows.extend(history_row(event) for event in events)
    return grid


def orchestrators_table(found: list[dict[str, Any]]) -> Grid:
    """The ``list`` table: one line per socket in the private directory."""
    grid = Grid(("NAME", "PID", "AGENTS", "UPTIME", "STATE", "SOCKET"))
    for item in found:
        state = str(item.get("state"))
        grid.rows.append(
            (
                str(item.get("name")),
                str(item.get("pid") or "-"),
                "-" if item.get("agents") is None else str(item["agents"]),
                format_uptime(item.get("uptime")),
                Styled(state, "green" if state == "live" else "bold red"),
                str(item.get("socket")),
            )
        )
    return grid


def history_row(event: dict[str, Any]) -> list[Cell]:
    """One history row (also used by ``history --follow``)."""
    data = event.get("data") or {}
    if event.get("event_name") == "operator_action":
        details = _action_details(data)
    else:
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
        Styled(severity, "red" if severity in ("ERROR", "CRITICAL") else ""),
        details,
    ]


def _action_details(data: dict[str, Any]) -> str:
    """``restart by alice (cli): agent 'etl' restarted``, and what else was kept."""
    who = data.get("actor") or "someone"
    failed = "" if str(data.get("ok", "True")) == "True" else "FAILED "
    text = f"{failed}{data.get('action')} by {who} ({data.get('source')})"
    if data.get("target"):
        text += f" on {data['target']}"
    text += f": {data.get('result', '')}"
    known = ("action", "actor", "source", "ok", "result", "target")
    extra = " ".join(f"{k}={v}" for k, v in data.items() if k not in known)
    return f"{text} {extra}" if extra else text


_LINE = "{:>6}  {:<12}  {:<12}  {:<18}  {:<16}  {:<8}  {}"


def history_header() -> Styled:
    """The header of ``history --follow`` lines."""
    return Styled(
        _LINE.format("SEQ", "TIME", "CATEGORY", "EVENT", "AGENT", "SEV", "DETAILS"),
        "bold",
    )


def history_line(event: dict[str, Any]) -> Styled:
    """One event as a fixed-width line, aligned under :func:`history_header`."""
    cells = [_plain(cell) for cell in history_row(event)]
    severity = cells[5]
    return Styled(
        _LINE.format(*cells), "red" if severity in ("ERROR", "CRITICAL") else ""
    )


def stats_table(data: dict[str, Any]) -> Grid:
    """The ``stats`` table: per agent pid, cpu, memory, threads, uptime."""
    head = data.get("orchestrator", {})
    grid = Grid(
        ("NAME", "STATE", "PID", "CPU %", "MEM MB", "MEM %", "THREADS", "UPTIME"),
        title=(
            f"orchestrator pid {head.get('pid')}  cpu {head.get('cpu_percent')}%  "
            f"mem {head.get('memory_mb')} MB  threads {head.get('threads')}  "
            f"running {head.get('running_agents')} of "
            f"max_workers {head.get('max_workers')}"
        ),
    )
    for agent in data.get("agents", []):
        grid.rows.append(
            (
                str(agent.get("name")),
                _state(str(agent.get("lifecycle_state"))),
                str(agent.get("pid") or "-"),
                str(agent.get("cpu_percent")),
                str(agent.get("memory_mb")),
                str(agent.get("memory_percent")),
                str(agent.get("threads")),
                format_uptime(agent.get("uptime")),
            )
        )
    return grid
