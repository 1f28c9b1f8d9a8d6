"""What every ``notify`` command shares: the app, consoles, options, exit codes, errors."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "OFF",
    "STATE_PATH_ENV",
    "ConfigOpt",
    "JsonOpt",
    "RowState",
    "StatePathOpt",
    "TimeoutOpt",
    "app",
    "console",
    "err_console",
    "fail",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="notify",
    help="Alert channels: send a test message, and (with a state file) see their "
    "status, the outbox and mutes.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

STATE_PATH_ENV = "PYORCHESTRATE_NOTIFY_STATE_PATH"
OFF = frozenset({"", "none", "off", "false", "no", "0"})  # as the settings read it

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="PYORCHESTRATE_NOTIFY_CONFIG_FILE",
        help="TOML settings file (default: environment variables only).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
TimeoutOpt = Annotated[
    float,
    typer.Option("--timeout", min=0.1, help="Seconds to wait for each channel."),
]
StatePathOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-path",
        envvar=STATE_PATH_ENV,
        help="The state file (default: state_path of the settings, i.e. "
        "$XDG_STATE_HOME/pyorchestrate/notify.sqlite3 unless set).",
        show_default=False,
    ),
]


class RowState(enum.StrEnum):
    """Where an outbox row stands (as :class:`notifiers.state.OutboxState`)."""

    pending = "pending"
    failed = "failed"
    dead = "dead"


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    err_console.print(f"[bold red]Error:[/] {escape(message)}")
    return typer.Exit(code)


def load_settings_or_exit(config: Path | None) -> Any:
    """The settings, or exit 2 with the problem (field names only, never values)."""
    from ..errors import NotifierConfigError
    from ..settings import load_settings

    try:
        return load_settings(config)
    except NotifierConfigError as exc:
        raise fail(str(exc)) from None
