"""``pyorchestrate notify outbox list|replay|purge``: the alerts kept in the state file."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.text import Text

from ._common import (
    EXIT_FAILED,
    ConfigOpt,
    JsonOpt,
    RowState,
    StatePathOpt,
    app,
    console,
    err_console,
    fail,
)
from ._durations import duration_option
from ._format import breakdown, new_table, print_json, row_error, stamp, state_values
from ._statefile import opened_state, state_file

__all__ = ["outbox_app"]

outbox_app = typer.Typer(
    name="outbox",
    help="Alerts kept in the state file: pending (not delivered yet), failed "
    "(retried later) and dead (kept for inspection).",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(outbox_app)

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
    from ..redact import redact

    path = state_file(state_path, config)
    states = state_values(state_filter)
    with opened_state(path) as state:
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
            summary["last_error"] = row_error(row) or None
            if summary.get("title") is not None:
                summary["title"] = redact(summary["title"])
            data.append(summary)
        print_json(data)
        return
    if not rows:
        console.print(
            "No row matches." if channel or states else "The outbox is empty."
        )
        return
    now = time.time()
    table = new_table("ID", "CHANNEL", "STATE", "ATTEMPTS", "CREATED", "TITLE", "ERROR")
    styles = {"pending": "cyan", "failed": "yellow", "dead": "bold red"}
    for row in rows:
        title = row.summary().get("title") or ""
        table.add_row(
            str(row.id),
            Text(row.channel),
            Text(row.state.value, style=styles.get(row.state.value, "")),
            str(row.attempts),
            stamp(row.created, now),
            Text(redact(title)),
            Text(row_error(row), style="red"),
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
    path = state_file(state_path, config)
    states = ["failed", "dead"] if ids or all_states else ["failed"]
    with opened_state(path) as state:
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
        print_json({"replayed": replayed, "by_state": by_state, "skipped": skipped})
    elif replayed:
        console.print(
            f"{replayed} row(s) marked for replay ({breakdown(by_state)}). A running "
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
            parser=duration_option,
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
    path = state_file(state_path, config)
    states = state_values(state_filter)
    cutoff = None if older_than is None else time.time() - older_than
    with opened_state(path) as state:
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
            raise fail(
                f"refusing to delete from the outbox without --yes{scope}: that "
                f"would be {len(matching)} row(s) ({breakdown(counts)}). Name the ids "
                "(pyorchestrate notify outbox list), or add --yes."
            )
        deleted = state.purge(
            ids=ids or None, channels=channel or None, states=states, older_than=cutoff
        )
    if as_json:
        print_json({"deleted": deleted})
    else:
        console.print(f"{deleted} row(s) deleted from the outbox.")
    if ids and deleted < len(set(ids)):
        err_console.print(
            f"[yellow]{len(set(ids)) - deleted} of the ids named were not deleted[/] "
            "(not in the outbox, or not matching the filters)"
        )
        if not deleted:
            raise typer.Exit(EXIT_FAILED)
