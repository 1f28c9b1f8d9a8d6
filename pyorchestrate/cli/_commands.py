"""What each ``pyorchestrate`` command does, given its parsed arguments.

A command returns its exit code (0 ok, 1 failed, 2 usage, 3 cannot connect); see
:mod:`._app` for the parser. Replies are printed by :mod:`._render`: JSON with
``--json``, rich tables on a terminal, plain lines in a pipe.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import time
from argparse import Namespace
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..core.control.client import ControlClient, SeveralOrchestrators, discover
from ..core.control.logquery import DEFAULT_LINES, LOG_STREAMS, parse_since
from ..core.errors import ControlError, ControlUnavailable
from . import _render as render

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "commands",
    "create",
    "dependencies",
    "history",
    "history_stats",
    "list_orchestrators",
    "logs",
    "ping",
    "ps",
    "reload",
    "restart",
    "shutdown",
    "start",
    "stats",
    "status",
    "stop",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it


class _Exit(Exception):
    """End the command with this exit code (its message is already printed)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _exit_code(command: Callable[[Namespace], None]) -> Callable[[Namespace], int]:
    def run(args: Namespace) -> int:
        try:
            command(args)
        except _Exit as stop:
            return stop.code
        return EXIT_OK

    run.__name__ = command.__name__
    run.__doc__ = command.__doc__
    return run


def _login() -> str:
    """Who runs the CLI (kept with the audit event of an action)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER
        return f"uid {os.getuid()}"


@contextmanager
def _client(args: Namespace) -> Iterator[ControlClient]:
    if args.socket and args.name:
        render.error("give --socket or --name, not both")
        raise _Exit(EXIT_USAGE)
    try:
        client = ControlClient(
            args.socket,
            timeout=args.timeout,
            sender="cli",
            name=args.name,
            meta={"actor": _login()},
        )
    except SeveralOrchestrators as exc:
        render.error(exc.message)
        raise _Exit(EXIT_USAGE) from None
    try:
        yield client
    except ControlUnavailable as exc:
        render.error(exc.message)
        raise _Exit(EXIT_UNREACHABLE) from None
    except ControlError as exc:
        render.error(exc.message)
        raise _Exit(EXIT_FAILED) from None
    finally:
        client.close()


def _ask(
    args: Namespace,
    command: str,
    *arguments: Any,
    show: Callable[[dict[str, Any]], None],
) -> None:
    """Send one request; print its data as JSON (``--json``) or with ``show``."""
    with _client(args) as client:
        payload = client.request(command, *arguments)
    data = _data_or_exit(payload, args.json)
    if args.json:
        render.print_json(data)
    else:
        show(data)


def _data_or_exit(payload: dict[str, Any], as_json: bool) -> dict[str, Any]:
    """A reply's ``data``; an error reply is printed (whole, with --json) and exits 1."""
    if payload.get("status") != "success":
        if as_json:
            render.print_json(payload)
        else:
            render.error(str(payload.get("error")))
        raise _Exit(EXIT_FAILED)
    data: dict[str, Any] = payload.get("data") or {}
    return data


def _message(data: dict[str, Any]) -> None:
    render.out(str(data.get("message", "ok")))


@_exit_code
def ps(args: Namespace) -> None:
    """Every agent: state, pid, uptime, restarts, last error."""
    _ask(args, "ps", show=lambda d: render.show(render.ps_table(d)))


@_exit_code
def status(args: Namespace) -> None:
    """The orchestrator's status, or one agent's."""
    arguments = (args.agent,) if args.agent else ()
    _ask(
        args,
        "status",
        *arguments,
        show=lambda d: render.show(render.key_value_table(d)),
    )


@_exit_code
def start(args: Namespace) -> None:
    """Start an agent (or queue it)."""

    def show(data: dict[str, Any]) -> None:
        reason = f" ({data['reason']})" if data.get("reason") else ""
        render.out(f"{args.agent}: {data.get('status')}{reason}")

    _ask(args, "start", args.agent, show=show)


