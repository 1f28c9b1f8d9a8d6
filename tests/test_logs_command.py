"""``logs``: an agent's output files read over the command socket (issue 15, item 3).

Real files (written by the orchestrator's own rotating writer, ``LogFile``, or by a
real process agent through the orchestrator's capture), a real Unix socket, real
orchestrators, and the CLI in a subprocess. No timing is asserted: waits are bounded
and only fail a test when what they wait for never happens.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyorchestrate import Orchestrator
from pyorchestrate.core.agent import LoopingProcessAgent
from pyorchestrate.core.control.client import ControlClient
from pyorchestrate.core.control.logfiles import LogReader, parse_stored_line
from pyorchestrate.core.control.logquery import LogQuery, parse_since
from pyorchestrate.core.control.permissions import PERMISSION_PRESETS
from pyorchestrate.core.control.server import CommandServer
from pyorchestrate.core.errors import (
    AgentNotFound,
    CommandFailed,
    CommandForbidden,
    Conflict,
    UnknownCommand,
)
from pyorchestrate.core.utilities.outputfiles import (
    LogFile,
    format_stamp,
    log_files,
    log_path,
    parse_line,
)
from pyorchestrate.testing import wait_until
from tests.agents import agent
from tests.cli._support import Fleet, cli_env, invoke_cli
from tests.core.control.conftest import RawConn

T0 = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC).timestamp()
WAIT = 15.0
"""The bound of every wait (a failure only when what is waited for never comes)."""


class TickingPrinter(LoopingProcessAgent):
    """Prints ``tick N`` on stdout every 20 ms, and ``warn N`` on stderr every third."""

    def cycle(self) -> None:
        n = self.cycles_done
        print(f"tick {n}", flush=True)
        if n % 3 == 0:
            print(f"warn {n}", file=sys.stderr, flush=True)
        self.wait(0.02)


def _stored(text: str, at: float) -> bytes:
    return f"{format_stamp(at)} {text}\n".encode()


def _lines(entries: list[Any]) -> list[str]:
    return [
        entry.line if hasattr(entry, "line") else entry["line"] for entry in entries
    ]


def _writer(logs_dir: Path, stream: str, **kwargs: int) -> LogFile:
    settings = {"max_bytes": 0, "backups": 5, **kwargs}
    return LogFile(log_path(logs_dir, "job", stream), **settings)  # type: ignore[arg-type]


def _open_under(directory: Path) -> list[str]:
    """The files under ``directory`` this process holds open."""
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


def _read_all(reader: LogReader) -> list[Any]:
    """Everything the reader has now (it reads in bounded rounds)."""
    found: list[Any] = []
    while True:
        entries, caught_up = reader.read(4096)
        found.extend(entries)
        if caught_up:
            return found


@pytest.fixture
def logs_dir(short_tmp: Path) -> Path:
    return short_tmp / "logs"


# ---------------------------------------------------------------- the reader


def test_the_tail_merges_both_streams_in_time_order_across_rotated_files(
    logs_dir: Path,
) -> None:
    out = _writer(logs_dir, "stdout", max_bytes=200, backups=10)
    err = _writer(logs_dir, "stderr", max_bytes=200, backups=10)
    for n in range(60):
        (err if n % 4 == 0 else out).write(_stored(f"line {n}", T0 + n))
    out.close()
    err.close()
    assert len(log_files(logs_dir, "job", "stdout")) > 3  # it was rotated

    reader = LogReader(logs_dir, LogQuery("job", lines=25))
    try:
        entries = _read_all(reader)
    finally:
        reader.close()
    assert _lines(entries) == [f"line {n}" for n in range(35, 60)]
    assert [e.stream for e in entries][:4] == ["stdout", "stderr", "stdout", "stdout"]

    only_err = LogReader(logs_dir, LogQuery("job", lines=3, streams=("stderr",)))
    try:
        assert _lines(_read_all(only_err)) == ["line 48", "line 52", "line 56"]
    finally:
        only_err.close()


def test_since_selects_the_lines_written_from_that_moment(logs_dir: Path) -> None:
    out = _writer(logs_dir, "stdout", max_bytes=150, backups=20)
    for n in range(40):
        out.write(_stored(f"line {n}", T0 + n))
    out.close()
    since = dt.datetime.fromtimestamp(T0 + 31, dt.UTC)
    reader = LogReader(logs_dir, LogQuery("job", lines=None, since=since))
    try:
        assert _lines(_read_all(reader)) == [f"line {n}" for n in range(31, 40)]
    finally:
        reader.close()
    both = LogReader(logs_dir, LogQuery("job", lines=2, since=since))
    try:
        assert _lines(_read_all(both)) == ["line 38", "line 39"]
    finally:
        both.close()
    everything = LogReader(logs_dir, LogQuery("job", lines=None))
    try:
        assert _lines(_read_all(everything)) == [f"line {n}" for n in range(40)]
    finally:
        everything.close()


def test_following_through_the_writers_rotations_loses_no_line(
    logs_dir: Path,
) -> None:
    """The writer rotates by size (up to three times between two reads); every line
    comes once, in order: the rotated file is finished before the next."""
    out = _writer(logs_dir, "stdout", max_bytes=120, backups=50)
    reader = LogReader(logs_dir, LogQuery("job", lines=0, follow=True))
    got: list[str] = []
    n = 0
    try:
        for burst in (1, 3, 4, 7, 10, 2, 12):
            for _ in range(burst):
                out.write(_stored(f"line {n}", T0 + n))
                n += 1
            got += _lines(_read_all(reader))
        assert len(_open_under(logs_dir)) == 2  # the writer's file and the reader's
    finally:
        reader.close()
        out.close()
    assert got == [f"line {i}" for i in range(n)]
    assert len(log_files(logs_dir, "job", "stdout")) > 10
    assert _open_under(logs_dir) == []


def test_following_through_a_rename_and_a_reopen_loses_no_line(
    logs_dir: Path,
) -> None:
    """logrotate without copytruncate: the file is renamed to .1 and an empty one is
    created; the writer goes on in the renamed file until it reopens. The reader waits
    for the new file to have bytes before it leaves the renamed one."""
    out = _writer(logs_dir, "stdout")
    path = log_path(logs_dir, "job", "stdout")
    out.write(_stored("before", T0))
    reader = LogReader(logs_dir, LogQuery("job", lines=10, follow=True))
    try:
        assert _lines(_read_all(reader)) == ["before"]
        path.rename(path.with_name(path.name + ".1"))
        path.touch()  # logrotate's "create"
        out.write(_stored("late, in the renamed file", T0 + 1))
        assert _lines(_read_all(reader)) == ["late, in the renamed file"]
        out.write(_stored("later still", T0 + 2))
        assert out.reopen() is None
        out.write(_stored("in the new file", T0 + 3))
        assert _lines(_read_all(reader)) == ["later still", "in the new file"]
    finally:
        reader.close()
        out.close()


def test_a_file_truncated_in_place_is_read_again_from_its_start(
    logs_dir: Path,
) -> None:
    path = log_path(logs_dir, "job", "stdout")
    logs_dir.mkdir()
    path.write_bytes(_stored("one", T0) + _stored("two", T0 + 1))
    reader = LogReader(logs_dir, LogQuery("job", lines=None, follow=True))
    try:
        assert _lines(_read_all(reader)) == ["one", "two"]
        with path.open("r+b") as file:  # copytruncate
            file.truncate(0)
        with path.open("ab") as file:
            file.write(_stored("three", T0 + 2))
        assert _lines(_read_all(reader)) == ["three"]
    finally:
        reader.close()


def test_an_unfinished_line_waits_for_its_end(logs_dir: Path) -> None:
    path = log_path(logs_dir, "job", "stderr")
    logs_dir.mkdir()
    path.write_bytes(_stored("whole", T0) + b"2026-12-03T10:00:01.000Z hal")
    reader = LogReader(logs_dir, LogQuery("job", lines=5, follow=True))
    try:
        entries = _read_all(reader)
        assert _lines(entries) == ["whole"]
        assert entries[0].ts == format_stamp(T0)
        with path.open("ab") as file:
            file.write(b"f\nnot stamped\n")
        entries = _read_all(reader)
        assert _lines(entries) == ["half", "not stamped"]
        assert entries[1].ts == entries[0].ts  # a line without one takes the last
    finally:
        reader.close()


@pytest.mark.parametrize(
    "stored",
    [
        _stored("plain", T0),
        _stored("", T0 + 0.5),
        _stored(" leading space and ünïcode", T0 + 86_400 * 400),
        b"no timestamp at all",
        b"2026-12-03T10:00:00.000Z",  # a stamp and nothing after it: not one
        b"2026-12-03 10:00:00.000Z text",
        b"2026-12-03T10:00:00.000+00:00 text",
        b"\xff\xfe binary",
    ],
)
def test_the_reader_parses_a_stored_line_as_the_writer_defines_it(
    stored: bytes,
) -> None:
    """The reader checks a line's shape only (it reads millions for a tail); it
    agrees with outputfiles.parse_line, the writer's definition."""
    raw = stored.removesuffix(b"\n")
    stamp, text = parse_stored_line(raw)
    expected = parse_line(raw.decode("utf-8", "replace"))
    if expected is None:
        assert (stamp, text) == (None, raw.decode("utf-8", "replace"))
    else:
        assert text == expected.text
        assert stamp == format_stamp(expected.timestamp.timestamp())


