"""The CLI as a real process: the ``pyorchestrate`` script and ``python -m pyorchestrate``.

The orchestrator runs in the test process (``Fleet``); the CLI runs as a child with
its output on a pipe, or on a pseudo-terminal for the live ``stats`` display. The
streaming commands (``history --follow``, ``stats``) run until SIGINT, as a user's
Ctrl+C, and must then exit 0 without a traceback.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pyorchestrate
from pyorchestrate.testing import wait_until

from ._support import ENTRY_POINTS, SCRIPT, CliProcess, Fleet, cli_env, run_cli

pytestmark = pytest.mark.slow

PS_HEADER = re.compile(r"NAME\s+STATE\s+PID\s+UPTIME\s+RESTARTS\s+(EXIT\s+)?LAST ERROR")
HISTORY_HEADER = re.compile(r"SEQ\s+TIME\s+CATEGORY\s+EVENT\s+AGENT\s+SEV")


def _event_row(event: str, name: str) -> re.Pattern[str]:
    """A history row of ``event`` for ``name``; group 1 is its seq."""
    return re.compile(rf"^\s*(\d+)\s+\S+\s+orchestrator\s+{event}\s+{name}\b", re.M)


def _seqs(pattern: re.Pattern[str], text: str) -> list[int]:
    return [int(m.group(1)) for m in pattern.finditer(text)]


def test_the_script_is_installed() -> None:
    assert SCRIPT.is_file(), f"no console script at {SCRIPT}"


@pytest.fixture(params=sorted(ENTRY_POINTS))
def entry(request: pytest.FixtureRequest) -> list[str]:
    """``pyorchestrate`` (the console script) or ``python -m pyorchestrate``."""
    return ENTRY_POINTS[str(request.param)]


def test_ps(fleet: Fleet, entry: list[str]) -> None:
    result = run_cli(entry, "ps", "--socket", fleet.socket)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].strip() == (
        "3 agents; running 1 of max_workers 5 (worker slots in use); "
        "queued 0 (waiting for a slot)"
    )
    assert PS_HEADER.search(lines[1]), result.stdout
    rows = {line.split()[0]: line.split() for line in lines[2:] if line.strip()}
    assert set(rows) == {"forever", "boom", "quick"}
    assert rows["forever"][1] == "READY"
    assert rows["boom"][1] == "TERMINATED"
    assert rows["boom"][-2:] == ["ValueError:", "boom"]
    assert result.stderr == ""


def test_ps_on_a_terminal_is_a_coloured_table(fleet: Fleet) -> None:
    """A terminal gets rich's table (rich is loaded for it alone), states coloured."""
    argv = [*ENTRY_POINTS["script"], "ps", "--socket", fleet.socket]
    with CliProcess(argv, tty=True, env=cli_env()) as ps:
        assert ps.proc.wait(15) == 0
        out = ps.drain()
    assert PS_HEADER.search(re.sub(r"\x1b\[[0-9;]*m", "", out)), out
    assert "\x1b[32mREADY" in out  # READY in green
    assert "3 agents; running 1 of max_workers 5" in out


