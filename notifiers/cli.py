"""``pyorchestrate notify ...``: try the alert channels and look after their state.

Added to the ``pyorchestrate`` command through the ``pyorchestrate.cli`` entry-point
group (the core never imports ``notifiers``). The channels come from the same settings
an application uses (``PYORCHESTRATE_NOTIFY_*`` variables, or a TOML file named by
``--config`` or ``PYORCHESTRATE_NOTIFY_CONFIG_FILE``). Nothing here prints a secret:
errors are redacted, settings errors name the field, never the value.

The state commands (``status``, ``outbox list|replay|purge``, ``mute``, ``unmute``,
``mutes``) work on the state file (:mod:`notifiers.state`) named by ``--state-path``
(or ``PYORCHESTRATE_NOTIFY_STATE_PATH``), else by the settings' ``state_path``. They
never create it just to read it; only ``mute`` creates it (a mute may be set before
the application starts).

Exit codes: 0 ok; 1 a channel failed, or nothing was found to act on (no state
file, no such row or mute); 2 usage or settings error (the state file cannot be
opened, a bad duration, purge without ``--yes``).
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import math
import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from .state import Mute, NotifierState, OutboxRow

__all__ = ["app", "parse_duration"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="notify",
    help="Alert channels: send a test message, and (with a state file) see their "
    "status, the outbox and mutes.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
outbox_app = typer.Typer(
    name="outbox",
    help="Alerts kept in the state file: pending (not delivered yet), failed "
    "(retried later) and dead (kept for inspection).",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(outbox_app)

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

STATE_PATH_ENV = "PYORCHESTRATE_NOTIFY_STATE_PATH"
_OFF = frozenset({"", "none", "off", "false", "no", "0"})  # as the settings read it

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


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    err_console.print(f"[bold red]Error:[/] {escape(message)}")
    return typer.Exit(code)


def _load(config: Path | None) -> Any:
    """The settings, or exit 2 with the problem (field names only, never values)."""
    from .errors import NotifierConfigError
    from .settings import load_settings

    try:
        return load_settings(config)
    except NotifierConfigError as exc:
        raise _fail(str(exc)) from None


# ---------------------------------------------------------------- durations, times
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([a-z]*)")
_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86_400.0),
    **dict.fromkeys(("w", "week", "weeks"), 604_800.0),
}


def parse_duration(text: str) -> float:
    """``"30s"``, ``"10m"``, ``"2h"``, ``"1d"``, ``"1h30m"``, ``"1.5h"`` or plain
    seconds (``"90"``) → seconds.

    Raises:
        ValueError: not a positive duration.
    """
    compact = re.sub(r"\s+", "", text.lower())
    parts = []
    position = 0
    while position < len(compact):
        match = _DURATION_PART.match(compact, position)
        if match is None:
            break
        parts.append(match.groups())
        position = match.end()
    problem = position < len(compact) or not parts
    if len(parts) > 1 and any(not unit for _, unit in parts):
        problem = True  # "1h30": 30 what?
    if not problem and all(unit in _UNITS or not unit for _, unit in parts):
        total = sum(float(number) * _UNITS.get(unit, 1.0) for number, unit in parts)
        if total > 0 and math.isfinite(total):
            return total
    raise ValueError(f"{text!r} is not a duration: use e.g. 30s, 10m, 2h, 1d or 1h30m")


def _duration_option(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _until_option(text: str) -> float:
    """An ISO date-time (local time unless it has an offset), or a time of day (the
    next one to come) → epoch seconds, in the future."""
    now = time.time()
    try:
        moment = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        try:
            clock = _dt.time.fromisoformat(text.strip())
        except ValueError:
            raise typer.BadParameter(
                f"{text!r} is not a time: use e.g. 18:30 or 2030-01-31T18:30 "
                "(local time unless an offset is given)"
            ) from None
        today = _dt.datetime.now(clock.tzinfo).date()
        moment = _dt.datetime.combine(today, clock)
        if moment.timestamp() <= now:
            moment += _dt.timedelta(days=1)
    when = moment.timestamp()
    if when <= now:
        raise typer.BadParameter(f"{text!r} is in the past")
    return when


def _age(seconds: float) -> str:
    """``3`` → ``3s``; ``125`` → ``2m 5s``; ``7500`` → ``2h 5m``; ``90000`` → ``1d 1h``."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs}s" if secs and minutes < 10 else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def _clock(when: float, now: float) -> str:
    """Local time: ``14:03:02`` today, else ``2024-11-25 14:03``."""
    moment = _dt.datetime.fromtimestamp(when)
    if moment.date() == _dt.datetime.fromtimestamp(now).date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