def test_parse_since_takes_durations_and_timestamps() -> None:
    now = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
    assert parse_since("10m", now=now) == now - dt.timedelta(minutes=10)
    assert parse_since("2h", now=now) == now - dt.timedelta(hours=2)
    assert parse_since("90", now=now) == now - dt.timedelta(seconds=90)
    assert parse_since("1d", now=now) == now - dt.timedelta(days=1)
    assert parse_since("2026-12-03T11:00:00+01:00") == dt.datetime(
        2026, 12, 3, 10, 0, tzinfo=dt.UTC
    )
    local = parse_since("2026-12-03 11:00")
    assert local == dt.datetime(2026, 12, 3, 11, 0).astimezone().astimezone(dt.UTC)
    with pytest.raises(ValueError, match="--since 'yesterday' is neither"):
        parse_since("yesterday")


# ---------------------------------------------------------------- the server

Make = Callable[..., Fleet]


@pytest.fixture
def make(short_tmp: Path, logs_dir: Path) -> Iterator[Make]:
    """Real DAEMON orchestrators writing output files to ``logs_dir``."""
    made: list[Fleet] = []
    counter = iter(range(100))

    def build(agents: dict[str, type] | None = None, **config: Any) -> Fleet:
        def register(orchestrator: Orchestrator) -> None:
            for name, cls in (agents or {}).items():
                orchestrator.register_agent(cls, name)

        settings = {"logs_dir": logs_dir, **config}
        fleet = Fleet(
            short_tmp / f"o{next(counter)}.sock",
            name="logs-test",
            agents=False,
            register=register,
            **settings,
        )
        made.append(fleet)
        return fleet

    yield build
    for fleet in made:
        fleet.close()