def test_ps_json(fleet: Fleet, entry: list[str]) -> None:
    result = run_cli(
        entry, "ps", "--json", env=cli_env(PYORCHESTRATE_SOCKET=fleet.socket)
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {a["name"]: a["lifecycle_state"] for a in data["agents"]} == {
        "forever": "READY",
        "boom": "TERMINATED",
        "quick": "TERMINATED",
    }


def test_exit_code_1_on_an_error_reply(fleet: Fleet, entry: list[str]) -> None:
    result = run_cli(entry, "status", "nope", "--socket", fleet.socket)
    assert result.returncode == 1
    assert result.stderr.startswith("Error:") and "'nope'" in result.stderr
    assert "Traceback" not in result.stderr
    conflict = run_cli(entry, "start", "forever", "--socket", fleet.socket, "--json")
    assert conflict.returncode == 1
    assert json.loads(conflict.stdout)["code"] == 409


def test_exit_code_3_when_nothing_answers(short_tmp: Path, entry: list[str]) -> None:
    path = short_tmp / "missing.sock"
    result = run_cli(entry, "ps", "--socket", path)
    assert result.returncode == 3
    assert str(path) in result.stderr
    assert "Cannot connect" in result.stderr
    assert "Traceback" not in result.stderr


def test_exit_code_2_on_usage_errors(entry: list[str]) -> None:
    for args in (["bogus"], ["start"], ["history", "--last", "-1"]):
        result = run_cli(entry, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr


def test_version(entry: list[str]) -> None:
    for args in (["--version"], ["ps", "--version"]):
        result = run_cli(entry, *args)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"pyorchestrate {pyorchestrate.__version__}\n"


def test_shutdown_as_a_process(fleet: Fleet) -> None:
    result = run_cli(ENTRY_POINTS["script"], "shutdown", "--socket", fleet.socket)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Orchestrator shutdown initiated"
    assert fleet.join_returned(15)
    assert not Path(fleet.socket).exists()


# ---------------------------------------------------------------- streaming


def _follow(fleet: Fleet, *args: str) -> CliProcess:
    argv = [*ENTRY_POINTS["script"], "history", "--follow", *args]
    return CliProcess([*argv, "--socket", fleet.socket], env=cli_env())


def _start_until_shown(
    fleet: Fleet, follow: CliProcess, shown: Callable[[str], bool], *names: str
) -> None:
    """Start ``names`` (each TERMINATED first) until ``shown(output)``.

    The follower subscribes a moment after printing its backlog; events in between
    are covered by test_history_follow_misses_no_event_before_it_subscribed (in
    test_cli.py), so here a start is simply repeated until one is streamed.
    """
    for _ in range(20):
        for name in names:
            fleet.wait_state(name, "TERMINATED")
            fleet.orchestrator.start_agent(name)  # through the API
        for name in names:
            fleet.wait_state(name, "TERMINATED")
        if follow.wait_for(shown, 1.0):
            return
    raise AssertionError(f"never shown:\n{follow.text}")


def test_history_follow_prints_new_events_as_they_happen(fleet: Fleet) -> None:
    last_seq = fleet.orchestrator.history.last_seq
    with _follow(fleet, "--last", "1") as follow:
        text = follow.read_until(lambda out: bool(HISTORY_HEADER.search(out)))
        started = _event_row("agent_started", "quick")
        assert _seqs(started, text) == []
        _start_until_shown(
            fleet, follow, lambda out: bool(_seqs(started, out)), "quick"
        )
        assert min(_seqs(started, follow.text)) > last_seq
        # Another CLI process causes the next ones.
        restarted = run_cli(
            ENTRY_POINTS["script"], "start", "boom", "--socket", fleet.socket
        )
        assert restarted.returncode == 0, restarted.stderr
        error = _event_row("agent_error", "boom")
        text = follow.read_until(lambda out: bool(_seqs(error, out)))
        assert "ValueError: boom" in text
        code, out, err = follow.interrupt()
    assert code == 0, (out, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    # Every event once, oldest first.
    seqs = [int(m.group(1)) for m in re.finditer(r"^\s*(\d+)\s", out, re.M)]
    assert seqs == sorted(set(seqs)), out
    assert seqs[0] == last_seq


def test_history_follow_filters_and_json(fleet: Fleet) -> None:
    last_seq = fleet.orchestrator.history.last_seq
    with _follow(fleet, "--last", "0", "--agent", "quick", "--json") as follow:
        # boom's events are filtered out; quick's are printed as JSON objects.
        _start_until_shown(
            fleet, follow, lambda out: '"agent_terminated"' in out, "boom", "quick"
        )
        code, out, err = follow.interrupt()
    assert code == 0, (out, err)
    assert "Traceback" not in err, err
    records = _json_objects(out)
    assert {r["agent"] for r in records} == {"quick"}, out
    assert all(r["seq"] > last_seq for r in records)
    assert {"agent_started", "agent_terminated"} <= {r["event_name"] for r in records}


def _json_objects(text: str) -> list[dict[str, Any]]:
    """Parse concatenated, indented JSON objects."""
    decoder = json.JSONDecoder()
    objects, index = [], 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index == len(text):
            return objects
        value, index = decoder.raw_decode(text, index)
        objects.append(value)


def test_history_follow_prints_one_header(fleet: Fleet) -> None:
    """New events continue the table under one header, as ``tail -f`` would."""
    with _follow(fleet, "--last", "1") as follow:
        follow.read_until(lambda out: bool(HISTORY_HEADER.search(out)))
        started = _event_row("agent_started", "quick")
        _start_until_shown(
            fleet, follow, lambda out: bool(_seqs(started, out)), "quick"
        )
        terminated = _event_row("agent_terminated", "quick")
        follow.read_until(lambda out: len(_seqs(terminated, out)) >= 1)
        code, out, err = follow.interrupt()
    assert code == 0, err
    headers = [line for line in out.splitlines() if HISTORY_HEADER.search(line)]
    assert len(headers) == 1, out


def test_history_follow_ends_when_the_orchestrator_shuts_down(fleet: Fleet) -> None:
    with _follow(fleet, "--last", "1") as follow:
        started = _event_row("agent_started", "quick")
        _start_until_shown(
            fleet, follow, lambda out: bool(_seqs(started, out)), "quick"
        )
        fleet.close()
        code = follow.proc.wait(15)
        err = follow.stderr()
    assert code == 0, err
    assert "Traceback" not in err, err


def _requests_answered(fleet: Fleet) -> Callable[[], int]:
    server = fleet.orchestrator.command_server
    assert server is not None
    return lambda: server.requests


def test_stats_live_refreshes_until_ctrl_c(fleet: Fleet) -> None:
    argv = [
        *ENTRY_POINTS["script"],
        "stats",
        "--interval",
        "0.2",
        "--socket",
        fleet.socket,
    ]
    with CliProcess(argv, tty=True, env=cli_env()) as live:
        # A terminal gets the table redrawn: wait for two frames.
        live.read_until(lambda out: out.count("THREADS") >= 2 and "forever" in out)
        code, out, err = live.interrupt()
    assert code == 0, (out, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "Traceback" not in out, out


def test_stats_live_on_a_pipe_exits_0_on_ctrl_c(fleet: Fleet) -> None:
    """Not a terminal: no redraws, and Ctrl+C still ends it cleanly."""
    argv = [
        *ENTRY_POINTS["module"],
        "stats",
        "--interval",
        "0.2",
        "--socket",
        fleet.socket,
    ]
    requests = _requests_answered(fleet)
    before = requests()
    with CliProcess(argv, env=cli_env()) as live:
        # Nothing is drawn before the end: count its requests to know it is looping.
        assert wait_until(lambda: requests() >= before + 2, 15)
        code, out, err = live.interrupt()
    assert code == 0, (out, err)
    assert "Traceback" not in err, err
    assert "forever" in out  # the last frame is printed on the way out


def test_a_killed_follower_does_not_disturb_the_server(fleet: Fleet) -> None:
    with _follow(fleet) as follow:
        follow.read_until(lambda out: bool(HISTORY_HEADER.search(out)))
        follow.proc.kill()
        follow.proc.wait(10)
    fleet.orchestrator.start_agent("quick")  # an event for the dropped subscriber
    fleet.wait_state("quick", "TERMINATED")
    result = run_cli(ENTRY_POINTS["script"], "ps", "--socket", fleet.socket)
    assert result.returncode == 0, result.stderr


def test_ctrl_c_while_waiting_for_a_reply_exits_130_without_a_traceback(
    short_tmp: Path,
) -> None:
    """A server that accepts and never answers: Ctrl+C ends the wait quietly."""
    path = short_tmp / "mute.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)
        argv = [*ENTRY_POINTS["script"], "ps", "--socket", str(path), "--timeout", "60"]
        with CliProcess(argv, env=cli_env()) as waiting:
            conn, _ = server.accept()  # it has connected and sent its request
            with conn:
                assert wait_until(lambda: conn.recv(65536, socket.MSG_PEEK), 15)
                code, out, err = waiting.interrupt()
    path.unlink()
    assert code == 130, (out, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
