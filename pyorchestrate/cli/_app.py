"""The ``pyorchestrate`` commands (typer + rich).

Exit codes: 0 ok; 1 the command failed (an error reply, or a timeout); 2 usage
(including: several orchestrators run and none was chosen; the message lists them);
3 cannot connect (the message names the socket path tried).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from ..core.control.client import ControlClient, SeveralOrchestrators, discover
from ..core.errors import ControlError, ControlUnavailable
from . import _render as render

__all__ = ["PLUGINS", "PLUGIN_GROUP", "add_plugins", "app", "run"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3

app = typer.Typer(
    name="pyorchestrate",
    help="Inspect and control a running pyorchestrate orchestrator.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"pyorchestrate {__version__}")
        raise typer.Exit(EXIT_OK)


SocketOpt = Annotated[
    str | None,
    typer.Option(
        "--socket",
        "-s",
        help=(
            "Command socket of the orchestrator (default: $PYORCHESTRATE_SOCKET, "
            "else the only orchestrator running in the private per-user directory)."
        ),
        show_default=False,
    ),
]
NameOpt = Annotated[
    str | None,
    typer.Option(
        "--name",
        "-N",
        help="The orchestrator of this name (see `pyorchestrate list`).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds to wait for a reply.")
]
VersionOpt = Annotated[
    bool,
    typer.Option(
        "--version",
        "-V",
        callback=_version,
        is_eager=True,
        help="Show the version and exit.",
    ),
]


@app.callback()
def _root(version: VersionOpt = False) -> None:
    """Inspect and control a running pyorchestrate orchestrator."""


@contextmanager
def _client(
    socket: str | None, name: str | None, timeout: float
) -> Iterator[ControlClient]:
    if socket and name:
        render.error("give --socket or --name, not both")
        raise typer.Exit(EXIT_USAGE)
    try:
        client = ControlClient(socket, timeout=timeout, sender="cli", name=name)
    except SeveralOrchestrators as exc:
        render.error(exc.message)
        raise typer.Exit(EXIT_USAGE) from None
    try:
        yield client
    except ControlUnavailable as exc:
        render.error(exc.message)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    except ControlError as exc:
        render.error(exc.message)
        raise typer.Exit(EXIT_FAILED) from None
    finally:
        client.close()


def _run(
    socket: str | None,
    name: str | None,
    timeout: float,
    as_json: bool,
    command: str,
    *args: Any,
    show: Callable[[dict[str, Any]], None],
) -> None:
    with _client(socket, name, timeout) as client:
        payload = client.request(command, *args)
    data = _data_or_exit(payload, as_json)
    if as_json:
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
        raise typer.Exit(EXIT_FAILED)
    data: dict[str, Any] = payload.get("data") or {}
    return data


def _message(data: dict[str, Any]) -> None:
    render.console.print(str(data.get("message", "ok")))


@app.command()
def ps(
    socket: SocketOpt = None,
    name: NameOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 5.0,
    version: VersionOpt = False,
) -> None:
    """List every agent: state, pid, uptime, restarts, last error."""
    _run(
        socket,
        name,
        timeout,
        as_json,
        "ps",
        show=lambda d: render.show(render.ps_table(d)),
    )


@app.command()
def status(
    agent: Annotated[str | None, typer.Argument(help="An agent's name.")] = None,
    socket: SocketOpt = None,
    name: NameOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 5.0,
    version: VersionOpt = False,
) -> None:
    """Show the orchestrator's status, or one agent's."""
    args = (agent,) if agent else ()
    _run(
        socket,
        name,
        timeout,
        as_json,
        "status",
        *args,
        show=lambda d: render.show(render.key_value_table(d)),
    )


@app.command()
def start(
    agent: Annotated[str, typer.Argument(help="The agent to start.")],
    socket: SocketOpt = None,
    name: NameOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 5.0,
    version: VersionOpt = False,
) -> None:
    """Start an agent (or queue it until a worker slot is free)."""

    def show(data: dict[str, Any]) -> None:
        reason = f" ({data['reason']})" if data.get("reason") else ""
        render.console.print(f"{agent}: {data.get('status')}{reason}")

    _run(socket, name, timeout, as_json, "start", agent, show=show)


@app.command()
def stop(
    agent: Annotated[str, typer.Argument(help="The agent to stop.")],
    socket: SocketOpt = None,
    name: NameOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 5.0,
    version: VersionOpt = False,
) -> None:
    """Ask an agent to stop (or take it off the queue)."""
    _run(socket, name, timeout, as_json, "stop", agent, show=_message)


@app.command()
def restart(
    agent: Annotated[str, typer.Argument(help="The agent to restart.")],
    socket: SocketOpt = None,
    name: NameOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 5.0,
    version: VersionOpt = False,
) -> None:
    """Stop an agent and start it again."""
    _run(socket, name, timeout, as_json, "restart", agent, show=_message)


@app.command()
def dependencies(
    socket: SocketOpt = None,
    name: NameOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 5.0,
    version: VersionOpt = False,
) -> None:
    """Show which agents wait for which."""

    def show(data: dict[str, Any]) -> None:
        deps = data.get("dependencies") or {}
        if not deps:
            render.console.print("no dependencies")
        for name, needs in deps.items():
            render.console.print(f"{name} <- {', '.join(needs)}")

    _run(socket, name, timeout, as_json, "dependencies", show=show)


@app.command()
def commands(
    socket: SocketOpt = None,
    name: NameOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 5.0,
    version: VersionOpt = False,
) -> None:
    """List the commands this orchestrator allows."""

    def show(data: dict[str, Any]) -> None:
        descriptions = data.get("descriptions") or {}
        for name in data.get("allowed_commands", []):
            render.console.print(f"[bold]{name:<14}[/] {descriptions.get(name, '')}")
        if data.get("restricted_commands"):
            render.console.print(
                "not allowed here: " + ", ".join(data["restricted_commands"])
            )

    _run(socket, name, timeout, as_json, "commands", show=show)


@app.command()
def stats(
    socket: SocketOpt = None,
    name: NameOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 5.0,
    interval: Annotated[
        float,
        typer.Option("--interval", "-n", min=0.1, help="Seconds between refreshes."),
    ] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Print once and exit.")] = False,
    version: VersionOpt = False,
) -> None:
    """Show cpu, memory, threads and uptime per agent, refreshed until Ctrl+C."""
    if once or as_json:
        _run(
            socket,
            name,
            timeout,
            as_json,
            "stats",
            show=lambda d: render.show(render.stats_table(d)),
        )
        return
    from rich.live import Live

    with _client(socket, name, timeout) as client:
        try:
            with Live(console=render.console, auto_refresh=False) as live:
                while True:
                    live.update(
                        render.stats_table(client.call("stats")).table(),
                        refresh=True,
                    )
                    time.sleep(interval)
        except KeyboardInterrupt:
            return


@app.command()
def history(
    last: Annotated[
        int | None,
        typer.Option(
            "--last",
            "-l",
            min=0,
            help="How many past events (default 50; with --follow, shown first).",
            show_default=False,
        ),
    ] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", "-a", help="Only this agent.")
    ] = None,
    event: Annotated[
        str | None,
        typer.Option("--event", "-e", help="Only this event, e.g. agent_error."),
    ] = None,
    after_seq: Annotated[
        int | None, typer.Option("--after-seq", help="Only events after this seq.")
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Print new events as they happen, until Ctrl+C (only new ones, "
            "unless --replay, --last or --after-seq is given).",
        ),
    ] = False,
    replay: Annotated[
        bool,
        typer.Option(
            "--replay", help="With --follow: first print the last 50 past events."
        ),
    ] = False,
    socket: SocketOpt = None,
    name: NameOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 5.0,
    version: VersionOpt = False,
) -> None:
    """Show past events (and, with --follow, new ones as they happen)."""
    backlog = not follow or replay or last is not None or after_seq is not None
    filters: dict[str, Any] = {"last": (50 if last is None else last) if backlog else 0}
    for key, value in (
        ("agent", agent),
        ("event_name", event),
        ("after_seq", after_seq),
    ):
        if value is not None:
            filters[key] = value
    if not follow:
        _run(
            socket,
            name,
            timeout,
            as_json,
            "history",
            filters,
            show=lambda d: render.show(render.history_table(d.get("events", []))),
        )
        return
    with _client(socket, name, timeout) as client:
        payload = client.request("history", filters)
        data = _data_or_exit(payload, as_json)
        events = data.get("events", [])
        # One header, then one aligned line per event, old and new alike.
        if not as_json:
            render.print_line(render.history_header())
        for item in events:
            _print_event(item, as_json)
        last_seq = events[-1]["seq"] if events else data["capacity_info"]["last_seq"]
        stream = ControlClient(client.socket_path, timeout=timeout, sender="cli")
        try:
            for item in stream.subscribe(
                agent=agent, event_name=event, after_seq=last_seq
            ):
                _print_event(item, as_json)
        except KeyboardInterrupt:
            return
        finally:
            stream.close()


def _print_event(event: dict[str, Any], as_json: bool) -> None:
    if as_json:
        render.print_json(event)
    else:
        render.print_line(render.history_line(event))


@app.command("list")
def list_(
    as_json: JsonOpt = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.1, help="Seconds to wait for each reply."),
    ] = 1.0,
    version: VersionOpt = False,
) -> None:
    """List the orchestrators in the private socket directory (stale ones marked)."""
    found = discover(timeout)
    if as_json:
        render.print_json({"orchestrators": found})
    elif not found:
        from ..core.control.paths import default_socket_dir

        render.console.print(f"no orchestrator sockets in {default_socket_dir()}")
    else:
        render.show(render.orchestrators_table(found))


@app.command("history-stats")
def history_stats(
    agent: Annotated[
        str | None, typer.Option("--agent", "-a", help="Only this agent.")
    ] = None,
    socket: SocketOpt = None,
    name: NameOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 5.0,
    version: VersionOpt = False,
) -> None:
    """Count events by type."""

    def show(data: dict[str, Any]) -> None:
        counts = (data.get("statistics") or {}).get("by_type", {})
        for name, count in counts.items():
            render.console.print(f"{name:<20} {count}")
        info = data.get("capacity_info") or {}
        render.console.print(
            f"stored {info.get('stored_events')}/{info.get('max_events')}, "
            f"evicted {info.get('evicted_events')}"
        )

    args = ({"agent": agent},) if agent else ()
    _run(socket, name, timeout, as_json, "history-stats", *args, show=show)


@app.command()
def shutdown(
    socket: SocketOpt = None,
    name: NameOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 5.0,
    version: VersionOpt = False,
) -> None:
    """Stop every agent and the orchestrator."""
    _run(socket, name, timeout, as_json, "shutdown", show=_message)


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="Directory of the new application.")],
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite files that already exist.")
    ] = False,
    as_json: JsonOpt = False,
    version: VersionOpt = False,
) -> None:
    """Create a new application that runs as generated (safe to re-run)."""
    from ._scaffold import create_app

    try:
        report = create_app(Path(name), force=force)
    except ValueError as exc:
        render.error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    if as_json:
        render.print_json({"root": str(report.root), "files": report.files})
        return
    for path, action in report.files.items():
        render.console.print(f"{action:>8}  {path}")
    render.console.print()
    for line in report.next_steps():  # plain text: paths and [extras] are no markup
        render.console.print(line, markup=False, highlight=False, soft_wrap=True)


PLUGIN_GROUP = "pyorchestrate.cli"
"""Entry-point group of command groups added to ``pyorchestrate`` by other packages.

