"""``pyorchestrate notify test``: send a test message on each configured channel."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ._common import (
    EXIT_FAILED,
    ConfigOpt,
    JsonOpt,
    TimeoutOpt,
    app,
    console,
    fail,
    load_settings_or_exit,
)

__all__: list[str] = []


@app.command("test")
def _test_command(
    channel: Annotated[
        str | None,
        typer.Argument(help="Only this channel (default: every configured one)."),
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Send a test message on each configured channel; print each channel's result."""
    from ..base import Notification, Severity
    from ..dispatcher import Dispatcher
    from ..errors import NotifierConfigError, RetriesExhausted
    from ..redact import redact
    from ..settings import build_notifiers

    settings = load_settings_or_exit(config)
    try:
        notifiers = build_notifiers(settings)
    except NotifierConfigError as exc:
        raise fail(str(exc)) from None
    names = [n.name for n in notifiers]
    if channel is not None and channel not in names:
        known = ", ".join(names) or "none"
        raise fail(f"no channel named {channel!r} is configured (configured: {known})")
    chosen = [channel] if channel is not None else names
    rows: list[dict[str, Any]] = []
    with Dispatcher(
        notifiers, policy=settings.retry, name="notifiers-cli"
    ) as dispatcher:
        for name in chosen:
            note = Notification(
                title="pyorchestrate test message",
                body=f"Channel {name!r} works: sent by `pyorchestrate notify test`.",
                severity=Severity.INFO,
                event="test",
            )
            started = time.monotonic()
            try:
                result = dispatcher.send_now(note, name, timeout=timeout)
            except RetriesExhausted as exc:
                rows.append(
                    {
                        "channel": name,
                        "ok": False,
                        "status": "failed",
                        "attempts": exc.attempts,
                        "seconds": round(time.monotonic() - started, 3),
                        "error": redact(str(exc)),
                    }
                )
                continue
            except Exception as exc:  # timeout or a channel bug: report, go on
                rows.append(
                    {
                        "channel": name,
                        "ok": False,
                        "status": "error",
                        "attempts": None,
                        "seconds": round(time.monotonic() - started, 3),
                        "error": redact(f"{type(exc).__name__}: {exc}"),
                    }
                )
                continue
            rows.append(
                {
                    "channel": name,
                    "ok": result.ok,
                    "status": result.status.value,
                    "attempts": result.attempts,
                    "seconds": round(result.duration, 3),
                    "error": result.error,
                }
            )
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        table = Table(box=None, header_style="bold")
        for column in ("CHANNEL", "RESULT", "ATTEMPTS", "TIME", "ERROR"):
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(
                row["channel"],
                Text(row["status"], style="green" if row["ok"] else "bold red"),
                "-" if row["attempts"] is None else str(row["attempts"]),
                f"{row['seconds']:.2f}s",
                Text(row["error"] or "", style="red"),
            )
        console.print(table)
    if not all(row["ok"] for row in rows):
        raise typer.Exit(EXIT_FAILED)