@_exit_code
def stop(args: Namespace) -> None:
    """Ask an agent to stop."""
    _ask(args, "stop", args.agent, show=_message)


@_exit_code
def ping(args: Namespace) -> None:
    """An external job reports a run: success, or a failure with ``--fail``."""
    _ask(args, "ping", args.agent, args.fail, args.message or "", show=_message)


@_exit_code
def restart(args: Namespace) -> None:
    """Stop an agent and start it again."""
    _ask(args, "restart", args.agent, show=_message)


@_exit_code
def reload(args: Namespace) -> None:
    """Re-read the fleet file of ``pyorchestrate run``; an invalid file changes
    nothing and its errors are printed (exit 1)."""
    with _client(args) as client:
        payload = client.request("reload")
    data = _data_or_exit(payload, args.json)
    if args.json:
        render.print_json(data)
        return
    render.out(str(data.get("message")))
    for warning in data.get("warnings") or ():
        render.warning(str(warning))


@_exit_code
def shutdown(args: Namespace) -> None:
    """Stop every agent and the orchestrator."""
    _ask(args, "shutdown", show=_message)


@_exit_code
def dependencies(args: Namespace) -> None:
    """Which agents wait for which."""

    def show(data: dict[str, Any]) -> None:
        deps = data.get("dependencies") or {}
        if not deps:
            render.out("no dependencies")
        for name, needs in deps.items():
            render.out(f"{name} <- {', '.join(needs)}")

    _ask(args, "dependencies", show=show)


@_exit_code
def commands(args: Namespace) -> None:
    """The commands this orchestrator allows."""

    def show(data: dict[str, Any]) -> None:
        descriptions = data.get("descriptions") or {}
        grid = render.Grid(
            ("COMMAND", "WHAT IT DOES"), show_header=False, key_column=True
        )
        for name in data.get("allowed_commands", []):
            grid.rows.append((name, str(descriptions.get(name, ""))))
        render.show(grid)
        if data.get("restricted_commands"):
            render.out("not allowed here: " + ", ".join(data["restricted_commands"]))

    _ask(args, "commands", show=show)


@_exit_code
def stats(args: Namespace) -> None:
    """cpu, memory, threads and uptime per agent, refreshed until Ctrl+C."""
    if args.once or args.json:
        _ask(args, "stats", show=lambda d: render.show(render.stats_table(d)))
        return
    with _client(args) as client:
        if not render.is_terminal(sys.stdout):  # a pipe: one table a refresh
            try:
                while True:
                    render.show(render.stats_table(client.call("stats")))
                    time.sleep(args.interval)
            except KeyboardInterrupt:
                return
        from rich.live import Live

        try:
            with Live(console=render.terminal_console(), auto_refresh=False) as live:
                while True:
                    table = render.stats_table(client.call("stats")).table()
                    live.update(table, refresh=True)
                    time.sleep(args.interval)
        except KeyboardInterrupt:
            return


@_exit_code
def history(args: Namespace) -> None:
    """Past events (and, with --follow, new ones as they happen)."""
    last, follow = args.last, args.follow
    backlog = (
        not follow or args.replay or last is not None or args.after_seq is not None
    )
    filters: dict[str, Any] = {"last": (50 if last is None else last) if backlog else 0}
    for key, value in (
        ("agent", args.agent),
        ("event_name", args.event),
        ("after_seq", args.after_seq),
    ):
        if value is not None:
            filters[key] = value
    if not follow:
        _ask(
            args,
            "history",
            filters,
            show=lambda d: render.show(render.history_table(d.get("events", []))),
        )
        return
    with _client(args) as client:
        data = _data_or_exit(client.request("history", filters), args.json)
        events = data.get("events", [])
        # One header, then one aligned line per event, old and new alike.
        if not args.json:
            render.print_line(render.history_header())
        for item in events:
            _print_event(item, args.json)
        last_seq = events[-1]["seq"] if events else data["capacity_info"]["last_seq"]
        stream = ControlClient(client.socket_path, timeout=args.timeout, sender="cli")
        try:
            for item in stream.subscribe(
                agent=args.agent, event_name=args.event, after_seq=last_seq
            ):
                _print_event(item, args.json)
        except KeyboardInterrupt:
            return
        finally:
            stream.close()