def _write_job_files(logs_dir: Path, count: int) -> None:
    out = _writer(logs_dir, "stdout", max_bytes=300, backups=20)
    err = _writer(logs_dir, "stderr", max_bytes=300, backups=20)
    for n in range(count):
        (err if n % 5 == 0 else out).write(_stored(f"line {n}", T0 + n))
    out.close()
    err.close()


def _read_stream(conn: RawConn) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A logs stream's entries and its LOG_END payload."""
    entries: list[dict[str, Any]] = []
    while True:
        message = conn.read_json(WAIT)
        if message["event_name"] == "LOG":
            entries += message["payload"]["entries"]
        else:
            assert message["event_name"] == "LOG_END", message
            return entries, message["payload"]


def test_logs_replies_then_sends_the_lines_then_ends(
    make: Make, logs_dir: Path
) -> None:
    # "job" is a process agent that prints nothing: its files are written here.
    fleet = make({"job": agent("forever", "process")})
    fleet.wait_state("job", "READY")
    _write_job_files(logs_dir, 50)
    conn = RawConn(fleet.socket, WAIT)
    try:
        rid = conn.request("logs", "job", {"lines": 12})
        reply = conn.read_json(WAIT)
        assert reply["event_name"] == "STATUS"
        payload = reply["payload"]
        assert payload["status"] == "success", payload
        assert payload["request_id"] == rid
        assert payload["data"]["files"] == {
            "stdout": str(log_path(logs_dir, "job", "stdout")),
            "stderr": str(log_path(logs_dir, "job", "stderr")),
        }
        assert payload["data"]["query"]["lines"] == 12
        entries, end = _read_stream(conn)
        assert [e["line"] for e in entries] == [f"line {n}" for n in range(38, 50)]
        assert entries[2] == {
            "ts": format_stamp(T0 + 40),
            "stream": "stderr",
            "line": "line 40",
        }
        assert end == {"reason": "done", "error": None, "request_id": rid}
        # The connection serves on after the stream.
        assert conn.reply("ps")["status"] == "success"
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["job", {"lines": -1}], "field 'lines' must be an integer ≥ 0 or null"),
        (["job", {"lines": "10"}], "field 'lines' must be an integer ≥ 0 or null"),
        (["job", {"lines": True}], "field 'lines' must be an integer ≥ 0 or null"),
        (["job", {"follow": "yes"}], "field 'follow' must be true or false"),
        (["job", {"streams": ["both"]}], "field 'streams' must be a non-empty list"),
        (["job", {"streams": []}], "field 'streams' must be a non-empty list"),
        (["job", {"since": "yesterday"}], "field 'since' is not an ISO 8601"),
        (["job", {"since": 5}], "field 'since' must be an ISO 8601 timestamp"),
        (["job", {"colour": True}], "unknown field 'colour'"),
        (["job", [1, 2]], "the query must be a JSON object"),
        (["job", "{not json"], "the query must be a JSON object"),
        ([7], "the agent name must be a non-empty string"),
        ([""], "the agent name must be a non-empty string"),
        ([], "logs takes 1 to 2 argument(s), got 0"),
        (["job", {}, {}], "logs takes 1 to 2 argument(s), got 3"),
    ],
)
def test_a_malformed_logs_request_gets_a_400_and_the_server_lives_on(
    make: Make, args: list[Any], message: str
) -> None:
    fleet = make({"job": agent("forever", "process")})
    conn = RawConn(fleet.socket, WAIT)
    try:
        payload = conn.reply("logs", *args)
        assert payload["status"] == "error"
        assert payload["code"] == 400
        assert payload["error_type"] == "UnknownCommand"
        assert message in payload["error"]
        assert conn.reply("ps")["status"] == "success"
    finally:
        conn.close()
    with ControlClient(fleet.socket, timeout=WAIT) as client:
        assert client.ps()["agents"]


