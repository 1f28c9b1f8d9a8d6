"""``pyorchestrate web`` (also the ``pyorchestrate-web`` script): serve the dashboard.

Added to ``pyorchestrate`` through the ``pyorchestrate.cli`` entry-point group, like
``notify``. Starlette and uvicorn load only when the server starts, so ``--help``
stays light, and a missing ``[web]`` extra is a clear error, not a traceback.

Exit codes: 130 stopped by Ctrl+C (as every ``pyorchestrate`` command); 1 the address cannot be bound; 2 usage
(a bad flag, a non-loopback host without a token, several orchestrators running and
none chosen, the ``[web]`` extra not installed).
"""

from __future__ import annotations

import sys
from typing import Annotated, Literal

import typer

__all__ = ["app", "main", "serve"]

EXIT_BIND = 1
EXIT_INTERRUPTED = 130
EXIT_USAGE = 2

_EXTRA = frozenset(
    {"starlette", "uvicorn", "sse_starlette", "prometheus_client", "jinja2", "anyio"}
)
"""What the ``[web]`` extra installs (their absence is a usage error)."""

app = typer.Typer(
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Serve a live dashboard, a JSON API and /metrics for a running orchestrator.",
)


def _fail(message: str, code: int) -> typer.Exit:
    print(f"Error: {message}", file=sys.stderr)
    return typer.Exit(code)


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on. Anything but loopback needs a token.",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="TCP port (0: any free port).")
    ] = 8000,
    socket: Annotated[
        str | None,
        typer.Option(
            "--socket",
            "-s",
            metavar="PATH",
            help="Command socket of the orchestrator (default: $PYORCHESTRATE_SOCKET, "
            "else the only orchestrator running).",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", "-N", help="The orchestrator of this name (pyorchestrate list)."
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="PYORCHESTRATE_WEB_TOKEN",
            show_envvar=True,
            help="Bearer token for actions; required off loopback. Prefer the "
            "environment variable: a flag shows in the process list.",
        ),
    ] = None,
    permissions: Annotated[
        Literal["read_only", "operator"],
        typer.Option(
            help="read_only: no actions; operator: start/stop/restart and "
            "mute/unmute (needs a token)."
        ),
    ] = "read_only",
    timeout: Annotated[
        float,
        typer.Option(min=0.1, help="Seconds to wait for the orchestrator's replies."),
    ] = 5.0,
    actor: Annotated[
        str,
        typer.Option(
            help="Who holds the token, in the history: actions are recorded as "
            "ACTOR@<client address>, source web."
        ),
    ] = "token",
    notify_state: Annotated[
        str | None,
        typer.Option(
            "--notify-state",
            metavar="PATH",
            envvar="PYORCHESTRATE_NOTIFY_STATE_PATH",
            show_envvar=True,
            help="The notifier state file: the Alerts page, the notify_* metrics, "
            "mutes.",
        ),
    ] = None,
    notify_config: Annotated[
        str | None,
        typer.Option(
            "--notify-config",
            metavar="FILE",
            envvar="PYORCHESTRATE_NOTIFY_CONFIG_FILE",
            show_envvar=True,
            help="The notifier settings file (its state_path and channels), as "
            "'pyorchestrate notify --config'.",
        ),
    ] = None,
) -> None:
    """Serve the dashboard until Ctrl+C."""
    from ..core.errors import ConfigError, ControlUnavailable

    try:
        from ._server import WebServer
    except ImportError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in _EXTRA:
            raise  # a bug, not a missing extra
        raise _fail(
            f"the dashboard needs the [web] extra ({missing} is missing): "
            "pip install 'pyorchestrate[web]'",
            EXIT_USAGE,
        ) from None
    try:
        server = WebServer(
            host=host,
            port=port,
            socket_path=socket,
            name=name,
            token=token,
            permissions=permissions,
            timeout=timeout,
            actor=actor,
            notify_state=notify_state,
            notify_config=notify_config,
        )
    except ConfigError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    except ControlUnavailable as exc:  # several orchestrators, none chosen
        raise _fail(str(exc), EXIT_USAGE) from None
    try:
        server.bind()
    except OSError as exc:
        raise _fail(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", EXIT_BIND
        ) from None
    print(
        f"pyorchestrate web: serving {server.url} for the orchestrator at "
        f"{server.dashboard.link.socket_path} (Ctrl+C stops)",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it stopped on
        raise typer.Exit(EXIT_INTERRUPTED) from None


def main() -> None:
    """The ``pyorchestrate-web`` script."""
    app(prog_name="pyorchestrate-web")
