"""The ``pyorchestrate`` command line: its parser, and how a command is run.

The front end is :mod:`argparse` (standard library): ``pyorchestrate ps --json``
starts, asks and prints with no third-party import at all, and rich is loaded only to
draw on a terminal (see ``bench/bench_control.py`` for what that buys). The commands
themselves live in :mod:`._commands`.

Command groups from other packages (the ``pyorchestrate.cli`` entry-point group, each
a ``typer.Typer``, e.g. ``notify`` from ``notifiers``) are looked up only when their
name is the command given, or when the help lists them.

Exit codes: 0 ok; 1 the command failed (an error reply, or a timeout); 2 usage
(including: several orchestrators run and none was chosen; the message lists them);
3 cannot connect (the message names the socket path tried); 130 interrupted (Ctrl+C).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from . import _commands as commands
from . import _fleet as fleet
from . import _render as render
from ._commands import EXIT_INTERRUPTED, EXIT_USAGE

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["PLUGIN_GROUP", "build_parser", "load_plugin", "plugin_entries", "run"]

PLUGIN_GROUP = "pyorchestrate.cli"
"""Entry-point group of command groups added to ``pyorchestrate`` by other packages.

Each entry point names a ``typer.Typer``; it becomes ``pyorchestrate <entry name> ...``.
This is how ``notifiers`` adds ``pyorchestrate notify`` while the core never imports it.
"""

DESCRIPTION = "Inspect and control a running pyorchestrate orchestrator."


class _Parser(argparse.ArgumentParser):
    """argparse with ``Usage:`` errors that name the command's help (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(
            EXIT_USAGE,
            f"Error: {message}\nTry '{self.prog} --help' for help.\n",
        )