def test_unknown_agents_thread_agents_and_no_logs_dir_are_refused(
    make: Make,
) -> None:
    fleet = make({"job": agent("forever", "process"), "th": agent("forever", "thread")})
    with ControlClient(fleet.socket, timeout=WAIT) as client:
        with pytest.raises(AgentNotFound, match="'nobody' is not registered"):
            client.logs("nobody")
        with pytest.raises(Conflict, match="'th' is a thread agent"):
            client.logs("th")
    plain = make({"job": agent("forever", "process")}, logs_dir=None)
    with (
        ControlClient(plain.socket, timeout=WAIT) as client,
        pytest.raises(Conflict, match="logs_dir is off"),
    ):
        client.logs("job")


def test_read_only_presets_may_read_logs_but_not_reopen_them(
    make: Make, logs_dir: Path
) -> None:
    for preset in ("read_only", "production", "monitoring"):
        assert "logs" in PERMISSION_PRESETS[preset]
        assert "reopen-logs" not in PERMISSION_PRESETS[preset]
    assert {"logs", "reopen-logs"} <= PERMISSION_PRESETS["development"]
    fleet = make({"job": agent("forever", "process")}, allowed_commands="read_only")
    _write_job_files(logs_dir, 3)
    client = ControlClient(fleet.socket, timeout=WAIT)
    assert _lines(list(client.logs("job"))) == ["line 0", "line 1", "line 2"]
    with pytest.raises(CommandForbidden, match="'reopen-logs' is not allowed"):
        client.reopen_logs()
    client.close()


