"""Fixtures for the command-channel tests: served orchestrators and raw connections.

``serve(...)`` builds an orchestrator with a socket in a short private temp dir, starts
it and runs ``join()`` on a background thread (as an application does), then waits for
the socket to answer. Everything it made is closed and shut down after the test.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyorchestrate import Orchestrator
from pyorchestrate.core.control.client import ControlClient
from pyorchestrate.testing import wait_until

FAST: dict[str, Any] = {
    "check_interval": 0.05,
    "agent_start_timeout": 10.0,
    "agent_stop_timeout": 2.0,
    "termination_grace": 0.5,
    "run_mode": "daemon",
}
"""Small timeouts; DAEMON so join() keeps serving until the test is done."""

REPLY_TIMEOUT = 5.0
"""How long a test waits for any one reply (a bound, never an expectation)."""


def request_line(
    command: str, *args: Any, request_id: str | None = None, bare: bool = False
) -> tuple[bytes, str]:
    """A request line (envelope, or bare payload) and its request_id."""
    rid = request_id or uuid.uuid4().hex
    payload = {"command": command, "args": list(args), "request_id": rid}
    message = (
        payload
        if bare
        else {
            "sender": "test",
            "event_name": "COMMAND",
            "timestamp": "2026-01-01T00:00:00+00:00",
            "payload": payload,
        }
    )
    return (json.dumps(message) + "\n").encode(), rid


class RawConn:
    """A plain AF_UNIX connection that reads newline-delimited lines."""

    def __init__(self, path: str, timeout: float = REPLY_TIMEOUT) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Blocking: a burst may fill the server's listen queue; wait for room
        # (in timeout mode an AF_UNIX connect fails at once with EAGAIN).
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.buffer = bytearray()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, command: str, *args: Any) -> str:
        """Send one request; return its request_id."""
        line, rid = request_line(command, *args)
        self.send(line)
        return rid

    def read_line(self, timeout: float | None = None) -> bytes | None:
        """The next line (without ``\\n``), or ``None`` at end of stream."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            newline = self.buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self.buffer[:newline])
                del self.buffer[: newline + 1]
                return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no complete line in time")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if self.buffer:
                    raise AssertionError(
                        f"stream ended mid-line: {bytes(self.buffer)!r}"
                    )
                return None
            self.buffer += chunk

    def read_json(self, timeout: float | None = None) -> dict[str, Any]:
        line = self.read_line(timeout)
        assert line is not None, "the server closed the connection instead of replying"
        message = json.loads(line)
        assert isinstance(message, dict)
        return message

    def reply(self, command: str, *args: Any) -> dict[str, Any]:
        """Send one request and return its reply payload (checks the request_id)."""
        rid = self.request(command, *args)
        message = self.read_json()
        assert message["event_name"] == "STATUS", message
        assert message["payload"]["request_id"] == rid, message
        payload: dict[str, Any] = message["payload"]
        return payload

    def at_eof(self, timeout: float | None = None) -> bool:
        """Whether the server closed the stream (after any remaining lines)."""
        return self.read_line(timeout) is None

    def close(self) -> None:
        self.sock.close()


class Served:
    """An orchestrator whose ``join()`` runs on a thread, serving its socket."""

    def __init__(self, orchestrator: Orchestrator, path: str) -> None:
        self.orchestrator = orchestrator
        self.path = path
        self.join_result: Any = None
        self.join_error: BaseException | None = None
        self._conns: list[RawConn | ControlClient] = []
        self.joiner = threading.Thread(target=self._join, name="test-joiner")

    def _join(self) -> None:
        try:
            self.join_result = self.orchestrator.join()
        except BaseException as exc:  # reported by the test or the fixture
            self.join_error = exc

    def client(self, timeout: float = REPLY_TIMEOUT) -> ControlClient:
        client = ControlClient(self.path, timeout=timeout, sender="test")
        self._conns.append(client)
        return client

    def raw(self, timeout: float = REPLY_TIMEOUT) -> RawConn:
        conn = RawConn(self.path, timeout)
        self._conns.append(conn)
        return conn

    def state(self, agent: str) -> str:
        return str(self.orchestrator.agent_status(agent)["lifecycle_state"])

    def wait_state(self, agent: str, *states: str, timeout: float = 10.0) -> None:
        assert wait_until(lambda: self.state(agent) in states, timeout), (
            f"{agent} is {self.state(agent)}, expected one of {states}"
        )

    def close_connections(self) -> None:
        for conn in self._conns:
            conn.close()
        self._conns.clear()

    def teardown(self) -> None:
        self.close_connections()
        self.orchestrator.shutdown(timeout=2.0)
        if self.joiner.is_alive():
            self.joiner.join(15)
        assert not self.joiner.is_alive(), "join() did not return after shutdown()"


AgentSpec = tuple[type, str] | tuple[type, str, dict[str, Any]]
Serve = Callable[..., Served]


def _answers(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


@pytest.fixture
def serve(short_tmp: Path) -> Iterator[Serve]:
    """``serve(agents=[(cls, name[, kwargs])], dependencies={}, name=None, **config)``.

    The socket is ``<short_tmp>/o<n>.sock`` unless ``command_socket_path`` is given.
    """
    made: list[Served] = []
    counter = iter(range(1000))

    def make(
        agents: Iterable[AgentSpec] = (),
        dependencies: dict[str, list[str]] | None = None,
        name: str | None = None,
        **config: Any,
    ) -> Served:
        n = next(counter)
        settings = {**FAST, "command_socket_path": str(short_tmp / f"o{n}.sock")}
        orchestrator = Orchestrator(
            name or f"ctl{n}", Orchestrator.Config(**{**settings, **config})
        )
        path = orchestrator.command_socket_path
        served = Served(orchestrator, path)
        made.append(served)
        for spec in agents:
            cls, agent_name, *rest = spec
            orchestrator.register_agent(cls, agent_name, **(rest[0] if rest else {}))
        for agent_name, deps in (dependencies or {}).items():
            orchestrator.add_dependency(agent_name, deps)
        orchestrator.start()
        served.joiner.start()
        up = wait_until(
            lambda: _answers(path) or not served.joiner.is_alive(), timeout=10.0
        )
        if served.join_error is not None:
            raise served.join_error
        assert up and _answers(path), f"nothing answers on {path}"
        return served

    yield make
    errors = []
    for served in made:
        try:
            served.teardown()
        except AssertionError as exc:
            errors.append(str(exc))
    assert not errors, errors
