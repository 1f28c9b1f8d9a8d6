"""Control depends on the ``ControlTarget`` protocol, not on the orchestrator.

The server and every command are driven through a proxy that lets through only the
protocol's members: a command that reached into an orchestrator internal (its
registry, worker pool, lifecycle lock, ...) would fail here. And importing the whole
control package loads no module of ``pyorchestrate.core.orchestrator``.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest

from pyorchestrate import Orchestrator
from pyorchestrate.core.agent import LoopingThreadAgent
from pyorchestrate.core.control.client import ControlClient
from pyorchestrate.core.control.permissions import COMMANDS
from pyorchestrate.core.control.server import CommandServer
from pyorchestrate.core.control.target import ControlTarget
from pyorchestrate.core.errors import AgentNotFound, CommandFailed, Conflict
from pyorchestrate.testing import wait_until

from .conftest import FAST, REPLY_TIMEOUT

MEMBERS = frozenset(name for name in vars(ControlTarget) if not name.startswith("_"))


class Loops(LoopingThreadAgent):
    def cycle(self) -> None:
        self.wait(0.01)


class OnlyTheProtocol:
    """Passes on the ``ControlTarget`` members of an orchestrator, and nothing else;
    remembers which were asked for."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self._inner = orchestrator
        self.used: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        if name not in MEMBERS:
            raise AttributeError(f"{name!r} is not a member of ControlTarget")
        self.used.add(name)
        return getattr(self._inner, name)


def test_the_protocol_names_what_the_commands_ask_for() -> None:
    assert {
        "name",
        "allowed_commands",
        "history",
        "process_stats",
        "snapshot",
        "has_agent",
        "agent_snapshots",
        "agent_details",
        "output_tail",
        "start_agent",
        "stop_agent",
        "restart_agent",
        "request_shutdown",
        "logs_dir",
        "reopen_logs",
        "ping",
        "reload",
        "record_action",
    } == MEMBERS


def test_every_command_needs_only_the_control_target(short_tmp: Path) -> None:
    orchestrator = Orchestrator("target", {**FAST, "enable_command_interface": False})
    orchestrator.register_agent(Loops, "w")
    orchestrator.register_agent(Loops, "d")
    orchestrator.add_dependency("d", "w")
    proxy = OnlyTheProtocol(orchestrator)
    path = str(short_tmp / "t.sock")
    server = CommandServer(cast(ControlTarget, proxy), path, COMMANDS, timeout=10.0)
    server.start()
    client = ControlClient(path, timeout=REPLY_TIMEOUT, sender="test")
    watcher = ControlClient(path, timeout=REPLY_TIMEOUT, sender="test")
    try:
        ps = client.ps()
        assert [row["name"] for row in ps["agents"]] == ["w", "d"]
        assert (ps["running_count"], ps["waiting_count"]) == (0, 0)
        assert client.status()["name"] == "target"
        assert client.dependencies() == {"dependencies": {"d": ["w"]}}
        with pytest.raises(AgentNotFound):
            client.status("ghost")

        assert client.start("w")["status"] == "started"
        # alive comes with the thread; AGENT_STARTED when its START message has
        # been routed, a moment later: wait for READY, which follows both.
        assert wait_until(
            lambda: client.status("w")["lifecycle_state"] == "READY", 10.0
        )
        status = client.status("w")
        assert (status["flavour"], status["output_tail"]) == ("thread", None)
        assert client.commands()["restrictions_active"] is False
        assert [row["name"] for row in client.stats()["agents"]] == ["w", "d"]
        started = client.history(agent="w", event_name="agent_started")
        assert started["count"] == 1
        assert client.history_stats(agent="w")["statistics"]["total"] >= 1
        events = watcher.subscribe(agent="w", after_seq=0, idle_timeout=REPLY_TIMEOUT)
        assert next(events)["agent"] == "w"  # the backlog, from the history

        with pytest.raises(Conflict, match="thread agent"):
            client.logs("w")  # served by the server's log streamer, via the proxy
        assert client.reopen_logs()["failed"] == []
        with pytest.raises(CommandFailed, match="not started from a file"):
            client.reload()
        with pytest.raises(Conflict, match="not an external job"):
            client.ping("w")
        assert "message" in client.restart("w")
        assert "message" in client.stop("w")
        assert client.shutdown() == {"message": "Orchestrator shutdown initiated"}
        assert orchestrator.is_shutting_down
    finally:
        client.close()
        watcher.close()
        assert server.stop(5.0)
        orchestrator.shutdown(timeout=5.0)
    assert proxy.used == MEMBERS  # every member is needed by some command


_PROBE = """
import sys
import pyorchestrate.core.control
from pyorchestrate.core.control import (
    client, commands, logfiles, logquery, logstream, paths, permissions,
    process_stats, protocol, reports, server, target,
)
print("LOADED", sorted(m for m in sys.modules
                       if m.startswith("pyorchestrate.core.orchestrator")))
"""


def test_control_never_loads_the_orchestrator() -> None:
    """At run time too (the import-linter contract sees the static imports)."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "LOADED []" in result.stdout, result.stdout


class StopsTheServerFirst(OnlyTheProtocol):
    """``request_shutdown`` stops the server from another thread and returns only
    once the server is stopping: the reply is made after the stop began."""

    server: CommandServer

    def request_shutdown(self) -> None:
        self._inner.request_shutdown()
        stopper = threading.Thread(target=self.server.stop, args=(5.0,))
        stopper.start()
        assert wait_until(lambda: self.server._stopping, 5.0)
        time.sleep(0.1)  # the server's loop has seen it
        self.stopper = stopper


def test_the_shutdown_reply_is_sent_though_the_server_stops_meanwhile(
    short_tmp: Path,
) -> None:
    orchestrator = Orchestrator("bye", {**FAST, "enable_command_interface": False})
    target = StopsTheServerFirst(orchestrator)
    path = str(short_tmp / "bye.sock")
    server = CommandServer(cast(ControlTarget, target), path, COMMANDS, timeout=10.0)
    target.server = server
    server.start()
    client = ControlClient(path, timeout=REPLY_TIMEOUT, sender="test")
    try:
        assert client.shutdown() == {"message": "Orchestrator shutdown initiated"}
    finally:
        client.close()
        target.stopper.join(10)
        assert server.stop(5.0)
        orchestrator.shutdown(timeout=5.0)