def test_a_follower_gets_new_lines_and_its_hangup_ends_its_stream(
    make: Make, logs_dir: Path
) -> None:
    fleet = make({"job": agent("forever", "process")})
    server = fleet.orchestrator.command_server
    assert server is not None
    out = _writer(logs_dir, "stdout", max_bytes=200, backups=20)
    out.write(_stored("old", T0))
    conn = RawConn(fleet.socket, WAIT)
    try:
        conn.request("logs", "job", {"lines": 1, "follow": True, "streams": "stdout"})
        assert conn.read_json(WAIT)["payload"]["status"] == "success"
        got: list[str] = []
        for n in range(30):  # several rotations while following
            out.write(_stored(f"new {n}", T0 + 1 + n))
        while len(got) < 31:
            message = conn.read_json(WAIT)
            assert message["event_name"] == "LOG", message
            got += [e["line"] for e in message["payload"]["entries"]]
        assert got == ["old", *(f"new {n}" for n in range(30))]
        assert server.log_streams == 1
        # A second stream on the same connection is refused; the first goes on.
        payload = conn.reply("logs", "job")
        assert payload["code"] == 409
        assert "already streaming logs" in payload["error"]
    finally:
        conn.close()
        out.close()
    assert wait_until(lambda: server.log_streams == 0, WAIT)
    assert fleet.answers()


def test_beyond_max_log_streams_a_request_is_refused_as_busy(
    short_tmp: Path, logs_dir: Path
) -> None:
    orchestrator = Orchestrator(
        "busy", Orchestrator.Config(enable_command_interface=False, logs_dir=logs_dir)
    )
    orchestrator.register_agent(agent("forever", "process"), "job")
    out = _writer(logs_dir, "stdout")  # the agent never runs: its file is written here
    out.write(_stored("one", T0))
    out.close()
    server = CommandServer(
        orchestrator,
        str(short_tmp / "busy.sock"),
        PERMISSION_PRESETS["development"],
        max_log_streams=1,
    )
    server.start()
    first = ControlClient(server.path, timeout=WAIT)
    second = ControlClient(server.path, timeout=WAIT)
    try:
        stream = first.logs("job", follow=True)
        with pytest.raises(Conflict, match="busy: 1 log streams are open"):
            second.logs("job")
        assert _open_under(logs_dir)  # the follower's reader holds the file
        stream.close()  # the caller stops: the connection closes, the place frees
        assert wait_until(lambda: server.log_streams == 0, WAIT)
        assert _open_under(logs_dir) == []
        assert _lines(list(second.logs("job"))) == ["one"]
    finally:
        first.close()
        second.close()
        assert server.stop()
        orchestrator.shutdown(timeout=2.0)


def test_the_orchestrators_shutdown_ends_a_follow_stream_cleanly(
    make: Make, logs_dir: Path
) -> None:
    fleet = make({"job": agent("forever", "process")})
    out = _writer(logs_dir, "stderr")
    out.write(_stored("before", T0))
    client = ControlClient(fleet.socket, timeout=WAIT)
    stream = client.logs("job", follow=True)
    assert next(stream)["line"] == "before"
    out.write(_stored("during", T0 + 1))
    assert next(stream)["line"] == "during"
    out.write(_stored("last", T0 + 2))
    fleet.close()
    # What the file held is still sent, then the stream ends without an error.
    assert _lines(list(stream)) == ["last"]
    out.close()


