"""``pyorchestrate notify mute|unmute|mutes``: hold back alerts for a while."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from ._common import (
    EXIT_FAILED,
    ConfigOpt,
    JsonOpt,
    StatePathOpt,
    app,
    console,
    err_console,
    fail,
)
from ._durations import duration_option, until_option
from ._format import age, clock_text, mute_data, new_table, print_json, stamp
from ._statefile import opened_state, state_file

__all__: list[str] = []

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
        raise fail("give exactly one of --agent, --event or --channel")
    kind, value = given[0]
    if not value.strip():
        raise fail(f"--{kind} must not be empty")
    return kind, value


@app.command("mute")
def _mute_command(
    agent: AgentOpt = None,
    event: EventOpt = None,
    channel: ChannelOpt = None,
    duration: Annotated[
        float | None,
        typer.Option(
            "--for",
            parser=duration_option,
            metavar="DURATION",
            help="How long: 30s, 10m, 2h, 1d, 1h30m.",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        float | None,
        typer.Option(
            "--until",
            parser=until_option,
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
        raise fail("give exactly one of --for DURATION or --until TIME")
    path = state_file(state_path, config)
    created = not path.exists()
    with opened_state(path, create=True) as state:
        mute = state.mute(kind, value, until=until, duration=duration, reason=reason)
    now = time.time()
    if as_json:
        print_json(mute_data(mute, now))
        return
    assert mute.until is not None
    console.print(
        f"Muted {kind} {escape(repr(value))} for {age(mute.until - now + 0.5)} "
        f"(until {clock_text(mute.until, now)}). A running dispatcher holds its alerts "
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
    path = state_file(state_path, config)
    with opened_state(path) as state:
        ended = state.unmute(kind, value)
    if as_json:
        print_json({"kind": kind, "value": value, "unmuted": ended})
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
    path = state_file(state_path, config)
    with opened_state(path) as state:
        mutes = state.mutes(include_expired=include_expired)
    now = time.time()
    if as_json:
        print_json([mute_data(m, now) for m in mutes])
        return
    if not mutes:
        console.print("Nothing is muted.")
        return
    table = new_table("KIND", "VALUE", "UNTIL", "LEFT", "SINCE", "REASON")
    for mute in mutes:
        if mute.until is None:
            until, left = "unmuted", "-"
        elif mute.until <= now:
            until, left = clock_text(mute.until, now), "expired"
        else:
            until, left = clock_text(mute.until, now), age(mute.until - now + 0.5)
        table.add_row(
            mute.kind,
            Text(mute.value, style="bold"),
            until,
            left,
            stamp(mute.created, now),
            Text(mute.reason or ""),
        )
    console.print(table)
