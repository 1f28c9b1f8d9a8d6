"""The socket server: framing, who gets replies, socket files, deadlines."""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pyorchestrate import Orchestrator
from pyorchestrate.core.control.paths import (
    MAX_SOCKET_PATH,
    default_socket_dir,
    default_socket_path,
)
from pyorchestrate.core.errors import LifecycleError
from pyorchestrate.testing import wait_until
from tests.agents import HangOnStopThread, agent

from .conftest import FAST, RawConn, Serve, Served, request_line

DEADLINE_SLACK = 2.0
"""What a reply may take beyond command_timeout on a loaded 2-core machine."""


def _mode(path: str | Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _answers(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


# ---------------------------------------------------------------- framing


def test_one_line_in_one_line_out_on_the_requesting_connection(serve: Serve) -> None:
    served = serve(agents=[(agent("forever", "thread"), "w")])
    a, b = served.raw(), served.raw()
    for _ in range(3):
        # A's reply goes to A; B's first line afterwards is B's own reply, so
        # nothing of A's was written to B (and A got nothing extra either).
        payload = a.reply("ps")
        assert payload["status"] == "success"
        payload = b.reply("status", "w")
        assert payload["data"]["name"] == "w"
        payload = a.reply("status", "nobody")
        assert payload["code"] == 404


def test_two_clients_issuing_commands_concurrently_get_only_their_replies(
    serve: Serve,
) -> None:
    served = serve(
        agents=[(agent("forever", "thread"), "w"), (agent("quick", "thread"), "q")]
    )
    commands: list[tuple[str, tuple[object, ...]]] = [
        ("ps", ()),
        ("status", ()),
        ("status", ("w",)),
        ("stats", ()),
        ("history", ({"last": 5},)),
        ("nonsense", ()),
        ("start", ("q",)),
        ("status", ("ghost",)),
    ]
    failures: list[str] = []
    counts: list[int] = []

    def worker(conn: RawConn) -> None:
        n = 0
        try:
            for i in range(40):
                command, args = commands[i % len(commands)]
                line, rid = request_line(command, *args)
                conn.send(line)
                message = conn.read_json()
                if message["payload"].get("request_id") != rid:
                    failures.append(f"{command}: got {message['payload']}")
                n += 1
        except Exception as exc:  # reported below
            failures.append(repr(exc))
        counts.append(n)

    conns = [served.raw(), served.raw()]
    threads = [threading.Thread(target=worker, args=(c,)) for c in conns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
    assert counts == [40, 40]


def test_many_requests_on_one_kept_connection(serve: Serve) -> None:
    served = serve(agents=[(agent("forever", "thread"), "w")])
    conn = served.raw()
    # Sequentially, one after the other.
    for _ in range(25):
        assert conn.reply("status", "w")["status"] == "success"
    # Pipelined: 100 requests in one write, one reply each, matched by request_id.
    lines, rids = [], []
    for i in range(100):
        command, args = [("ps", ()), ("status", ("w",)), ("bogus", ())][i % 3]
        line, rid = request_line(command, *args)
        lines.append(line)
        rids.append(rid)
    conn.send(b"".join(lines))
    got = [conn.read_json()["payload"]["request_id"] for _ in rids]
    assert sorted(got) == sorted(rids)
    assert len(set(got)) == 100
    # Nothing extra is queued behind them.
    assert conn.reply("status")["status"] == "success"


def test_a_request_split_across_writes_is_reassembled(serve: Serve) -> None:
    conn = serve().raw()
    line, rid = request_line("status")
    for i in range(0, len(line), 7):
        conn.send(line[i : i + 7])
    payload = conn.read_json()["payload"]
    assert payload["request_id"] == rid
    assert payload["status"] == "success"


def test_a_client_that_never_reads_does_not_block_others(serve: Serve) -> None:
    served = serve(agents=[(agent("forever", "thread"), "w")])
    greedy = served.raw()
    greedy.send(b"".join(request_line("ps")[0] for _ in range(500)))
    polite = served.raw()
    for _ in range(5):
        assert polite.reply("ps")["status"] == "success"


# ---------------------------------------------------------------- socket files


def test_socket_is_served_once_start_returns(short_tmp: Path) -> None:
    path = str(short_tmp / "s.sock")
    orchestrator = Orchestrator(
        "early", Orchestrator.Config(**{**FAST, "command_socket_path": path})
    )
    orchestrator.register_agent(agent("forever", "thread"), "w")
    try:
        orchestrator.start()
        # An application may do other work between start() and join(): the
        # command interface is up from start() on (and only a socket answers).
        assert Path(path).exists(), "start() returned but no command socket exists"
        assert _answers(path)
    finally:
        orchestrator.shutdown(timeout=2.0)
    assert not Path(path).exists()


def test_default_path_is_a_private_dir_and_a_0600_socket(
    serve: Serve, short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_tmp))
    served = serve(name="privy", command_socket_path=None)
    expected = short_tmp / "pyorchestrate" / "privy.sock"
    assert served.path == str(expected)
    assert served.orchestrator.command_socket_path == str(expected)
    info = expected.parent.stat()
    assert stat.S_ISDIR(info.st_mode)
    assert _mode(expected.parent) == 0o700
    assert info.st_uid == os.getuid()
    assert stat.S_ISSOCK(os.lstat(expected).st_mode)
    assert _mode(expected) == 0o600
    assert served.client().status()["command_socket_path"] == str(expected)
    served.teardown()
    assert not expected.exists()


def test_a_loose_default_dir_is_made_private(
    serve: Serve, short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_tmp))
    private = short_tmp / "pyorchestrate"
    private.mkdir(mode=0o777)
    private.chmod(0o777)
    served = serve(name="loose", command_socket_path=None)
    assert Path(served.path).parent == private
    assert _mode(private) == 0o700
    assert _mode(served.path) == 0o600


def test_default_path_without_xdg_is_per_user_not_shared_tmp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tempfile

    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    path = Path(default_socket_path("My Orch/1"))
    assert path.name == "My_Orch_1.sock"
    assert path.parent == default_socket_dir()
    assert path.parent != Path(tempfile.gettempdir())
    assert str(os.getuid()) in path.parent.name
    assert len(os.fsencode(str(path))) <= MAX_SOCKET_PATH


def test_a_custom_path_socket_is_0600_whatever_the_umask(
    short_tmp: Path, serve: Serve
) -> None:
    path = short_tmp / "sub" / "c.sock"
    old = os.umask(0)
    try:
        served = serve(command_socket_path=str(path))
    finally:
        os.umask(old)
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    assert _mode(path) == 0o600
    assert served.client().ps()["agents"] == []


def test_a_stale_socket_file_is_replaced(short_tmp: Path, serve: Serve) -> None:
    path = short_tmp / "stale.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nothing listens: a crashed orchestrator's leftover
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    assert not _answers(str(path))
    served = serve(
        agents=[(agent("forever", "thread"), "w")], command_socket_path=str(path)
    )
    assert _mode(path) == 0o600
    assert [a["agent_name"] for a in served.client().ps()["agents"]] == ["w"]


Entry = Callable[[Orchestrator], object]
ENTRIES: dict[str, Entry] = {
    "start": lambda o: o.start(),
    "start_agent": lambda o: o.start_agent("x"),
    "join": lambda o: o.join(),
}


def _refused(
    path: str, entry: str, name: str
) -> tuple[Orchestrator, pytest.ExceptionInfo[LifecycleError]]:
    """Start an orchestrator on ``path`` via ``entry``; expect LifecycleError, no agent."""
    orchestrator = Orchestrator(
        name, Orchestrator.Config(**{**FAST, "command_socket_path": path})
    )
    orchestrator.register_agent(agent("forever", "thread"), "x")
    try:
        with pytest.raises(LifecycleError) as caught:
            ENTRIES[entry](orchestrator)
        status = orchestrator.agent_status("x")
        assert status["lifecycle_state"] == "REGISTERED", status
        assert not status["alive"]
        assert orchestrator.events(event_name="agent_started") == []
        assert orchestrator.command_server is None
    finally:
        orchestrator.shutdown(timeout=2.0)
    return orchestrator, caught


@pytest.mark.parametrize("entry", list(ENTRIES))
def test_a_live_socket_is_a_clear_error_and_nothing_starts(
    serve: Serve, entry: str
) -> None:
    first = serve(agents=[(agent("forever", "thread"), "w")])
    first.wait_state("w", "READY")  # serve() starts it; READY comes a moment later
    _, caught = _refused(first.path, entry, "second")
    message = str(caught.value)
    assert first.path in message
    assert "already listening" in message
    # The first orchestrator is untouched and still answers on its socket.
    assert Path(first.path).exists()
    assert first.client().status("w")["lifecycle_state"] == "READY"


@pytest.mark.parametrize("entry", list(ENTRIES))
def test_a_non_socket_file_at_the_path_is_an_error(short_tmp: Path, entry: str) -> None:
    path = short_tmp / "plain.sock"
    path.write_text("not a socket")
    try:
        _, caught = _refused(str(path), entry, "plain")
        assert str(path) in str(caught.value)
        assert "not a socket" in str(caught.value)
        assert path.read_text() == "not a socket"
    finally:
        path.unlink()


@pytest.mark.parametrize("entry", list(ENTRIES))
def test_a_too_long_socket_path_is_an_error(short_tmp: Path, entry: str) -> None:
    path = str(short_tmp / ("d" * 60) / ("s" * 60 + ".sock"))
    _, caught = _refused(path, entry, "long")
    assert str(MAX_SOCKET_PATH) in str(caught.value)
    assert not Path(path).exists()


def test_socket_file_is_gone_after_shutdown_and_clients_see_eof(serve: Serve) -> None:
    served = serve(agents=[(agent("forever", "thread"), "w")])
    conn = served.raw()
    assert conn.reply("ps")["status"] == "success"
    assert Path(served.path).exists()
    served.orchestrator.shutdown(timeout=2.0)
    served.joiner.join(15)
    assert not served.joiner.is_alive()
    assert not Path(served.path).exists()
    assert conn.at_eof()
    assert served.orchestrator.shutdown() == []  # a second shutdown is a no-op
    assert not any(
        t.name.startswith(f"pyorchestrate-control-{served.orchestrator.name}")
        and t.is_alive()
        for t in threading.enumerate()
    )


def test_shutdown_never_removes_another_servers_socket(serve: Serve) -> None:
    first = serve()
    Path(first.path).unlink()  # someone removed it; another orchestrator took the path
    second = serve(command_socket_path=first.path)
    first.orchestrator.shutdown(timeout=2.0)
    first.joiner.join(15)
    assert Path(second.path).exists()
    assert second.client().status()["name"] == second.orchestrator.name


# ---------------------------------------------------------------- deadlines


def _hang_setup(serve: Serve) -> tuple[Served, threading.Event]:
    gate = threading.Event()
    served = serve(
        agents=[
            (HangOnStopThread, "h", {"gate": gate}),
            (agent("forever", "thread"), "w"),
        ],
        command_timeout=0.5,
    )
    served.wait_state("h", "READY")
    served.wait_state("w", "READY")
    return served, gate


def test_a_hung_command_gets_500_within_the_deadline_while_ps_answers(
    serve: Serve,
) -> None:
    served, gate = _hang_setup(serve)
    hung, other = served.raw(), served.raw()
    try:
        began = time.monotonic()
        rid = hung.request("stop", "h")  # on_stop blocks until the gate opens
        # The server goes on serving another client meanwhile.
        assert other.reply("commands")["status"] == "success"
        ps = other.reply("ps")
        assert ps["status"] == "success", f"ps did not answer: {ps}"
        assert {a["agent_name"] for a in ps["data"]["agents"]} == {"h", "w"}
        payload = hung.read_json(timeout=0.5 + DEADLINE_SLACK + 1)["payload"]
        elapsed = time.monotonic() - began
        assert payload["request_id"] == rid
        assert payload["code"] == 500
        assert payload["error_type"] == "CommandFailed"
        assert "0.5" in payload["error"]
        assert elapsed < 0.5 + DEADLINE_SLACK
    finally:
        gate.set()
    served.wait_state("h", "TERMINATED")
    # The late result of the timed-out stop is not sent: the next line is the reply.
    assert hung.reply("status", "h")["data"]["lifecycle_state"] == "TERMINATED"


def test_every_request_is_answered_within_the_deadline_when_workers_are_stuck(
    serve: Serve,
) -> None:
    served, gate = _hang_setup(serve)
    conns = [served.raw() for _ in range(6)]
    try:
        began = time.monotonic()
        rids = [conn.request("stop", "h") for conn in conns]
        # Answered by the server thread itself, at once, whatever the workers do.
        probe = served.raw()
        assert probe.reply("no-such-command")["code"] == 400
        assert probe.reply("status", "a", "b")["code"] == 400
        probe.send(b"{broken\n")
        assert probe.read_json()["payload"]["code"] == 400
        for conn, rid in zip(conns, rids, strict=True):
            payload = conn.read_json(timeout=0.5 + DEADLINE_SLACK + 1)["payload"]
            assert payload["request_id"] == rid
            assert payload["code"] in (0, 500), payload
        assert time.monotonic() - began < 0.5 + DEADLINE_SLACK
        late = probe.reply("ps")
        assert late["code"] in (0, 500), late
    finally:
        gate.set()
    served.wait_state("h", "TERMINATED")
    # Once the agent lets go, everything answers normally again.
    assert wait_until(lambda: probe.reply("ps")["status"] == "success", 5)