def test_a_slow_reader_gets_every_line(make: Make, logs_dir: Path) -> None:
    """A client that does not read makes the server pause its stream (it does not
    buffer the whole log, nor drop lines); every line comes once it reads."""
    fleet = make({"job": agent("forever", "process")})
    out = _writer(logs_dir, "stdout")
    count = 60_000  # about 3 MB of entries on the wire: more than the pause bound
    block = b"".join(_stored(f"line {n:06d} " + "x" * 20, T0 + n) for n in range(count))
    out.write(block)
    out.close()
    conn = RawConn(fleet.socket, WAIT)
    try:
        conn.request("logs", "job", {"lines": None})
        assert conn.read_json(WAIT)["payload"]["status"] == "success"
        server = fleet.orchestrator.command_server
        assert server is not None
        time.sleep(0.3)  # not reading (not a timing assert: only lets it fill up)
        # The paused stream holds no thread of the socket's: others are served.
        with ControlClient(fleet.socket, timeout=WAIT) as other:
            assert other.ps()["agents"][0]["name"] == "job"
        entries, end = _read_stream(conn)
        assert end["reason"] == "done"
        assert len(entries) == count
        assert entries[0]["line"].startswith("line 000000 ")
        assert entries[-1]["line"].startswith(f"line {count - 1:06d} ")
    finally:
        conn.close()


# ---------------------------------------------------------------- the CLI


def test_the_cli_prints_lines_json_lines_and_reopens(
    make: Make, logs_dir: Path
) -> None:
    fleet = make({"job": agent("forever", "process")})
    _write_job_files(logs_dir, 12)
    result = invoke_cli("logs", "job", "-n", "3", "--socket", fleet.socket)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{format_stamp(T0 + 9)} stdout line 9",
        f"{format_stamp(T0 + 10)} stderr line 10",
        f"{format_stamp(T0 + 11)} stdout line 11",
    ]
    result = invoke_cli(
        "logs", "job", "--stderr", "--json", "-n", "2", "--socket", fleet.socket
    )
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"ts": format_stamp(T0 + 5), "stream": "stderr", "line": "line 5"},
        {"ts": format_stamp(T0 + 10), "stream": "stderr", "line": "line 10"},
    ]
    since = dt.datetime.fromtimestamp(T0 + 10, dt.UTC).isoformat()
    result = invoke_cli("logs", "job", "--since", since, "--socket", fleet.socket)
    assert [line.split()[-1] for line in result.stdout.splitlines()] == ["10", "11"]

    result = invoke_cli("logs", "--reopen", "--socket", fleet.socket)
    assert result.exit_code == 0, result.stderr
    assert "reopened" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["logs"], "name the agent"),
        (["logs", "job", "--since", "soon"], "--since 'soon' is neither a duration"),
        (["logs", "job", "--reopen"], "--reopen takes no agent"),
        (["logs", "job", "--stdout", "--stderr"], "not allowed with argument"),
        (["logs", "job", "-n", "-3"], "-3 is less than 0"),
    ],
)
def test_cli_usage_errors_exit_2(
    args: list[str], message: str, short_tmp: Path
) -> None:
    result = invoke_cli(*args, "--socket", short_tmp / "none.sock")
    assert result.exit_code == 2, result
    assert message in result.stderr


def test_the_cli_reports_a_refused_logs_request(make: Make) -> None:
    fleet = make({"th": agent("forever", "thread")}, allowed_commands="read_only")
    result = invoke_cli("logs", "th", "--socket", fleet.socket)
    assert result.exit_code == 1
    assert "'th' is a thread agent" in result.stderr
    result = invoke_cli("logs", "--reopen", "--socket", fleet.socket)
    assert result.exit_code == 1
    assert "'reopen-logs' is not allowed" in result.stderr


