"""The CLI in pipes and beside several orchestrators (issue 13, item 5).

* Through a pipe, tables do not wrap: one line per agent or event, cells whole.
* ``list`` shows every socket in the private directory, stale ones marked.
* ``--name`` picks one orchestrator; with several running and no choice, the error
  lists them and exits 2.
* ``history --follow`` prints only new events unless asked to replay.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyorchestrate import Orchestrator
from pyorchestrate.core.agent import OneShotThreadAgent
from pyorchestrate.core.control.client import ControlClient
from pyorchestrate.testing import wait_until

from ._support import ENTRY_POINTS, Fleet, cli_env, run_cli
from .conftest import Invoke, MakeFleet

AGENTS = 100
FILLER = "the disk /data is full and the retention job did not run " * 3


def _message(name: str) -> str:
    return f"{name}: {FILLER}\nsee the log of {name} for more"


class LongErrorAgent(OneShotThreadAgent):
    """Fails at once with a long, two-line message that starts with its name."""

    def task(self) -> Any:
        raise ValueError(_message(self.name))


def _names() -> list[str]:
    return [f"agent-{i:03d}" for i in range(AGENTS)]


@pytest.fixture
def crowd(make_fleet: MakeFleet) -> Fleet:
    """An orchestrator whose 100 agents all failed with long error messages."""

    def register(orchestrator: Orchestrator) -> None:
        for name in _names():
            orchestrator.register_agent(LongErrorAgent, name)

    fleet = make_fleet(agents=False, register=register)
    assert wait_until(
        lambda: all(
            fleet.status(n)["lifecycle_state"] == "TERMINATED" for n in _names()
        ),
        60,
    ), "the agents did not all end"
    return fleet


def _columns_line_up(header: str, rows: list[str], column: str) -> None:
    """``column`` starts at the same offset in the header and every row."""
    at = header.index(column)
    for row in rows:
        assert row[at - 2 : at] == "  " and row[at] != " ", (column, row)


def test_ps_through_a_pipe_prints_one_whole_line_per_agent(crowd: Fleet) -> None:
    # COLUMNS=80: what a pipe gets by default; the lines must not fold at it.
    env = cli_env(COLUMNS="80")
    result = run_cli(ENTRY_POINTS["script"], "ps", "--socket", crowd.socket, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{AGENTS} agents; running 0 of max_workers 5")
    header, rows = lines[1], lines[2:]
    assert header.split() == [
        *("NAME", "STATE", "PID", "UPTIME", "RESTARTS", "EXIT", "LAST"),
        "ERROR",
    ]
    assert [row.split()[0] for row in rows] == _names()  # one line each, no more
    for name, row in zip(_names(), rows, strict=True):
        assert row.split()[1] == "TERMINATED"
        # The whole message on the line, its line break shown as \n.
        expected = "ValueError: " + _message(name).replace("\n", "\\n")
        assert row.endswith(expected), row
    for column in ("STATE", "PID", "EXIT", "LAST ERROR"):
        _columns_line_up(header, rows, column)
    assert "\x1b[" not in result.stdout  # no colour codes in a pipe


def test_history_through_a_pipe_prints_one_line_per_event(crowd: Fleet) -> None:
    result = run_cli(
        ENTRY_POINTS["script"],
        *("history", "--event", "agent_error", "--last", "1000"),
        *("--socket", crowd.socket),
        env=cli_env(COLUMNS="80"),
    )
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == [
        "SEQ",
        "TIME",
        "CATEGORY",
        "EVENT",
        "AGENT",
        "SEV",
        "DETAILS",
    ]
    assert len(rows) == AGENTS
    agents = [row.split()[4] for row in rows]
    assert sorted(agents) == _names()
    for agent, row in zip(agents, rows, strict=True):
        assert row.split()[3] == "agent_error"
        assert _message(agent).replace("\n", "\\n") in row, row
    _columns_line_up(header, rows, "DETAILS")


# ---------------------------------------------------------------- several orchestrators


@pytest.fixture
def private_dir(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private socket directory of this test's own (the CLI's default place)."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_tmp))
    monkeypatch.delenv("PYORCHESTRATE_SOCKET", raising=False)
    private = short_tmp / "pyorchestrate"
    yield private


@pytest.fixture
def stale(private_dir: Path) -> Iterator[Path]:
    """A socket file that nobody listens on (its orchestrator was killed)."""
    private_dir.mkdir(mode=0o700, exist_ok=True)
    path = private_dir / "gone.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture
def two(private_dir: Path, make_fleet: MakeFleet) -> tuple[Fleet, Fleet]:
    """Orchestrators "alpha" and "beta", both on their default sockets."""
    alpha = make_fleet(None, name="alpha")
    beta = make_fleet(None, name="beta", max_workers=3)
    assert alpha.socket == str(private_dir / "alpha.sock")
    assert beta.socket == str(private_dir / "beta.sock")
    return alpha, beta


def test_list_shows_every_orchestrator_and_marks_a_stale_socket(
    two: tuple[Fleet, Fleet], stale: Path, cli: Invoke
) -> None:
    result = cli("list", "--json")
    assert result.exit_code == 0, result.stderr
    found = {item["name"]: item for item in json.loads(result.stdout)["orchestrators"]}
    assert set(found) == {"alpha", "beta", "gone"}
    for name, fleet in zip(("alpha", "beta"), two, strict=True):
        assert found[name]["state"] == "live"
        assert found[name]["socket"] == fleet.socket
        assert found[name]["pid"] == os.getpid()
        assert found[name]["agents"] == 3
        assert isinstance(found[name]["uptime"], float)
    assert found["gone"]["state"] == "stale"
    assert found["gone"]["pid"] is None

    table = cli("list")
    assert table.exit_code == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["NAME", "PID", "AGENTS", "UPTIME", "STATE", "SOCKET"]
    cells = {row.split()[0]: row.split() for row in rows}
    assert cells["alpha"][1:3] == [str(os.getpid()), "3"]
    assert re.fullmatch(r"\d+:\d\d:\d\d", cells["alpha"][3])
    assert cells["alpha"][4:] == ["live", two[0].socket]
    assert cells["gone"][1:] == ["-", "-", "-", "stale", str(stale)]


def test_name_picks_one_orchestrator(two: tuple[Fleet, Fleet], cli: Invoke) -> None:
    for name, workers in (("alpha", 5), ("beta", 3)):
        result = cli("status", "--name", name, "--json")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["name"] == name
        ps = cli("ps", "--name", name)
        assert ps.exit_code == 0, ps.stderr
        assert f"running 1 of max_workers {workers}" in ps.stdout.splitlines()[0]


def test_without_a_choice_the_error_lists_the_running_orchestrators(
    two: tuple[Fleet, Fleet], stale: Path, cli: Invoke
) -> None:
    result = cli("ps")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "2 orchestrators are running" in result.stderr
    for fleet, name in zip(two, ("alpha", "beta"), strict=True):
        assert re.search(
            rf"--name {name}\s+\({re.escape(fleet.socket)}\)", result.stderr
        )
    assert "gone" not in result.stderr  # a stale socket is no candidate


def test_the_only_live_orchestrator_is_used_beside_a_stale_socket(
    private_dir: Path, stale: Path, make_fleet: MakeFleet, cli: Invoke
) -> None:
    make_fleet(None, name="alone")
    result = cli("status", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["name"] == "alone"


def test_an_unknown_name_names_the_socket_tried(
    two: tuple[Fleet, Fleet], private_dir: Path, cli: Invoke
) -> None:
    result = cli("ps", "--name", "nobody")
    assert result.exit_code == 3
    assert str(private_dir / "nobody.sock") in result.stderr
    assert "pyorchestrate list" in result.stderr


def test_socket_and_name_together_is_a_usage_error(fleet: Fleet, cli: Invoke) -> None:
    result = cli("ps", "--socket", fleet.socket, "--name", "cli-test")
    assert result.exit_code == 2
    assert "not both" in result.stderr


# ---------------------------------------------------------------- history --follow


def _follow(
    fleet: Fleet, cli: Invoke, monkeypatch: pytest.MonkeyPatch, *args: str
) -> list[int]:
    """Run ``history --follow *args`` while ``quick`` runs a second time; the seqs
    it printed. The stream ends after 1 s without events so the command returns."""
    original = ControlClient.subscribe

    def subscribe(self: ControlClient, **filters: Any) -> Any:
        fleet.orchestrator.start_agent("quick")
        assert wait_until(
            lambda: (
                len(
                    fleet.orchestrator.events(
                        agent="quick", event_name="agent_terminated"
                    )
                )
                == 2
            )
        )
        return original(self, **filters, idle_timeout=1.0)

    monkeypatch.setattr(ControlClient, "subscribe", subscribe)
    result = cli("history", "--follow", "--socket", fleet.socket, *args)
    assert result.exit_code == 0, result.stderr
    return _seqs(result.stdout)


def _seqs(output: str) -> list[int]:
    """The seqs of the events in history output, heartbeats left out (a heartbeat
    carries the seq of the record before it, and they come at any time)."""
    header, *rows = output.splitlines()
    assert header.split()[:2] == ["SEQ", "TIME"]
    return [
        int(cells[0]) for cells in map(str.split, rows) if cells[3] != "agent_heartbeat"
    ]


def test_follow_prints_only_new_events(
    fleet: Fleet, cli: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = fleet.orchestrator.history.last_seq
    shown = _follow(fleet, cli, monkeypatch)
    new = [r.seq for r in fleet.orchestrator.events(5000) if r.seq > before]
    assert shown and min(shown) > before
    assert set(new) <= set(shown)


@pytest.mark.parametrize(
    ("args", "last"),
    [(("--replay",), "50"), (("--last", "3"), "3")],
    ids=["replay", "last"],
)
def test_follow_replays_past_events_when_asked(
    fleet: Fleet,
    cli: Invoke,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    last: str,
) -> None:
    # What `history --last N` shows now comes first, then the new events. (Only
    # agent_terminated: no heartbeat can come in between and shift the window.)
    only = ("--event", "agent_terminated")
    backlog = cli("history", "--last", last, *only, "--socket", fleet.socket)
    past = _seqs(backlog.stdout)
    before = fleet.orchestrator.history.last_seq
    assert past and max(past) <= before
    shown = _follow(fleet, cli, monkeypatch, *args, *only)
    assert shown[: len(past)] == past
    assert shown[len(past) :] and min(shown[len(past) :]) > before


def test_the_list_of_choices_is_not_folded_on_a_pipe(two: tuple[Fleet, Fleet]) -> None:
    result = run_cli(ENTRY_POINTS["script"], "ps", env=cli_env(COLUMNS="40"))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "Error: 2 orchestrators are running; choose one with --name NAME or "
        "--socket PATH:"
    )
    assert lines[1:] == [
        f"  --name alpha  ({two[0].socket})",
        f"  --name beta   ({two[1].socket})",
    ]