class _Version(argparse.Action):
    """``--version``/``-V``: print the version and exit 0, wherever it is given."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS)
        self.help = "Show the version and exit."

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from .. import __version__  # importlib.metadata only when asked

        print(f"pyorchestrate {__version__}")
        parser.exit(0)


def _at_least(minimum: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value >= minimum:
            raise argparse.ArgumentTypeError(f"{text} is less than {minimum}")
        return value

    parse.__name__ = "number"
    return parse


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is less than 0")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


_integer.__name__ = _count.__name__ = "integer"


# ------------------------------------------------------------------ the commands

_AGENT = "An agent's name."


def _remote(parser: argparse.ArgumentParser, *, timeout: float = 5.0) -> None:
    """The options every command that talks to an orchestrator takes."""
    parser.add_argument(
        "--socket",
        "-s",
        metavar="PATH",
        help="Command socket of the orchestrator (default: $PYORCHESTRATE_SOCKET, "
        "else the only orchestrator running in the private per-user directory).",
    )
    parser.add_argument(
        "--name",
        "-N",
        metavar="NAME",
        help="The orchestrator of this name (see `pyorchestrate list`).",
    )
    parser.add_argument(
        "--timeout",
        type=_at_least(0.1),
        default=timeout,
        metavar="SECONDS",
        help=f"Seconds to wait for a reply (default {timeout:g}).",
    )


def _agent(parser: argparse.ArgumentParser, help: str, optional: bool = False) -> None:
    parser.add_argument("agent", nargs="?" if optional else None, help=help)


def _history_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--last",
        "-l",
        type=_count,
        metavar="N",
        help="How many past events (default 50; with --follow, shown first).",
    )
    parser.add_argument("--agent", "-a", help="Only this agent.")
    parser.add_argument(
        "--event", "-e", metavar="EVENT", help="Only this event, e.g. agent_error."
    )
    parser.add_argument(
        "--after-seq", type=_integer, metavar="SEQ", help="Only events after this seq."
    )
    parser.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="Print new events as they happen, until Ctrl+C (only new ones, unless "
        "--replay, --last or --after-seq is given).",
    )
    parser.add_argument(
        "--replay",
        action="store_true",
        help="With --follow: first print the last 50 past events.",
    )


def _stats_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interval",
        "-n",
        type=_at_least(0.1),
        default=2.0,
        metavar="SECONDS",
        help="Seconds between refreshes (default 2).",
    )
    parser.add_argument("--once", action="store_true", help="Print once and exit.")


def _history_stats_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agent", "-a", help="Only this agent.")


def _logs_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "agent", nargs="?", help="The process agent whose output to show."
    )
    parser.add_argument(
        "--lines",
        "-n",
        type=_count,
        metavar="N",
        help="Show the last N lines first (default 100; with --since, every line "
        "since then; 0 with --follow: only new lines).",
    )
    parser.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="Then print new lines as they are written, until Ctrl+C or the "
        "orchestrator's shutdown (log rotations are followed).",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--stdout", action="store_true", help="Only its stdout (default: both)."
    )
    which.add_argument(
        "--stderr", action="store_true", help="Only its stderr (default: both)."
    )
    parser.add_argument(
        "--since",
        metavar="WHEN",
        help="Only lines written since WHEN: a duration back from now (30s, 10m, 2h, "
        "1d) or a timestamp (2026-12-03T14:00, local time unless it has an offset).",
    )
    parser.add_argument(
        "--reopen",
        action="store_true",
        help="Instead: ask the orchestrator to reopen every output file (after "
        "logrotate renamed them; not allowed by the read-only presets).",
    )


def _create_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="Directory of the new application.")
    parser.add_argument(
        "--force", action="store_true", help="Overwrite files that already exist."
    )


def _list_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=_at_least(0.1),
        default=1.0,
        metavar="SECONDS",
        help="Seconds to wait for each reply (default 1).",
    )


def _ping_options(parser: argparse.ArgumentParser) -> None:
    _agent(parser, "The external job (an ExternalJob with a schedule).")
    parser.add_argument(
        "--fail", action="store_true", help="The job failed (alerts AGENT_ERROR)."
    )
    parser.add_argument(
        "--message", "-m", help="What happened, for the alert (with --fail)."
    )


def _fleet_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="The fleet file (TOML).")


def _run_options(parser: argparse.ArgumentParser) -> None:
    _fleet_file(parser)
    parser.add_argument(
        "--once",
        action="store_true",
        help="Run every agent once, now (scheduled ones too), and exit when all "
        "are done.",
    )
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="Log at DEBUG, not INFO."
    )


Options = Callable[[argparse.ArgumentParser], None]

COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str, list[Options]]] = {
    "ps": (
        commands.ps,
        "List every agent: state, pid, uptime, restarts, last error.",
        [_remote],
    ),
    "status": (
        commands.status,
        "Show the orchestrator's status, or one agent's.",
        [lambda p: _agent(p, _AGENT, optional=True), _remote],
    ),
    "start": (
        commands.start,
        "Start an agent (or queue it until a worker slot is free).",
        [lambda p: _agent(p, "The agent to start."), _remote],
    ),
    "stop": (
        commands.stop,
        "Ask an agent to stop (or take it off the queue).",
        [lambda p: _agent(p, "The agent to stop."), _remote],
    ),
    "restart": (
        commands.restart,
        "Stop an agent and start it again.",
        [lambda p: _agent(p, "The agent to restart."), _remote],
    ),
    "ping": (
        commands.ping,
        "Report a run of an external job (a heartbeat); --fail reports a failure. "
        "Silence past its grace alerts AGENT_MISSED.",
        [_ping_options, _remote],
    ),
    "dependencies": (
        commands.dependencies,
        "Show which agents wait for which.",
        [_remote],
    ),
    "commands": (
        commands.commands,
        "List the commands this orchestrator allows.",
        [_remote],
    ),
    "stats": (
        commands.stats,
        "Show cpu, memory, threads and uptime per agent, refreshed until Ctrl+C.",
        [_stats_options, _remote],
    ),
    "history": (
        commands.history,
        "Show past events (and, with --follow, new ones as they happen).",
        [_history_options, _remote],
    ),
    "history-stats": (
        commands.history_stats,
        "Count events by type.",
        [_history_stats_options, _remote],
    ),
    "logs": (
        commands.logs,
        "Show a process agent's output (stdout and stderr, merged in time order).",
        [_logs_options, _remote],
    ),
    "list": (
        commands.list_orchestrators,
        "List the orchestrators in the private socket directory (stale ones marked).",
        [_list_options],
    ),
    "shutdown": (
        commands.shutdown,
        "Stop every agent and the orchestrator.",
        [_remote],
    ),
    "run": (
        fleet.run,
        "Run the fleet a file describes, in the foreground (SIGHUP re-reads it).",
        [_run_options],
    ),
    "check": (
        fleet.check,
        "Validate a fleet file and show what it runs (exit 0 valid, 2 not).",
        [_fleet_file],
    ),
    "reload": (
        commands.reload,
        "Re-read the fleet file of `pyorchestrate run`: start the added agents, "
        "stop the removed, restart the changed.",
        [_remote],
    ),
    "create": (
        commands.create,
        "Create a new application that runs as generated (safe to re-run).",
        [_create_options],
    ),
}
"""Each core command: its handler (returns the exit code), help, and options."""


def build_parser(plugins: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The whole parser; ``plugins`` are command-group names listed in the help."""
    parser = _Parser(prog="pyorchestrate", description=DESCRIPTION)
    parser.add_argument("--version", "-V", action=_Version)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in plugins:  # run before parsing (see run()); here for help and errors
        sub.add_parser(name, help=f"Command group: `pyorchestrate {name} --help`.")
    for name, (handler, help_text, options) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        for add in options:
            add(command)
        command.add_argument(
            "--json", action="store_true", help="Print JSON instead of tables."
        )
        command.add_argument("--version", "-V", action=_Version)
        command.set_defaults(handler=handler)
    return parser