def test_logs_follow_in_a_subprocess_sees_a_real_agents_output_through_rotations(
    make: Make, logs_dir: Path, short_tmp: Path
) -> None:
    """End to end: a process agent prints, the orchestrator captures its output to
    rotating files, ``pyorchestrate logs -f --json`` follows it through several
    rotations, and the orchestrator's shutdown ends it with exit 0. Every tick it
    printed is there once, in order, and so is every warn line of stderr."""
    fleet = make({"ticker": TickingPrinter}, log_max_bytes=1500, log_backups=100)
    fleet.wait_state("ticker", "READY")
    assert wait_until(
        lambda: len(fleet.orchestrator.log_files("ticker", "stdout")) >= 1, WAIT
    )
    output = short_tmp / "follow.out"
    with output.open("wb") as sink:
        follower = subprocess.Popen(
            [
                *(sys.executable, "-m", "pyorchestrate", "logs", "ticker"),
                *("-f", "--json", "-n", "5", "--socket", fleet.socket),
            ],
            stdout=sink,
            stderr=subprocess.PIPE,
            env=cli_env(),
        )
        try:
            assert wait_until(lambda: output.stat().st_size > 0, WAIT)
            # Let the agent's files rotate at least three times while followed.
            first = len(fleet.orchestrator.log_files("ticker", "stdout"))
            assert wait_until(
                lambda: (
                    len(fleet.orchestrator.log_files("ticker", "stdout")) >= first + 3
                ),
                WAIT,
            )
            fleet.close()
            _, err = follower.communicate(timeout=WAIT)
        finally:
            if follower.poll() is None:
                follower.kill()
                follower.communicate()
    assert follower.returncode == 0, err.decode()
    entries = [json.loads(line) for line in output.read_text().splitlines()]
    ticks = [int(e["line"].split()[1]) for e in entries if e["stream"] == "stdout"]
    warns = [int(e["line"].split()[1]) for e in entries if e["stream"] == "stderr"]
    assert len(ticks) > 50
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))
    expected_warns = [n for n in range(ticks[0], ticks[-1] + 1) if n % 3 == 0]
    assert [n for n in warns if ticks[0] <= n <= ticks[-1]] == expected_warns
    # What the files hold agrees with what was followed.
    stored = []
    for path in fleet.orchestrator.log_files("ticker", "stdout"):
        for line in path.read_text().splitlines():
            parsed = parse_line(line)
            assert parsed is not None
            stored.append(int(parsed.text.split()[1]))
    assert ticks == [n for n in stored if ticks[0] <= n <= ticks[-1]]


def test_logs_json_imports_no_third_party_module(short_tmp: Path) -> None:
    """Like ``ps --json``: the ``logs`` path is the standard library plus the
    client (here failing to connect)."""
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['pyorchestrate', 'logs', 'job', '--json', '--socket', "
        f"{str(short_tmp / 'none.sock')!r}]\n"
        "try:\n"
        "    runpy.run_module('pyorchestrate', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in "
        "('notifiers', 'pydantic', 'rich', 'typer', 'click', 'psutil')))\n"
        "print('CONTROL', sorted(m for m in sys.modules if m.startswith("
        "'pyorchestrate.core.control.log')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert "LOADED []" in result.stdout, result.stdout
    # The client's query module, never the server's readers.
    assert "CONTROL ['pyorchestrate.core.control.logquery']" in result.stdout


def test_client_logs_is_refused_with_the_fields_name() -> None:
    """The client builds what the server accepts (no stray fields)."""
    from pyorchestrate.core.control.logquery import build_log_query, parse_log_query

    since = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)
    query = parse_log_query(
        [
            "job",
            build_log_query(lines=None, follow=True, streams=["stderr"], since=since),
        ]
    )
    assert query == LogQuery("job", None, True, ("stderr",), since)
    with pytest.raises(UnknownCommand, match="unknown field 'agent'"):
        parse_log_query(["job", {"agent": "other"}])


def test_a_file_that_cannot_be_read_is_an_error_not_silence(
    make: Make, logs_dir: Path
) -> None:
    """At the start, the reply is the error; while following, the stream ends with
    reason ``error``, which the client raises (a directory stands for an unreadable
    file: the tests run as root, for whom permissions do not apply)."""
    fleet = make({"job": agent("forever", "process")})
    fleet.wait_state("job", "READY")
    stderr_path = log_path(logs_dir, "job", "stderr")
    stderr_path.unlink()
    stderr_path.mkdir()
    with (
        ControlClient(fleet.socket, timeout=WAIT) as client,
        pytest.raises(CommandFailed, match="cannot read the log files of 'job'"),
    ):
        client.logs("job")
    stderr_path.rmdir()
    with ControlClient(fleet.socket, timeout=WAIT) as client:
        stream = client.logs("job", follow=True, streams=["stderr"])
        stderr_path.mkdir()  # appears where the next file would
        with pytest.raises(CommandFailed, match="reading the log files failed"):
            next(stream)
    assert fleet.answers()


