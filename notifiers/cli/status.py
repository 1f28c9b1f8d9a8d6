"""``pyorchestrate notify status``: per channel counters, outbox and last success/error."""

from __future__ import annotations

import time
from typing import Any

from rich.markup import escape
from rich.text import Text

from ._common import ConfigOpt, JsonOpt, RowState, StatePathOpt, app, console
from ._format import age, breakdown, mute_data, new_table, print_json, stamp
from ._statefile import opened_state, process_running, state_file

__all__: list[str] = []

_COUNTERS = ("sent", "failed", "retried", "suppressed", "queued")


@app.command("status")
def _status_command(
    config: ConfigOpt = None,
    state_path: StatePathOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per channel: sent, failed, retried, suppressed, queued, outbox, last success/error;
    then the mutes and the alerts waiting for an ack before they are escalated.

    The counters are those the dispatchers saved (every second or so while they run);
    the note under the table says when, and whether the process still runs.
    """
    from ..redact import redact

    path = state_file(state_path, config)
    with opened_state(path) as state:
        now = time.time()
        saved = state.load_stats()
        counts = state.counts()
        evicted = state.evicted()
        names = sorted(set(saved) | set(counts))
        evicted_by = {name: state.evicted(name) for name in names}
        mutes = state.mutes()
        waiting = state.chatops.waiting()
    escalations = [
        {
            "alert": e.alert,
            "title": redact(title),
            "channel": e.channel,
            "to": e.target,
            "due": e.due,
        }
        for e, title in waiting
    ]
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
                "running": process_running(stats.get("host"), stats.get("pid"))
                if stats
                else None,
            }
        )
    totals = {s.value: sum(c["outbox"][s.value] for c in channels) for s in RowState}
    if as_json:
        print_json(
            {
                "state_path": str(path),
                "now": now,
                "channels": channels,
                "outbox": totals,
                "evicted": evicted,
                "mutes": [mute_data(m, now) for m in mutes],
                "escalations": escalations,
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
        f"outbox: {breakdown(totals)}"
        + (f"; {evicted} evicted (outbox_size reached)" if evicted else "")
    )
    if mutes:
        console.print(
            f"mutes: {len(mutes)} active (pyorchestrate notify mutes)", style="yellow"
        )
    if waiting:
        soonest, title = waiting[0]
        when = soonest.due - now
        due = f"in {age(when)}" if when > 0 else "now"
        console.print(
            f"escalations: {len(waiting)} waiting for an ack on Telegram; next "
            f"{due}: {escape(redact(title))} to {escape(soonest.target)}",
            style="yellow",
        )
    console.print(f"state file: {escape(str(path))}", style="dim")


def _print_status(channels: list[dict[str, Any]], now: float) -> None:
    table = new_table(
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
        outbox = breakdown(row["outbox"])
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
            stamp(row.get("last_success"), now, never="never" if saved else "-"),
            Text(row.get("last_error") or "", style="red" if failing else ""),
        )
    console.print(table)
    savers: dict[tuple[Any, Any], float] = {}
    for row in channels:
        if isinstance(row.get("saved_at"), int | float):
            key = (row.get("host"), row.get("pid"))
            savers[key] = max(savers.get(key, 0.0), row["saved_at"])
    for (host, pid), saved_at in sorted(savers.items(), key=lambda i: -i[1]):
        running = process_running(host, pid)
        if running is None:
            note, style = f"on {host} (cannot tell whether it runs)", "dim"
        elif running:
            note, style = "running", "green"
        else:
            note, style = "not running: these are its last counters", "yellow"
        console.print(
            f"saved {age(now - saved_at)} ago by pid {pid} ({escape(note)})",
            style=style,
        )
