"""Fixtures for the dashboard tests: a real orchestrator on a real Unix socket, and
the dashboard over it (Starlette's TestClient, or uvicorn on 127.0.0.1).

Everything is per test: a process agent, a restart or a browser started in a test
must be gone at its end (the suite's ``no_leaks`` check counts every child process).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from pyorchestrate import Orchestrator, RunMode
from pyorchestrate.core.control.client import ControlClient
from pyorchestrate.core.errors import ControlError
from pyorchestrate.testing import wait_until
from pyorchestrate.web import WebServer, build_app
from tests.agents import agent

FAST: dict[str, Any] = {
    "run_mode": RunMode.DAEMON,
    "check_interval": 0.05,
    "agent_start_timeout": 10.0,
    "agent_stop_timeout": 1.0,
    "termination_grace": 0.5,
}

LOCAL = "http://127.0.0.1"
"""The TestClient's base URL: the dashboard answers loopback host names only."""

XSS = "<script>alert(1)</script>"
"""An agent name that must render as text, never run."""


class Fleet:
    """A DAEMON orchestrator on ``socket``, ``join()`` on a thread, its agents up."""

    def __init__(
        self,
        socket: Path,
        register: Callable[[Orchestrator], None] | None = None,
        **config: Any,
    ) -> None:
        self.orchestrator = Orchestrator(
            "web-test",
            Orchestrator.Config(
                **{**FAST, "command_socket_path": str(socket), **config}
            ),
        )
        self.socket = str(socket)
        if register is None:
            self.orchestrator.register_agent(agent("forever", "thread"), "worker")
            self.orchestrator.register_agent(agent("boom", "thread"), "boom")
            self.orchestrator.add_dependency("boom", ["worker"])
        else:
            register(self.orchestrator)
        self.orchestrator.start()
        self.thread = threading.Thread(target=self.orchestrator.join, name="web-join")
        self.thread.start()
        assert wait_until(self.answers, 10), f"nothing answers on {socket}"

    def answers(self) -> bool:
        try:
            with ControlClient(self.socket, timeout=1.0) as client:
                client.request("status")
        except ControlError:
            return False
        return True

    def state(self, name: str) -> str:
        return str(self.orchestrator.agent_status(name)["lifecycle_state"])

    def wait_state(self, name: str, *states: str, timeout: float = 10.0) -> None:
        assert wait_until(lambda: self.state(name) in states, timeout), (
            f"{name} is {self.state(name)}, expected one of {states}"
        )

    def close(self) -> None:
        self.orchestrator.shutdown(timeout=2.0)
        self.thread.join(15)
        assert not self.thread.is_alive(), "join() did not return after shutdown()"


MakeFleet = Callable[..., Fleet]


@pytest.fixture
def make_fleet(short_tmp: Path) -> Iterator[MakeFleet]:
    made: list[Fleet] = []

    def make(
        register: Callable[[Orchestrator], None] | None = None, **config: Any
    ) -> Fleet:
        fleet = Fleet(short_tmp / f"o{len(made)}.sock", register, **config)
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        fleet.close()


@pytest.fixture
def fleet(make_fleet: MakeFleet) -> Fleet:
    """``worker`` (READY, forever) and ``boom`` (after ``worker``; TERMINATED,
    ``ValueError: boom``)."""
    made = make_fleet()
    made.wait_state("worker", "READY")
    made.wait_state("boom", "TERMINATED")
    return made


@pytest.fixture
def api(fleet: Fleet) -> Iterator[TestClient]:
    """The dashboard over ``fleet``, through Starlette's TestClient."""
    with TestClient(base_url=LOCAL, app=build_app(socket_path=fleet.socket)) as client:
        yield client


MakeServer = Callable[..., WebServer]


@pytest.fixture
def make_server() -> Iterator[MakeServer]:
    """``make_server(**settings)``: the dashboard served by uvicorn on 127.0.0.1
    (a free port), stopped and joined after the test."""
    made: list[WebServer] = []

    def make(**settings: Any) -> WebServer:
        server = WebServer(**{"host": "127.0.0.1", "port": 0, **settings})
        made.append(server)
        return server.start()

    yield make
    for server in made:
        server.stop()
