"""ControlClient: connection errors, timeouts, typed errors, socket path resolution."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyorchestrate.core import errors
from pyorchestrate.core.control.client import ControlClient, resolve_socket_path
from pyorchestrate.core.control.paths import default_socket_path
from pyorchestrate.core.control.protocol import encode, success_reply
from tests.agents import agent

from .conftest import Serve

Handler = Callable[[socket.socket], None]


class FakeServer:
    """A bare AF_UNIX listener; each connection is handed to ``handler`` on a thread."""

    def __init__(self, path: Path, handler: Handler | None) -> None:
        self.path = str(path)
        self.handler = handler
        self.accepted = 0
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(8)
        self.listener.settimeout(0.1)
        self.stopping = threading.Event()
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, name="test-fake-server")
        if handler is not None:
            self.thread.start()

    def _serve(self) -> None:
        assert self.handler is not None
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            self.conns.append(conn)
            conn.settimeout(5)
            with contextlib.suppress(OSError):
                self.handler(conn)

    def close(self) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(5)
        for conn in self.conns:
            conn.close()
        self.listener.close()
        Path(self.path).unlink()


@pytest.fixture
def fake_server(short_tmp: Path) -> Iterator[Callable[[Handler | None], FakeServer]]:
    made: list[FakeServer] = []

    def make(handler: Handler | None) -> FakeServer:
        server = FakeServer(short_tmp / f"fake{len(made)}.sock", handler)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


def _lines(conn: socket.socket) -> Iterator[dict[str, Any]]:
    buffer = b""
    while True:
        while b"\n" not in buffer:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        yield json.loads(line)


def _replying(make_payload: Callable[[dict[str, Any]], dict[str, Any]]) -> Handler:
    """A handler that answers every request line with ``make_payload(request)``."""

    def handle(conn: socket.socket) -> None:
        for request in _lines(conn):
            payload = make_payload(request["payload"])
            conn.sendall(encode({"event_name": "STATUS", "payload": payload}))

    return handle


# ---------------------------------------------------------------- unavailable / timeout


def test_a_missing_socket_is_control_unavailable_naming_the_path(
    short_tmp: Path,
) -> None:
    path = str(short_tmp / "nobody-home.sock")
    client = ControlClient(path, timeout=1)
    with pytest.raises(errors.ControlUnavailable) as caught:
        client.ps()
    assert path in str(caught.value)
    assert isinstance(caught.value, ConnectionError)
    assert isinstance(caught.value, errors.ControlError)


def test_a_stale_socket_file_is_control_unavailable(short_tmp: Path) -> None:
    path = short_tmp / "dead.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()
    try:
        with pytest.raises(errors.ControlUnavailable, match=str(path)):
            ControlClient(path, timeout=1).status()
    finally:
        path.unlink()


def test_a_server_that_never_answers_is_control_timeout(
    fake_server: Callable[[Handler | None], FakeServer],
) -> None:
    server = fake_server(None)  # listens, accepts into the backlog, never replies
    client = ControlClient(server.path, timeout=0.3)
    began = time.monotonic()
    with pytest.raises(errors.ControlTimeout) as caught:
        client.ps()
    assert time.monotonic() - began < 0.3 + 3.0
    assert isinstance(caught.value, TimeoutError)
    assert server.path in str(caught.value)
    assert "'ps'" in str(caught.value)
    client.close()


def test_a_connection_closed_without_a_reply_is_control_unavailable(
    fake_server: Callable[[Handler | None], FakeServer],
) -> None:
    def hang_up(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.close()

    server = fake_server(hang_up)
    with pytest.raises(errors.ControlUnavailable, match="lost the connection"):
        ControlClient(server.path, timeout=2).ps()


def test_a_reply_that_is_not_json_is_a_protocol_error(
    fake_server: Callable[[Handler | None], FakeServer],
) -> None:
    def garbage(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"this is not json\n")

    server = fake_server(garbage)
    with (
        ControlClient(server.path, timeout=2) as client,
        pytest.raises(errors.ProtocolError),
    ):
        client.ps()


# ---------------------------------------------------------------- typed errors


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (400, errors.UnknownCommand),
        (403, errors.CommandForbidden),
        (404, errors.AgentNotFound),
        (409, errors.Conflict),
        (500, errors.CommandFailed),
    ],
)
def test_error_replies_raise_the_class_of_their_code(
    fake_server: Callable[[Handler | None], FakeServer],
    code: int,
    cls: type[errors.ControlError],
) -> None:
    def reply(request: dict[str, Any]) -> dict[str, Any]:
        return {
            "status": "error",
            "code": code,
            "data": {"detail": code},
            "error": f"failed with {code}",
            "request_id": request["request_id"],
            "protocol_version": "1.0",
        }

    server = fake_server(_replying(reply))
    with ControlClient(server.path, timeout=2) as client:
        with pytest.raises(cls) as caught:
            client.call("anything")
        assert type(caught.value) is cls
        assert caught.value.code == code
        assert caught.value.message == f"failed with {code}"
        assert caught.value.data == {"detail": code}
        # request() returns the payload instead of raising.
        assert client.request("anything")["code"] == code


def test_typed_errors_from_a_real_orchestrator(serve: Serve) -> None:
    served = serve(
        agents=[(agent("forever", "thread"), "w")], allowed_commands="production"
    )
    served.wait_state("w", "READY")
    client = served.client()
    with pytest.raises(errors.AgentNotFound):
        client.status("ghost")
    with pytest.raises(errors.UnknownCommand):
        client.call("warp")
    with pytest.raises(errors.CommandForbidden):
        client.stop("w")
    with pytest.raises(errors.UnknownCommand):
        client.call("history", {"last": "x"})


def test_conflict_from_a_real_orchestrator(serve: Serve) -> None:
    served = serve(agents=[(agent("forever", "thread"), "w")])
    served.wait_state("w", "READY")
    with pytest.raises(errors.Conflict) as caught:
        served.client().start("w")
    assert caught.value.code == 409


def test_replies_to_other_requests_are_skipped(
    fake_server: Callable[[Handler | None], FakeServer],
) -> None:
    def handle(conn: socket.socket) -> None:
        for request in _lines(conn):
            rid = request["payload"]["request_id"]
            for reply_to, data in (("someone-else", {"wrong": True}), (rid, {"ok": 1})):
                conn.sendall(encode(success_reply(reply_to, data, sender="fake")))

    server = fake_server(handle)
    with ControlClient(server.path, timeout=2) as client:
        assert client.call("ps") == {"ok": 1}


def test_one_connection_is_kept_for_many_requests(
    fake_server: Callable[[Handler | None], FakeServer],
) -> None:
    def reply(request: dict[str, Any]) -> dict[str, Any]:
        rid = request["request_id"]
        return {
            "status": "success",
            "data": {"n": request["command"]},
            "request_id": rid,
        }

    server = fake_server(_replying(reply))
    with ControlClient(server.path, timeout=2) as client:
        for command in ("ps", "status", "stats"):
            assert client.call(command) == {"n": command}
    assert server.accepted == 1


def test_the_client_reconnects_after_a_timeout(
    fake_server: Callable[[Handler | None], FakeServer],
) -> None:
    def handle(conn: socket.socket) -> None:
        if server.accepted == 1:
            conn.recv(65536)  # the first connection's request is never answered
            return
        _replying(
            lambda r: {"status": "success", "data": {}, "request_id": r["request_id"]}
        )(conn)

    server = fake_server(handle)
    with ControlClient(server.path, timeout=0.3) as client:
        with pytest.raises(errors.ControlTimeout):
            client.ps()
        client.timeout = 2
        assert client.call("ps") == {}
    assert server.accepted == 2


def test_client_request_envelope(
    fake_server: Callable[[Handler | None], FakeServer],
) -> None:
    seen: list[dict[str, Any]] = []

    def handle(conn: socket.socket) -> None:
        for message in _lines(conn):
            seen.append(message)
            rid = message["payload"]["request_id"]
            conn.sendall(encode(success_reply(rid, {}, sender="fake")))

    server = fake_server(handle)
    with ControlClient(server.path, timeout=2, sender="my-cli") as client:
        client.status("w")
        client.history(last=3, agent="w")
    first, second = seen
    assert first["sender"] == "my-cli"
    assert first["event_name"] == "COMMAND"
    assert first["payload"]["command"] == "status"
    assert first["payload"]["args"] == ["w"]
    assert first["payload"]["request_id"] != second["payload"]["request_id"]
    assert second["payload"]["args"] == [{"last": 3, "agent": "w"}]


# ---------------------------------------------------------------- resolve_socket_path


@pytest.fixture
def private_dir(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fake XDG_RUNTIME_DIR; yields the private socket dir inside it (made).

    The ``*.sock`` files tests put there are plain files, removed afterwards.
    """
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_tmp))
    monkeypatch.delenv("PYORCHESTRATE_SOCKET", raising=False)
    private = short_tmp / "pyorchestrate"
    private.mkdir(mode=0o700)
    yield private
    for path in private.glob("*.sock"):
        if not path.is_socket():
            path.unlink()