def _stamp(when: Any, now: float, *, never: str = "-") -> str:
    """``14:03:02 (5m ago)``; ``never`` if unknown."""
    if not isinstance(when, int | float):
        return never
    if when <= now:
        return f"{_clock(when, now)} ({_age(now - when)} ago)"
    return f"{_clock(when, now)} (in {_age(when - now)})"


def _iso(when: Any) -> str | None:
    if not isinstance(when, int | float):
        return None
    return _dt.datetime.fromtimestamp(when).astimezone().isoformat(timespec="seconds")


# ---------------------------------------------------------------- the state file
def _state_file(state_path: Path | None, config: Path | None) -> Path:
    """``--state-path`` (or its variable), else the settings' ``state_path``; exit 2
    if the state is off or the settings are wrong."""
    if state_path is None:
        settings = _load(config)
        _register_secrets(settings)
        if settings.state_path is None:
            raise _fail(
                "the state file is off in the settings (state_path = none): nothing "
                "is kept on disk; name a file with --state-path"
            )
        return Path(settings.state_path)
    if str(state_path).strip().lower() in _OFF:
        raise _fail(
            f"the state file is off ({STATE_PATH_ENV} or --state-path is "
            f"{str(state_path)!r}); name a file with --state-path"
        )
    return state_path.expanduser()


def _register_secrets(settings: Any) -> None:
    """Mask the configured secrets too (tokens, passwords, URLs and their paths),
    without building the channels: the stored texts were masked by the process
    that wrote them; this is a second net."""
    from urllib.parse import urlsplit

    from pydantic import SecretStr

    from .redact import SECRETS

    for name in settings.configured():
        for _field, value in getattr(settings, name):
            values = value if isinstance(value, list | tuple) else [value]
            for secret in (
                v.get_secret_value() for v in values if isinstance(v, SecretStr)
            ):
                SECRETS.add(secret)
                if "://" not in secret:
                    continue
                rest = secret.split("://", 1)[1]
                if re.search(r"[/?#@]", rest):  # a bare host:port is no secret
                    SECRETS.add(rest)
                try:
                    path = urlsplit(secret).path.rstrip("/")
                except ValueError:
                    continue
                if len(path) > 1:  # with its "/": "/hook" must not mask "webhook"
                    SECRETS.add(path)


@contextmanager
def _opened(path: Path, *, create: bool = False) -> Iterator[NotifierState]:
    """The state at ``path``. A missing file is exit 1 (unless ``create``: it is
    never created just to be read); one that cannot be opened is exit 2."""
    import sqlite3

    from .redact import redact
    from .state import NotifierState

    if not create and not path.exists():
        raise _fail(
            f"no state file at {str(path)!r}: nothing has been recorded there yet (a "
            "dispatcher with this state_path creates it when it starts); name "
            "another with --state-path or --config",
            EXIT_FAILED,
        )
    try:
        state = NotifierState(path)
    except (OSError, sqlite3.Error) as exc:
        raise _fail(
            f"cannot open the state file {str(path)!r}: {redact(exc)}"
        ) from None
    try:
        yield state
    except sqlite3.Error as exc:
        raise _fail(
            f"the state file {str(path)!r} failed: {redact(exc)}", EXIT_FAILED
        ) from None
    finally:
        state.close()