def _print_event(event: dict[str, Any], as_json: bool) -> None:
    if as_json:
        render.print_json(event)
    else:
        render.print_line(render.history_line(event))


@_exit_code
def logs(args: Namespace) -> None:
    """A process agent's output: the last lines, then (--follow) new ones."""
    if args.reopen:
        if args.agent or args.follow or args.since or args.lines is not None:
            render.error("--reopen takes no agent and no other logs option")
            raise _Exit(EXIT_USAGE)
        _ask(args, "reopen-logs", show=_message)
        return
    if not args.agent:
        render.error("name the agent: pyorchestrate logs AGENT (or --reopen)")
        raise _Exit(EXIT_USAGE)
    since = None
    if args.since:
        try:
            since = parse_since(args.since)
        except ValueError as exc:
            render.error(str(exc))
            raise _Exit(EXIT_USAGE) from None
    lines = args.lines
    if lines is None:
        lines = None if since is not None else DEFAULT_LINES
    streams = (
        ("stdout",) if args.stdout else ("stderr",) if args.stderr else LOG_STREAMS
    )
    with _client(args) as client:
        entries = client.logs(
            args.agent, lines=lines, follow=args.follow, streams=streams, since=since
        )
        try:
            for entry in entries:
                sys.stdout.write(_log_line(entry, args.json))
                if args.follow:
                    sys.stdout.flush()
            sys.stdout.flush()
        except KeyboardInterrupt:
            return
        except BrokenPipeError:  # `| head`: the reader has what it wanted
            _quiet_stdout()
            return
        finally:
            entries.close()


def _log_line(entry: dict[str, str], as_json: bool) -> str:
    if as_json:
        return json.dumps(entry, ensure_ascii=False) + "\n"
    return f"{entry.get('ts') or '-'} {entry.get('stream')} {entry.get('line')}\n"


def _quiet_stdout() -> None:
    """After EPIPE: send what Python would still flush at exit to /dev/null."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


@_exit_code
def history_stats(args: Namespace) -> None:
    """Events counted by type."""

    def show(data: dict[str, Any]) -> None:
        counts = (data.get("statistics") or {}).get("by_type", {})
        for name, count in counts.items():
            render.out(f"{name:<20} {count}")
        info = data.get("capacity_info") or {}
        render.out(
            f"stored {info.get('stored_events')}/{info.get('max_events')}, "
            f"evicted {info.get('evicted_events')}"
        )

    arguments = ({"agent": args.agent},) if args.agent else ()
    _ask(args, "history-stats", *arguments, show=show)


@_exit_code
def list_orchestrators(args: Namespace) -> None:
    """The orchestrators in the private socket directory (stale ones marked)."""
    found = discover(args.timeout)
    if args.json:
        render.print_json({"orchestrators": found})
    elif not found:
        from ..core.control.paths import default_socket_dir

        render.out(f"no orchestrator sockets in {default_socket_dir()}")
    else:
        render.show(render.orchestrators_table(found))


@_exit_code
def create(args: Namespace) -> None:
    """A new application that runs as generated (safe to re-run)."""
    from pathlib import Path

    from ._scaffold import create_app

    try:
        report = create_app(Path(args.name), force=args.force)
    except ValueError as exc:
        render.error(str(exc))
        raise _Exit(EXIT_USAGE) from None
    if args.json:
        render.print_json({"root": str(report.root), "files": report.files})
        return
    for path, action in report.files.items():
        render.out(f"{action:>8}  {path}")
    render.out("")
    for line in report.next_steps():
        render.out(line)
