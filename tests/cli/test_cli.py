"""The ``pyorchestrate`` commands run in this process, against a real orchestrator.

Each test talks to a real DAEMON orchestrator (``Fleet``: thread agents forever,
boom and quick) over its Unix socket. Tables are read like ``supervisorctl status``;
``--json`` prints only ``data`` on success and the whole reply payload on an error.
Exit codes: 0 ok, 1 the command failed, 2 usage, 3 cannot connect.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import pyorchestrate
from pyorchestrate import Orchestrator, RunMode
from pyorchestrate.cli._app import COMMANDS, build_parser
from pyorchestrate.core.control.client import ControlClient
from pyorchestrate.testing import wait_until
from tests.agents import agent

from ._support import FAST, Fleet
from .conftest import Invoke, MakeFleet

PS_HEADER = re.compile(r"NAME\s+STATE\s+PID\s+UPTIME\s+RESTARTS\s+(EXIT\s+)?LAST ERROR")
HISTORY_HEADER = re.compile(r"SEQ\s+TIME\s+CATEGORY\s+EVENT\s+AGENT\s+SEV")
REMOTE_COMMANDS = {
    "ps",
    "status",
    "start",
    "stop",
    "restart",
    "dependencies",
    "commands",
    "stats",
    "history",
    "history-stats",
    "shutdown",
    "logs",
    "reload",
    "ping",
}


def _ok(result: Any) -> None:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)


def _json(result: Any) -> Any:
    _ok(result)
    return json.loads(result.stdout)


def _rows(table: str) -> dict[str, list[str]]:
    """Table lines by their first cell (the agent's name), split on whitespace."""
    return {
        line.split()[0]: line.split() for line in table.splitlines() if line.split()
    }


def _started(fleet: Fleet, name: str) -> list[Any]:
    return fleet.orchestrator.events(event_name="agent_started", agent=name)


def _is_error_payload(data: Any, code: int) -> bool:
    return (
        isinstance(data, dict)
        and data.get("status") == "error"
        and data.get("code") == code
        and isinstance(data.get("error"), str)
        and data.get("protocol_version") == "1.0"
        and "request_id" in data
    )


# ---------------------------------------------------------------- the commands


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {opt for action in parser._actions for opt in action.option_strings}


def test_every_issue_command_exists_with_socket_json_and_version() -> None:
    # "notify" is a group from the pyorchestrate.cli entry points (tests/cli/
    # test_cli_notify.py), not one of the core's commands.
    # run and check read a fleet file; they talk to no running orchestrator.
    assert set(COMMANDS) == REMOTE_COMMANDS | {"create", "list", "run", "check"}
    parser = build_parser(["notify"])
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(COMMANDS) | {"notify"}
    for name in COMMANDS:
        options = _options(sub.choices[name])
        assert {"--json", "--version"} <= options, name
        if name == "list":
            assert "--timeout" in options
        elif name not in ("create", "run", "check"):
            assert {"--socket", "--name", "--timeout"} <= options, name


def test_ps_table_reads_like_supervisorctl(fleet: Fleet, cli: Invoke) -> None:
    result = cli("ps", "--socket", fleet.socket)
    _ok(result)
    lines = result.stdout.splitlines()
    assert lines[0].strip() == (
        "3 agents; running 1 of max_workers 5 (worker slots in use); "
        "queued 0 (waiting for a slot)"
    )
    assert PS_HEADER.search(lines[1]), lines[1]
    rows = _rows(result.stdout)
    assert rows["forever"][:3] == ["forever", "READY", str(os.getpid())]
    assert re.fullmatch(r"\d+:\d\d:\d\d", rows["forever"][3])  # uptime
    assert rows["forever"][4] == "0"  # restarts
    assert rows["boom"][:5] == ["boom", "TERMINATED", "-", "-", "0"]
    assert rows["boom"][-2:] == ["ValueError:", "boom"]  # last error
    assert rows["quick"][:2] == ["quick", "TERMINATED"]
    assert "boom" not in " ".join(rows["quick"][2:])  # no error of another agent
    assert result.stderr == ""


def test_ps_json_prints_only_data(fleet: Fleet, cli: Invoke) -> None:
    data = _json(cli("ps", "--socket", fleet.socket, "--json"))
    assert set(data) == {"agents", "running_count", "max_workers", "waiting_count"}
    states = {a["name"]: a["lifecycle_state"] for a in data["agents"]}
    assert states == {"forever": "READY", "boom": "TERMINATED", "quick": "TERMINATED"}
    boom = next(a for a in data["agents"] if a["name"] == "boom")
    assert boom["last_error"] == "ValueError: boom"
    assert data["running_count"] == 1


def test_status_of_the_orchestrator(fleet: Fleet, cli: Invoke) -> None:
    table = cli("status", "--socket", fleet.socket)
    _ok(table)
    rows = _rows(table.stdout)
    assert rows["name"] == ["name", "cli-test"]
    assert rows["total_agents"] == ["total_agents", "3"]
    assert rows["running_agents"] == ["running_agents", "1"]
    assert rows["command_socket_path"] == ["command_socket_path", fleet.socket]
    data = _json(cli("status", "--socket", fleet.socket, "--json"))
    assert data["total_agents"] == 3
    assert data["run_mode"] == "daemon"
    assert data["pid"] == os.getpid()
    assert "status" not in data and "protocol_version" not in data


def test_status_of_one_agent(fleet: Fleet, cli: Invoke) -> None:
    table = cli("status", "boom", "--socket", fleet.socket)
    _ok(table)
    rows = _rows(table.stdout)
    assert rows["name"] == ["name", "boom"]
    assert rows["lifecycle_state"] == ["lifecycle_state", "TERMINATED"]
    assert rows["last_error"] == ["last_error", "ValueError:", "boom"]
    data = _json(cli("status", "quick", "--socket", fleet.socket, "--json"))
    assert data["name"] == "quick"
    assert data["dependencies"] == ["forever"]
    assert data["lifecycle_state"] == "TERMINATED"


@pytest.mark.parametrize("command", ["status", "start", "stop", "restart"])
def test_an_unknown_agent_is_an_error_exit_1(
    fleet: Fleet, cli: Invoke, command: str
) -> None:
    table = cli(command, "nope", "--socket", fleet.socket)
    assert table.exit_code == 1, table.stdout
    assert table.stdout == ""
    assert table.stderr.startswith("Error:"), table.stderr
    assert "'nope'" in table.stderr
    as_json = cli(command, "nope", "--socket", fleet.socket, "--json")
    assert as_json.exit_code == 1
    payload = json.loads(as_json.stdout)  # the full payload, not just data
    assert _is_error_payload(payload, 404), payload
    assert payload["error_type"] == "AgentNotFound"
    assert "'nope'" in payload["error"]


def test_start_of_a_running_agent_is_a_conflict_exit_1(
    fleet: Fleet, cli: Invoke
) -> None:
    table = cli("start", "forever", "--socket", fleet.socket)
    assert table.exit_code == 1
    assert table.stderr.startswith("Error:"), table.stderr
    assert "forever" in table.stderr
    as_json = cli("start", "forever", "--socket", fleet.socket, "--json")
    assert as_json.exit_code == 1
    payload = json.loads(as_json.stdout)
    assert _is_error_payload(payload, 409), payload
    assert fleet.status("forever")["starts"] == 1  # nothing was started


def test_start_of_a_terminated_agent(fleet: Fleet, cli: Invoke) -> None:
    data = _json(cli("start", "quick", "--socket", fleet.socket, "--json"))
    assert set(data) == {"message", "status", "reason"}
    assert data["status"] == "started"
    assert "quick" in data["message"]
    assert wait_until(lambda: len(_started(fleet, "quick")) == 2)
    fleet.wait_state("quick", "TERMINATED")
    table = cli("start", "quick", "--socket", fleet.socket)
    _ok(table)
    assert table.stdout.startswith("quick: started"), table.stdout
    assert fleet.status("quick")["starts"] == 3


def test_stop_prints_the_servers_message(fleet: Fleet, cli: Invoke) -> None:
    data = _json(cli("stop", "forever", "--socket", fleet.socket, "--json"))
    assert set(data) == {"message"}
    assert "forever" in data["message"]
    fleet.wait_state("forever", "TERMINATED")
    _ok(cli("start", "forever", "--socket", fleet.socket))
    fleet.wait_state("forever", "READY")
    table = cli("stop", "forever", "--socket", fleet.socket)
    _ok(table)
    # The message from data, not a generic "Operation completed" (old bug).
    assert table.stdout.strip() == data["message"]
    fleet.wait_state("forever", "TERMINATED")
    rows = _rows(cli("ps", "--socket", fleet.socket).stdout)
    assert rows["forever"][:3] == ["forever", "TERMINATED", "-"]


def test_restart_starts_a_new_generation(fleet: Fleet, cli: Invoke) -> None:
    data = _json(cli("restart", "forever", "--socket", fleet.socket, "--json"))
    assert set(data) == {"message"}
    assert "forever" in data["message"]
    assert wait_until(lambda: len(_started(fleet, "forever")) == 2)
    fleet.wait_state("forever", "READY")
    assert fleet.status("forever")["restarts"] == 1
    table = cli("restart", "forever", "--socket", fleet.socket)
    _ok(table)
    assert table.stdout.strip() == data["message"]
    fleet.wait_state("forever", "READY")
    rows = _rows(cli("ps", "--socket", fleet.socket).stdout)
    assert rows["forever"][1] == "READY"
    assert rows["forever"][4] == "2"  # RESTARTS


def test_dependencies(fleet: Fleet, cli: Invoke) -> None:
    table = cli("dependencies", "--socket", fleet.socket)
    _ok(table)
    assert table.stdout.strip() == "quick <- forever"
    data = _json(cli("dependencies", "--socket", fleet.socket, "--json"))
    assert data == {"dependencies": {"quick": ["forever"]}}


def test_commands_lists_every_allowed_command(fleet: Fleet, cli: Invoke) -> None:
    table = cli("commands", "--socket", fleet.socket)
    _ok(table)
    listed = {line.split()[0] for line in table.stdout.splitlines() if line.strip()}
    assert listed >= REMOTE_COMMANDS
    assert "not allowed" not in table.stdout
    data = _json(cli("commands", "--socket", fleet.socket, "--json"))
    assert data["allowed_commands"] == sorted(data["allowed_commands"])
    assert set(data["allowed_commands"]) >= REMOTE_COMMANDS
    assert data["restricted_commands"] == []
    assert data["restrictions_active"] is False


def test_commands_shows_what_a_preset_forbids(
    make_fleet: MakeFleet, cli: Invoke
) -> None:
    fleet = make_fleet(agents=False, allowed_commands="read_only")
    table = cli("commands", "--socket", fleet.socket)
    _ok(table)
    forbidden = table.stdout.split("not allowed here:")[1]
    assert {"shutdown", "start", "stop", "restart"} <= {
        name.strip() for name in forbidden.split(",")
    }
    data = _json(cli("commands", "--socket", fleet.socket, "--json"))
    assert "shutdown" in data["restricted_commands"]
    assert "shutdown" not in data["allowed_commands"]
    assert data["restrictions_active"] is True


FORBIDDEN_CALLS = [
    ["ps"],
    ["status"],
    ["status", "any"],
    ["start", "any"],
    ["stop", "any"],
    ["restart", "any"],
    ["dependencies"],
    ["stats"],
    ["history"],
    ["history-stats"],
    ["shutdown"],
]


def test_a_forbidden_command_fails_with_exit_1_in_both_modes(
    make_fleet: MakeFleet, cli: Invoke
) -> None:
    """With --json, every command prints the whole error payload (403) on stdout."""
    fleet = make_fleet(agents=False, allowed_commands={"commands"})
    wrong = []
    for call in FORBIDDEN_CALLS:
        once = ["--once"] if call == ["stats"] else []
        table = cli(*call, *once, "--socket", fleet.socket)
        if table.exit_code != 1 or not table.stderr.startswith("Error:"):
            wrong.append((call, "table", table.exit_code, table.stdout, table.stderr))
        elif "not allowed" not in table.stderr:
            wrong.append((call, "table message", table.stderr))
        as_json = cli(*call, "--socket", fleet.socket, "--json")
        try:
            payload = json.loads(as_json.stdout)
        except json.JSONDecodeError:
            payload = None
        if as_json.exit_code != 1 or not _is_error_payload(payload, 403):
            wrong.append(
                (call, "json", as_json.exit_code, as_json.stdout, as_json.stderr)
            )
    assert wrong == [], wrong
    assert not fleet.orchestrator.is_shutting_down


def test_stats_once(fleet: Fleet, cli: Invoke) -> None:
    table = cli("stats", "--once", "--socket", fleet.socket)
    _ok(table)
    lines = table.stdout.splitlines()
    assert f"orchestrator pid {os.getpid()}" in lines[0]
    header = next(line for line in lines if "NAME" in line)
    assert re.search(
        r"NAME\s+STATE\s+PID\s+CPU %\s+MEM MB\s+MEM %\s+THREADS\s+UPTIME", header
    )
    rows = _rows(table.stdout)
    assert rows["forever"][:3] == ["forever", "READY", str(os.getpid())]
    assert rows["boom"][:3] == ["boom", "TERMINATED", "-"]


@pytest.mark.parametrize("extra", [[], ["--once"]], ids=["json", "once-json"])
def test_stats_json_prints_only_data(
    fleet: Fleet, cli: Invoke, extra: list[str]
) -> None:
    data = _json(cli("stats", *extra, "--socket", fleet.socket, "--json"))
    assert set(data) == {"timestamp", "orchestrator", "agents"}
    assert data["orchestrator"]["pid"] == os.getpid()
    assert isinstance(data["orchestrator"]["memory_mb"], float)
    agents = {a["name"]: a for a in data["agents"]}
    assert set(agents) == {"forever", "boom", "quick"}
    assert agents["forever"]["alive"] is True
    assert agents["forever"]["pid"] == os.getpid()
    assert agents["boom"]["pid"] is None
    assert agents["boom"]["uptime"] == "N/A"


# ---------------------------------------------------------------- history


def _history(cli: Invoke, fleet: Fleet, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = _json(
        cli("history", *args, "--socket", fleet.socket, "--json")
    )
    assert data["count"] == len(data["events"])
    return data


def test_history_json_prints_only_data(fleet: Fleet, cli: Invoke) -> None:
    data = _history(cli, fleet)
    assert set(data) == {"events", "count", "filters", "capacity_info"}
    assert data["filters"] == {"last": 50}
    expected = [r.seq for r in fleet.orchestrator.events(50)]
    assert [e["seq"] for e in data["events"]] == expected
    assert data["capacity_info"]["last_seq"] == expected[-1]


def test_history_last(fleet: Fleet, cli: Invoke) -> None:
    data = _history(cli, fleet, "--last", "2")
    assert data["filters"] == {"last": 2}
    assert [e["seq"] for e in data["events"]] == [
        r.seq for r in fleet.orchestrator.events(2)
    ]
    assert data["count"] == 2


def test_history_agent(fleet: Fleet, cli: Invoke) -> None:
    data = _history(cli, fleet, "--agent", "boom")
    assert data["filters"] == {"last": 50, "agent": "boom"}
    assert {e["agent"] for e in data["events"]} == {"boom"}
    names = [e["event_name"] for e in data["events"]]
    assert "agent_error" in names and "agent_terminated" in names


def test_history_event_filters_by_event_name(fleet: Fleet, cli: Invoke) -> None:
    """The old `--type` was silently dropped (§11.11): --event must really filter."""
    data = _history(cli, fleet, "--event", "agent_started")
    assert data["filters"] == {"last": 50, "event_name": "agent_started"}
    assert {e["event_name"] for e in data["events"]} == {"agent_started"}
    assert sorted(e["agent"] for e in data["events"]) == ["boom", "forever", "quick"]
    table = cli("history", "--event", "agent_error", "--socket", fleet.socket)
    _ok(table)
    lines = [line for line in table.stdout.splitlines() if line.strip()]
    assert HISTORY_HEADER.search(lines[0]), lines[0]
    assert len(lines) == 2, table.stdout  # the header and boom's one error
    cells = lines[1].split()
    assert cells[2:6] == ["orchestrator", "agent_error", "boom", "ERROR"]
    assert lines[1].rstrip().endswith("ValueError: boom")


def test_history_type_is_not_an_option(fleet: Fleet, cli: Invoke) -> None:
    result = cli("history", "--type", "agent_error", "--socket", fleet.socket)
    assert result.exit_code == 2
    assert "--type" in result.stderr


def test_history_filters_combine(fleet: Fleet, cli: Invoke) -> None:
    fleet.orchestrator.start_agent("quick")
    fleet.wait_state("quick", "TERMINATED")
    data = _history(
        cli, fleet, "--last", "1", "--agent", "quick", "--event", "agent_started"
    )
    assert data["filters"] == {
        "last": 1,
        "agent": "quick",
        "event_name": "agent_started",
    }
    [event] = data["events"]
    newest = fleet.orchestrator.events(1, agent="quick", event_name="agent_started")
    assert event["seq"] == newest[0].seq
    assert event["data"]["generation_id"] == "2"


def test_history_after_seq(fleet: Fleet, cli: Invoke) -> None:
    middle = fleet.orchestrator.events(100)[4].seq
    data = _history(cli, fleet, "--after-seq", str(middle))
    assert data["filters"] == {"last": 50, "after_seq": middle}
    seqs = [e["seq"] for e in data["events"]]
    assert seqs and min(seqs) == middle + 1
    assert seqs == [r.seq for r in fleet.orchestrator.events(100, after_seq=middle)]
    table = cli("history", "--after-seq", str(middle), "--socket", fleet.socket)
    _ok(table)
    shown = [int(line.split()[0]) for line in table.stdout.splitlines()[1:]]
    assert shown == seqs


def test_history_follow_misses_no_event_before_it_subscribed(
    fleet: Fleet, cli: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--follow prints the backlog, then subscribes after the last seq it printed.

    Events recorded in between (here: quick runs again) must still be printed: the
    subscription asks for them with ``after_seq``. The stream is ended after 1 s
    without events so the command returns.
    """
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
    result = cli("history", "--follow", "--last", "1", "--socket", fleet.socket)
    _ok(result)
    generation_2 = [
        r.seq
        for r in fleet.orchestrator.events(agent="quick")
        if r.data.get("generation_id") == "2"
    ]
    shown = [
        int(cells[0])
        for cells in map(str.split, result.stdout.splitlines())
        if cells and cells[0].isdigit()
    ]
    assert generation_2 and set(generation_2) <= set(shown), result.stdout


def test_history_stats(fleet: Fleet, cli: Invoke) -> None:
    everything = Counter(r.event_name for r in fleet.orchestrator.events(5000))
    data = _json(cli("history-stats", "--socket", fleet.socket, "--json"))
    assert data["statistics"]["by_type"] == dict(everything)
    assert data["agent_filter"] is None
    assert data["capacity_info"]["stored_events"] == sum(everything.values())
    table = cli("history-stats", "--socket", fleet.socket)
    _ok(table)
    counts = {
        line.split()[0]: int(line.split()[1])
        for line in table.stdout.splitlines()
        if len(line.split()) == 2 and line.split()[1].isdigit()
    }
    assert counts == dict(everything)
    stored = sum(everything.values())
    assert f"stored {stored}/5000, evicted 0" in table.stdout


def test_history_stats_for_one_agent(fleet: Fleet, cli: Invoke) -> None:
    boom = Counter(r.event_name for r in fleet.orchestrator.events(5000, agent="boom"))
    data = _json(
        cli("history-stats", "--agent", "boom", "--socket", fleet.socket, "--json")
    )
    assert data["agent_filter"] == "boom"
    assert data["statistics"]["by_type"] == dict(boom)
    assert data["statistics"]["by_type"]["agent_error"] == 1


# ---------------------------------------------------------------- shutdown


def test_shutdown_makes_join_return(fleet: Fleet, cli: Invoke) -> None:
    result = cli("shutdown", "--socket", fleet.socket)
    _ok(result)
    assert result.stdout.strip() == "Orchestrator shutdown initiated"
    assert fleet.join_returned(15)
    assert fleet.join_error is None
    assert fleet.joined == []  # no survivors
    assert not Path(fleet.socket).exists()
    gone = cli("ps", "--socket", fleet.socket)
    assert gone.exit_code == 3


def test_shutdown_json(fleet: Fleet, cli: Invoke) -> None:
    data = _json(cli("shutdown", "--socket", fleet.socket, "--json"))
    assert data == {"message": "Orchestrator shutdown initiated"}
    assert fleet.join_returned(15)


def test_shutdown_is_honoured_in_stop_on_empty_mode(
    make_fleet: MakeFleet, cli: Invoke
) -> None:
    fleet = make_fleet(run_mode=RunMode.STOP_ON_EMPTY)  # forever never ends by itself
    _ok(cli("shutdown", "--socket", fleet.socket))
    assert fleet.join_returned(15)
    assert fleet.joined == []


# ---------------------------------------------------------------- version, usage


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["-V"],
        *([name, "--version"] for name in sorted(REMOTE_COMMANDS | {"create"})),
        ["ps", "--socket", "/nonexistent/o.sock", "--version"],
    ],
    ids=lambda args: " ".join(args),
)
def test_version(cli: Invoke, args: list[str]) -> None:
    result = cli(*args)
    _ok(result)
    assert result.stdout == f"pyorchestrate {pyorchestrate.__version__}\n"


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["bogus"],
        ["status", "a", "b"],
        ["start"],
        ["history", "--last", "-1"],
        ["history", "--last", "many"],
        ["history", "--after-seq", "x"],
        ["ps", "--timeout", "0"],
        ["stats", "--interval", "0"],
        ["ps", "--no-such-option"],
        ["create"],
    ],
    ids=lambda args: " ".join(args) or "nothing",
)
def test_usage_errors_exit_2(cli: Invoke, short_tmp: Path, args: list[str]) -> None:
    # A socket that does not exist: a usage error must be found before connecting.
    result = cli(*args, env={"PYORCHESTRATE_SOCKET": str(short_tmp / "none.sock")})
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "usage:" in result.stdout + result.stderr
    assert "Cannot connect" not in result.stderr


# ---------------------------------------------------------------- the socket

UNREACHABLE_CALLS = [
    ["ps"],
    ["ps", "--json"],
    ["status"],
    ["status", "forever"],
    ["start", "forever"],
    ["stop", "forever"],
    ["restart", "forever"],
    ["dependencies"],
    ["commands"],
    ["stats", "--once"],
    ["stats"],
    ["history"],
    ["history", "--follow"],
    ["history-stats"],
    ["shutdown", "--json"],
]


@pytest.mark.parametrize("call", UNREACHABLE_CALLS, ids=" ".join)
def test_unreachable_socket_exits_3_naming_the_path(
    cli: Invoke, short_tmp: Path, call: list[str]
) -> None:
    path = short_tmp / "missing.sock"
    result = cli(*call, "--socket", path)
    assert result.exit_code == 3, (result.stdout, result.stderr)
    assert result.stderr.startswith("Error: Cannot connect"), result.stderr
    assert str(path) in result.stderr
    assert "--socket" in result.stderr  # the hint says how to point elsewhere
    assert result.stdout == ""


def test_a_stale_socket_file_exits_3(cli: Invoke, short_tmp: Path) -> None:
    path = short_tmp / "stale.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.close()  # the file stays; nothing listens
    try:
        assert path.exists()
        result = cli("ps", "--socket", path)
    finally:
        path.unlink()
    assert result.exit_code == 3
    assert str(path) in result.stderr


def test_the_default_socket_path_is_named_when_unreachable(
    cli: Invoke, short_tmp: Path
) -> None:
    env = {"XDG_RUNTIME_DIR": str(short_tmp), "PYORCHESTRATE_SOCKET": None}
    result = cli("ps", env=env)
    assert result.exit_code == 3
    assert str(short_tmp / "pyorchestrate" / "Orchestrator.sock") in result.stderr


def test_a_reply_that_never_comes_exits_1(cli: Invoke, short_tmp: Path) -> None:
    path = short_tmp / "silent.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
        listener.listen(1)  # connections queue up; nobody ever answers
        result = cli("ps", "--socket", path, "--timeout", "0.2")
    finally:
        listener.close()
        path.unlink()
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("Error:")
    assert "no reply" in result.stderr and str(path) in result.stderr


def test_socket_from_the_environment(fleet: Fleet, cli: Invoke) -> None:
    result = cli("ps", "--json", env={"PYORCHESTRATE_SOCKET": fleet.socket})
    assert {a["name"] for a in _json(result)["agents"]} == {"forever", "boom", "quick"}


def test_socket_option_wins_over_the_environment(
    fleet: Fleet, cli: Invoke, short_tmp: Path
) -> None:
    env = {"PYORCHESTRATE_SOCKET": str(short_tmp / "missing.sock")}
    _ok(cli("ps", "--socket", fleet.socket, env=env))
    assert cli("ps", env=env).exit_code == 3


def test_the_only_socket_in_the_private_directory_is_found(
    make_fleet: MakeFleet,
    cli: Invoke,
    short_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No --socket, no variable: the default one, or the only one in the directory."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_tmp))
    fleet = make_fleet(socket_name=None, name="solo")
    assert fleet.socket == str(short_tmp / "pyorchestrate" / "solo.sock")
    data = _json(cli("status", "--json", env={"PYORCHESTRATE_SOCKET": None}))
    assert data["name"] == "solo"


def test_the_command_interface_answers_once_start_returned(
    cli: Invoke, short_tmp: Path
) -> None:
    """docs/protocol.md: the socket is bound by start() (which raises if it is taken).

    An application that calls start() and then does its own work (no join() yet)
    must be reachable from the CLI.
    """
    path = short_tmp / "o.sock"
    orchestrator = Orchestrator(
        "early",
        Orchestrator.Config(
            run_mode=RunMode.DAEMON, command_socket_path=str(path), **FAST
        ),
    )
    orchestrator.register_agent(agent("forever", "thread"), "forever")
    try:
        orchestrator.start()
        result = cli("ps", "--socket", path, "--json")
    finally:
        orchestrator.shutdown(timeout=2.0)
    assert result.exit_code == 0, result.stderr
    assert [a["name"] for a in json.loads(result.stdout)["agents"]] == ["forever"]