Each entry point names a ``typer.Typer``; it becomes ``pyorchestrate <entry name> ...``.
This is how ``notifiers`` adds ``pyorchestrate notify`` while the core never imports it.
"""


def add_plugins(target: typer.Typer) -> list[str]:
    """Add every installed ``pyorchestrate.cli`` command group to ``target``.

    A plugin that fails to load is reported on stderr and skipped: the core commands
    always work. Returns the names added.
    """
    from importlib.metadata import entry_points

    added: list[str] = []
    for entry in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        try:
            group = entry.load()
        except Exception as exc:  # a broken plugin must not break ps/stop/...
            render.err_console.print(
                f"[yellow]warning:[/] command group {entry.name!r} "
                f"({entry.value}) could not be loaded: {type(exc).__name__}: {exc}"
            )
            continue
        if not isinstance(group, typer.Typer):
            render.err_console.print(
                f"[yellow]warning:[/] {entry.value} is not a typer.Typer; skipped"
            )
            continue
        target.add_typer(group, name=entry.name)
        added.append(entry.name)
    return added


PLUGINS = add_plugins(app)
"""The command groups added from the ``pyorchestrate.cli`` entry-point group."""


def run() -> None:
    """Run the CLI (exit code 2 for usage errors comes from typer/click)."""
    app()