def _process_running(host: Any, pid: Any) -> bool | None:
    """Whether ``pid`` runs (``None``: another host, or cannot tell)."""
    import socket

    if host != socket.gethostname() or not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user
    except OSError:
        return None
    return True


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _table(*columns: str) -> Table:
    table = Table(box=None, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _states(states: Sequence[RowState] | None) -> list[str] | None:
    return None if not states else [s.value for s in states]


def _breakdown(counts: dict[str, int]) -> str:
    """``{"pending": 2, "dead": 1}`` → ``2 pending, 1 dead``."""
    parts = [f"{counts[s.value]} {s.value}" for s in RowState if counts.get(s.value)]
    return ", ".join(parts) or "empty"


def _row_error(row: OutboxRow) -> str:
    from .redact import redact

    error = row.last_error or ""
    if row.error_class and not error.startswith(row.error_class):
        error = f"{row.error_class}: {error}" if error else row.error_class
    return redact(error)


# ---------------------------------------------------------------- notify test
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
    from .base import Notification, Severity
    from .dispatcher import Dispatcher
    from .errors import NotifierConfigError, RetriesExhausted
    from .redact import redact
    from .settings import build_notifiers

    settings = _load(config)
    try:
        notifiers = build_notifiers(settings)
    except NotifierConfigError as exc:
        raise _fail(str(exc)) from None
    names = [n.name for n in notifiers]
    if channel is not None and channel not in names:
        known = ", ".join(names) or "none"
        raise _fail(f"no channel named {channel!r} is configured (configured: {known})")
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


# ---------------------------------------------------------------- notify status
_COUNTERS = ("sent", "failed", "retried", "suppressed", "queued")


@app.command("status")
def _status_command(
    config: ConfigOpt = None,
    state_path: StatePathOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per channel: sent, failed, retried, suppressed, queued, outbox, last success/error.

    The counters are those the dispatchers saved (every second or so while they run);
    the note under the table says when, and whether the process still runs.
    """
    from .redact import redact

    path = _state_file(state_path, config)
    with _opened(path) as state:
        now = time.time()
        saved = state.load_stats()
        counts = state.counts()
        evicted = state.evicted()
        names = sorted(set(saved) | set(counts))
        evicted_by = {name: state.evicted(name) for name in names}
        mutes = state.mutes()
    channels: list[dict[str, Any]] = []
    for name in names:
        stats = dict(saved.get(name, {}))
        if stats.get("last_error") is not None:
            stats["last_error"] = redact(stats["last_error"])
        outbox = {s.value: counts.get(name, {}).get(s.value, 0) for s in RowState}
        channels.append(
            {
                "channel": name,
                **{key: stats.get(key) for key in _COUNTERS},
                **{k: v for k, v in stats.items() if k not in _COUNTERS},
                "outbox": outbox,
                "evicted": evicted_by[name],
                "running": _process_running(stats.get("host"), stats.get("pid"))
                if stats
                else None,
            }
        )
    totals = {s.value: sum(c["outbox"][s.value] for c in channels) for s in RowState}
    if as_json:
        _print_json(
            {
                "state_path": str(path),
                "now": now,
                "channels": channels,
                "outbox": totals,
                "evicted": evicted,
                "mutes": [_mute_data(m, now) for m in mutes],
            }
        )
        return
    if not channels:
        console.print(
            f"No channel has saved its counters in {escape(str(path))} yet, and the "
            "outbox is empty."
        )
    else:
        _print_status(channels, now)
    console.print(
        f"outbox: {_breakdown(totals)}"
        + (f"; {evicted} evicted (outbox_size reached)" if evicted else "")
    )
    if mutes:
        console.print(
            f"mutes: {len(mutes)} active (pyorchestrate notify mutes)", style="yellow"
        )
    console.print(f"state file: {escape(str(path))}", style="dim")


def _print_status(channels: list[dict[str, Any]], now: float) -> None:
    table = _table(
        "CHANNEL",
        "SENT",
        "FAILED",
        "RETRIED",
        "SUPPRESSED",
        "QUEUED",
        "OUTBOX",
        "LAST SUCCESS",
        "LAST ERROR",
    )
    for row in channels:
        cells = ["-" if row[k] is None else str(row[k]) for k in _COUNTERS]
        outbox = _breakdown(row["outbox"])
        if row["evicted"]:
            outbox += f", {row['evicted']} evicted"
        failing = bool(row.get("failed")) or bool(row["outbox"]["dead"])
        saved = row.get("saved_at") is not None
        table.add_row(
            Text(row["channel"], style="bold"),
            *cells[:1],
            Text(cells[1], style="red" if row.get("failed") else ""),
            *cells[2:],
            Text(outbox, style="yellow" if outbox != "empty" else "dim"),
            _stamp(row.get("last_success"), now, never="never" if saved else "-"),
            Text(row.get("last_error") or "", style="red" if failing else ""),
        )
    console.print(table)
    savers: dict[tuple[Any, Any], float] = {}
    for row in channels:
        if isinstance(row.get("saved_at"), int | float):
            key = (row.get("host"), row.get("pid"))
            savers[key] = max(savers.get(key, 0.0), row["saved_at"])
    for (host, pid), saved_at in sorted(savers.items(), key=lambda i: -i[1]):
        running = _process_running(host, pid)
        if running is None:
            note, style = f"on {host} (cannot tell whether it runs)", "dim"
        elif running:
            note, style = "running", "green"
        else:
            note, style = "not running: these are its last counters", "yellow"
        console.print(
            f"saved {_age(now - saved_at)} ago by pid {pid} ({escape(note)})",
            style=style,
        )


# ---------------------------------------------------------------- notify outbox
ChannelFilterOpt = Annotated[
    list[str] | None,
    typer.Option("--channel", help="Only this channel (may be repeated)."),
]
StateFilterOpt = Annotated[
    list[RowState] | None,
    typer.Option("--state", help="Only rows in this state (may be repeated)."),
]
IdsArg = Annotated[
    list[int] | None,
    typer.Argument(help="Row ids (see outbox list).", show_default=False),
]


@outbox_app.command("list")
def _outbox_list_command(
    channel: ChannelFilterOpt = None,
    state_filter: StateFilterOpt = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Rows at most (oldest first).")
    ] = 100,
    config: ConfigOpt = None,
    state_path: StatePathOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the outbox, oldest first: id, channel, state, attempts, title, error."""
    from .redact import redact

    path = _state_file(state_path, config)
    states = _states(state_filter)
    with _opened(path) as state:
        rows = state.rows(channels=channel or None, states=states, limit=limit)
        counts = state.counts()
    total = sum(
        n
        for name, by_state in counts.items()
        if not channel or name in channel
        for s, n in by_state.items()
        if states is None or s in states
    )
    if as_json:
        data = []
        for row in rows:
            summary = row.summary()
            summary["last_error"] = _row_error(row) or None
            if summary.get("title") is not None:
                summary["title"] = redact(summary["title"])
            data.append(summary)
        _print_json(data)
        return
    if not rows:
        console.print(
            "No row matches." if channel or states else "The outbox is empty."
        )
        return
    now = time.time()
    table = _table("ID", "CHANNEL", "STATE", "ATTEMPTS", "CREATED", "TITLE", "ERROR")
    styles = {"pending": "cyan", "failed": "yellow", "dead": "bold red"}
    for row in rows:
        title = row.summary().get("title") or ""
        table.add_row(
            str(row.id),
            Text(row.channel),
            Text(row.state.value, style=styles.get(row.state.value, "")),
            str(row.attempts),
            _stamp(row.created, now),
            Text(redact(title)),
            Text(_row_error(row), style="red"),
        )
    console.print(table)
    if total > len(rows):
        console.print(
            f"showing the oldest {len(rows)} of {total} rows (--limit)", style="dim"
        )


@outbox_app.command("replay")
def _outbox_replay_command(
    ids: IdsArg = None,
    channel: ChannelFilterOpt = None,
    all_states: Annotated[
        bool,
        typer.Option(
            "--all-states",
            help="Also the dead rows (a permanent error, or maybe delivered: they "
            "may be sent twice). Rows named by id are replayed whether failed or dead.",
        ),
    ] = False,
    config: ConfigOpt = None,
    state_path: StatePathOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send failed rows again now (named by id, or all of them, or of --channel)."""
    path = _state_file(state_path, config)
    states = ["failed", "dead"] if ids or all_states else ["failed"]
    with _opened(path) as state:
        chosen = state.rows(ids=ids or None, channels=channel or None, states=states)
        replayed = (
            state.replay(ids=[r.id for r in chosen], states=states) if chosen else 0
        )
        skipped: list[int] = []
        found: dict[int, str] = {}
        if ids:
            found = {r.id: r.state.value for r in state.rows(ids=ids)}
            skipped = [i for i in ids if i not in {r.id for r in chosen}]
    by_state = {s: sum(1 for r in chosen if r.state.value == s) for s in states}
    if as_json:
        _print_json({"replayed": replayed, "by_state": by_state, "skipped": skipped})
    elif replayed:
        console.print(
            f"{replayed} row(s) marked for replay ({_breakdown(by_state)}). A running "
            "dispatcher with their channel sends them within about a second; "
            "otherwise the next one to start does."
        )
    else:
        what = "failed or dead" if ids or all_states else "failed"
        console.print(f"No {what} rows to replay.")
    for row_id in skipped:
        why = (
            "not in the outbox"
            if row_id not in found
            else "pending (already on its way)"
            if found[row_id] == "pending"
            else "not of --channel"
        )
        err_console.print(f"[yellow]skipped[/] row {row_id}: {why}")
    if ids and not replayed:
        raise typer.Exit(EXIT_FAILED)


@outbox_app.command("purge")
def _outbox_purge_command(
    ids: IdsArg = None,
    channel: ChannelFilterOpt = None,
    state_filter: StateFilterOpt = None,
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than",
            parser=_duration_option,
            metavar="DURATION",
            help="Only rows created longer ago than this (30s, 10m, 2h, 1d).",
            show_default=False,
        ),
    ] = None,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Delete without naming the ids."),
    ] = False,
    config: ConfigOpt = None,
    state_path: StatePathOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete rows: those named by id, or (with --yes) all that match the filters.

    Without ids and without --yes nothing is deleted (exit 2, saying how many rows
    would go). A pending row deleted is never sent.
    """
    path = _state_file(state_path, config)
    states = _states(state_filter)
    cutoff = None if older_than is None else time.time() - older_than
    with _opened(path) as state:
        if not ids and not yes:
            matching = [
                r
                for r in state.rows(channels=channel or None, states=states)
                if cutoff is None or r.created < cutoff
            ]
            counts: dict[str, int] = {}
            for row in matching:
                counts[row.state.value] = counts.get(row.state.value, 0) + 1
            scope = "" if channel or states or cutoff else " (no filter: all of it)"
            raise _fail(
                f"refusing to delete from the outbox without --yes{scope}: that "
                f"would be {len(matching)} row(s) ({_breakdown(counts)}). Name the ids "
                "(pyorchestrate notify outbox list), or add --yes."
            )
        deleted = state.purge(
            ids=ids or None, channels=channel or None, states=states, older_than=cutoff
        )
    if as_json:
        _print_json({"deleted": deleted})
    else:
        console.print(f"{deleted} row(s) deleted from the outbox.")
    if ids and deleted < len(set(ids)):
        err_console.print(
            f"[yellow]{len(set(ids)) - deleted} of the ids named were not deleted[/] "
            "(not in the outbox, or not matching the filters)"
        )
        if not deleted:
            raise typer.Exit(EXIT_FAILED)


# ---------------------------------------------------------------- notify mute
AgentOpt = Annotated[
    str | None,
    typer.Option(
        "--agent", "-a", help="Agents by name (a glob: 'worker-*').", show_default=False
    ),
]
EventOpt = Annotated[
    str | None,
    typer.Option(
        "--event",
        "-e",
        help="An event, e.g. agent_error (globs work).",
        show_default=False,
    ),
]
ChannelOpt = Annotated[
    str | None,
    typer.Option(
        "--channel", help="A channel, e.g. telegram (globs work).", show_default=False
    ),
]


def _target(
    agent: str | None, event: str | None, channel: str | None
) -> tuple[Any, str]:
    given = [
        (kind, value)
        for kind, value in (("agent", agent), ("event", event), ("channel", channel))
        if value is not None
    ]
    if len(given) != 1:
        raise _fail("give exactly one of --agent, --event or --channel")
    kind, value = given[0]
    if not value.strip():
        raise _fail(f"--{kind} must not be empty")
    return kind, value


def _mute_data(mute: Mute, now: float) -> dict[str, Any]:
    return {
        "kind": mute.kind,
        "value": mute.value,
        "until": mute.until,
        "until_iso": _iso(mute.until),
        "left": None if mute.until is None else max(0.0, mute.until - now),
        "created": mute.created,
        "reason": mute.reason,
    }


@app.command("mute")
def _mute_command(
    agent: AgentOpt = None,
    event: EventOpt = None,
    channel: ChannelOpt = None,
    duration: Annotated[
        float | None,
        typer.Option(
            "--for",
            parser=_duration_option,
            metavar="DURATION",
            help="How long: 30s, 10m, 2h, 1d, 1h30m.",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        float | None,
        typer.Option(
            "--until",
            parser=_until_option,
            metavar="TIME",
            help="Or until then: 18:30 (the next one) or 2030-01-31T18:30 (local "
            "time unless an offset is given).",
            show_default=False,
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (shown by mutes).")
    ] = None,
    config: ConfigOpt = None,
    state_path: StatePathOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Hold back the alerts of an agent, of an event, or to a channel, for a while.

    Muting the same again replaces its expiry. A running dispatcher sees it within
    about a second and counts the alerts held back as suppressed.
    """
    kind, value = _target(agent, event, channel)
    if (duration is None) == (until is None):
        raise _fail("give exactly one of --for DURATION or --until TIME")
    path = _state_file(state_path, config)
    created = not path.exists()
    with _opened(path, create=True) as state:
        mute = state.mute(kind, value, until=until, duration=duration, reason=reason)
    now = time.time()
    if as_json:
        _print_json(_mute_data(mute, now))
        return
    assert mute.until is not None
    console.print(
        f"Muted {kind} {escape(repr(value))} for {_age(mute.until - now + 0.5)} "
        f"(until {_clock(mute.until, now)}). A running dispatcher holds its alerts "
        "back within about a second; they are counted as suppressed."
    )
    if created:
        console.print(f"(created the state file {escape(str(path))})", style="dim")


@app.command("unmute")
def _unmute_command(
    agent: AgentOpt = None,
    event: EventOpt = None,
    channel: ChannelOpt = None,
    config: ConfigOpt = None,
    state_path: StatePathOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """End a mute (the value exactly as it was muted, glob included)."""
    kind, value = _target(agent, event, channel)
    path = _state_file(state_path, config)
    with _opened(path) as state:
        ended = state.unmute(kind, value)
    if as_json:
        _print_json({"kind": kind, "value": value, "unmuted": ended})
    elif ended:
        console.print(f"Unmuted {kind} {escape(repr(value))}.")
    else:
        err_console.print(
            f"No mute for {kind} {escape(repr(value))} "
            "(see pyorchestrate notify mutes)."
        )
    if not ended:
        raise typer.Exit(EXIT_FAILED)


@app.command("mutes")
def _mutes_command(
    include_expired: Annotated[
        bool, typer.Option("--all", help="Also the expired ones.")
    ] = False,
    config: ConfigOpt = None,
    state_path: StatePathOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the mutes in force, with the time left."""
    path = _state_file(state_path, config)
    with _opened(path) as state:
        mutes = state.mutes(include_expired=include_expired)
    now = time.time()
    if as_json:
        _print_json([_mute_data(m, now) for m in mutes])
        return
    if not mutes:
        console.print("Nothing is muted.")
        return
    table = _table("KIND", "VALUE", "UNTIL", "LEFT", "SINCE", "REASON")
    for mute in mutes:
        if mute.until is None:
            until, left = "unmuted", "-"
        elif mute.until <= now:
            until, left = _clock(mute.until, now), "expired"
        else:
            until, left = _clock(mute.until, now), _age(mute.until - now + 0.5)
        table.add_row(
            mute.kind,
            Text(mute.value, style="bold"),
            until,
            left,
            _stamp(mute.created, now),
            Text(mute.reason or ""),
        )
    console.print(table)