def test_an_argument_beats_the_environment(
    private_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYORCHESTRATE_SOCKET", "/from/env.sock")
    assert resolve_socket_path("/given.sock") == "/given.sock"
    assert resolve_socket_path(Path("/given.sock")) == "/given.sock"
    assert ControlClient("/given.sock").socket_path == "/given.sock"


def test_the_environment_beats_the_default(
    private_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (private_dir / "Orchestrator.sock").touch()
    monkeypatch.setenv("PYORCHESTRATE_SOCKET", "/from/env.sock")
    assert resolve_socket_path() == "/from/env.sock"
    assert resolve_socket_path(None) == "/from/env.sock"
    assert ControlClient().socket_path == "/from/env.sock"


def test_the_default_is_orchestrator_sock_in_the_private_dir(private_dir: Path) -> None:
    expected = str(private_dir / "Orchestrator.sock")
    assert default_socket_path() == expected
    assert resolve_socket_path() == expected  # nothing there yet: still the default
    (private_dir / "other.sock").touch()
    (private_dir / "Orchestrator.sock").touch()
    assert resolve_socket_path() == expected  # it exists: it wins over the other


def test_the_single_socket_in_the_private_dir_is_used(private_dir: Path) -> None:
    (private_dir / "only.sock").touch()
    assert resolve_socket_path() == str(private_dir / "only.sock")
    (private_dir / "second.sock").touch()
    # Two candidates and no default: ambiguous, so the default path is used.
    assert resolve_socket_path() == str(private_dir / "Orchestrator.sock")


def test_the_default_client_reaches_a_default_orchestrator(
    private_dir: Path, serve: Serve
) -> None:
    served = serve(name="Orchestrator", command_socket_path=None)
    assert served.path == str(private_dir / "Orchestrator.sock")
    client = ControlClient(timeout=2)
    try:
        assert client.status()["name"] == "Orchestrator"
    finally:
        client.close()


def test_error_codes_of_the_error_tree() -> None:
    assert errors.ProtocolError.code == errors.UnknownCommand.code == 400
    assert errors.CommandForbidden.code == 403
    assert errors.AgentNotFound.code == 404
    assert errors.Conflict.code == 409
    assert errors.CommandFailed.code == 500
    for cls in (errors.ControlUnavailable, errors.ControlTimeout, errors.Conflict):
        assert issubclass(cls, errors.ControlError)


def _full_listener(path: Path) -> tuple[socket.socket, list[socket.socket]]:
    """A listening socket that accepts nobody, its queue filled by raw clients."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(0)
    queued: list[socket.socket] = []
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(str(path))
        except BlockingIOError:  # the queue is full now
            sock.close()
            return listener, queued
        queued.append(sock)


def test_a_full_connection_queue_is_waited_out_not_refused(short_tmp: Path) -> None:
    """A burst of clients fills the server's listen queue: a client then waits for
    room (up to its timeout) instead of failing at once with EAGAIN."""
    path = short_tmp / "busy.sock"
    listener, queued = _full_listener(path)
    accepted: list[socket.socket] = []

    def accept_later() -> None:
        time.sleep(0.3)
        for _ in range(len(queued) + 1):
            accepted.append(listener.accept()[0])

    acceptor = threading.Thread(target=accept_later)
    acceptor.start()
    try:
        client = ControlClient(str(path), timeout=10.0)
        client.connect()  # returns once the server has made room
        client.close()
    finally:
        acceptor.join(10)
        for sock in [*queued, *accepted, listener]:
            sock.close()
        path.unlink()


def test_a_queue_that_stays_full_is_a_clear_error(short_tmp: Path) -> None:
    path = short_tmp / "stuck.sock"
    listener, queued = _full_listener(path)
    try:
        with pytest.raises(errors.ControlUnavailable, match="is busy") as caught:
            ControlClient(str(path), timeout=0.3).connect()
        assert str(path) in str(caught.value)
    finally:
        for sock in [*queued, listener]:
            sock.close()
        path.unlink()