def test_random_logs_queries_each_get_one_answer(make: Make, logs_dir: Path) -> None:
    """400 random queries (fields of every type, unknown ones, JSON strings): each
    gets one reply, an error naming what is wrong or a stream that ends; the server
    serves on."""
    fleet = make({"job": agent("forever", "process"), "th": agent("forever", "thread")})
    fleet.wait_state("job", "READY")
    _write_job_files(logs_dir, 20)
    rng = random.Random(20261203)
    values: list[Any] = [
        None, True, False, 0, 1, -1, 7, 2**70, 1.5, "", "x", "stdout", "stderr",
        "10m", "2026-12-03T10:00:05+00:00", "2026-12-03", [], ["stdout"],
        ["stderr", "stdout"], ["both"], {}, {"lines": 1},
    ]  # fmt: skip
    fields = ["lines", "follow", "streams", "since", "agent", "colour"]
    conn = RawConn(fleet.socket, WAIT)
    outcomes: Counter[str] = Counter()
    try:
        for _ in range(400):
            query: Any = {
                rng.choice(fields): rng.choice(values) for _ in range(rng.randint(0, 4))
            }
            if rng.random() < 0.1:
                query = json.dumps(query) if rng.random() < 0.5 else rng.choice(values)
            target = rng.choice(["job", "job", "th", "ghost", "", 5])
            payload = conn.reply("logs", target, query)
            outcomes[payload["status"]] += 1
            if payload["status"] == "error":
                assert payload["code"] in (400, 404, 409), payload
                assert payload["error"], payload
                continue
            if payload["data"]["query"]["follow"]:
                conn.close()  # a follower: hang up, on to a new connection
                conn = RawConn(fleet.socket, WAIT)
                continue
            entries, end = _read_stream(conn)
            assert end["reason"] == "done", end
            assert all(e["line"].startswith("line ") for e in entries)
    finally:
        conn.close()
    assert min(outcomes["success"], outcomes["error"]) >= 20, outcomes  # both paths
    server = fleet.orchestrator.command_server
    assert server is not None
    assert wait_until(lambda: server.log_streams == 0, WAIT)
    assert fleet.answers()


def test_logrotate_renames_then_reopen_and_a_follower_loses_no_line(
    make: Make, logs_dir: Path
) -> None:
    """logrotate's way, end to end: the agent's file is renamed under the running
    writer, ``pyorchestrate logs --reopen`` makes the orchestrator start a new one,
    and a follower reads the renamed file to its end, then the new one."""
    fleet = make({"ticker": TickingPrinter}, log_max_bytes=0)
    path = log_path(logs_dir, "ticker", "stdout")
    assert wait_until(lambda: path.exists() and path.stat().st_size > 200, WAIT)
    got: list[int] = []
    failure: list[BaseException] = []
    client = ControlClient(fleet.socket, timeout=WAIT)
    stream = client.logs("ticker", lines=1, follow=True, streams=["stdout"])

    def follow() -> None:
        try:
            got.extend(int(entry["line"].split()[1]) for entry in stream)
        except BaseException as exc:  # reported below
            failure.append(exc)

    follower = threading.Thread(target=follow, name="test-follower")
    follower.start()
    try:
        assert wait_until(lambda: len(got) >= 3, WAIT)
        rotated = path.with_name(path.name + ".1")
        path.rename(rotated)
        seen = len(got)  # the writer goes on in the renamed file: still followed
        assert wait_until(lambda: len(got) >= seen + 3, WAIT)
        result = invoke_cli("logs", "--reopen", "--socket", fleet.socket)
        assert result.exit_code == 0, result.stderr
        assert wait_until(lambda: path.exists() and path.stat().st_size > 200, WAIT)
        first_new = parse_stored_line(path.read_bytes().split(b"\n")[0])[1]
        assert wait_until(
            lambda: bool(got) and got[-1] > int(first_new.split()[1]), WAIT
        )
        fleet.close()
        follower.join(WAIT)
    finally:
        stream.close()
        follower.join(WAIT)
    assert not follower.is_alive()
    assert failure == []
    assert got == list(range(got[0], got[0] + len(got)))  # no gap, no repeat