# ------------------------------------------------------------------ plugins


def plugin_entries() -> dict[str, EntryPoint]:
    """The installed ``pyorchestrate.cli`` entry points by name (none loaded)."""
    from importlib.metadata import entry_points

    return {entry.name: entry for entry in entry_points(group=PLUGIN_GROUP)}


def load_plugin(entry: EntryPoint) -> Callable[..., Any] | None:
    """The ``typer.Typer`` an entry point names, or ``None`` with a warning on
    stderr when it cannot be loaded or is something else: the core commands never
    depend on a plugin."""
    try:
        group = entry.load()
    except Exception as exc:  # a broken plugin must not break the CLI
        render.warning(
            f"command group {entry.name!r} ({entry.value}) could not be loaded: "
            f"{type(exc).__name__}: {exc}"
        )
        return None
    import typer

    if not isinstance(group, typer.Typer):
        render.warning(f"{entry.value} is not a typer.Typer; skipped")
        return None
    return group


def _run_plugin(entry: EntryPoint, args: list[str]) -> int:
    group = load_plugin(entry)
    if group is None:
        return EXIT_USAGE
    try:
        group(args=args, prog_name=f"pyorchestrate {entry.name}")
    except SystemExit as exc:  # click ends every run with one
        return _code(exc)
    return 0


# ------------------------------------------------------------------ running


def _code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def run(argv: Sequence[str] | None = None) -> int:
    """Run one command line (``sys.argv[1:]`` by default); return its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    first = next((arg for arg in args if not arg.startswith("-")), None)
    plugins: dict[str, EntryPoint] = {}
    if first not in COMMANDS:  # a command group, no command, a typo, or --help
        plugins = plugin_entries()
        if args and args[0] in plugins:
            return _run_plugin(plugins[args[0]], args[1:])
    parser = build_parser(sorted(plugins))
    try:
        if not args:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        namespace = parser.parse_args(args)
        if not hasattr(namespace, "handler"):
            parser.error("a command is required")
        handler: Callable[[argparse.Namespace], int] = namespace.handler
        return handler(namespace)
    except SystemExit as exc:
        return _code(exc)
    except KeyboardInterrupt:  # Ctrl+C while waiting for a reply: no traceback
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
