"""Fixtures of the fleet tests: a fleet file on disk and a real ``pyorchestrate run``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pyorchestrate.core.control.client import ControlClient
from pyorchestrate.core.errors import ControlUnavailable

WAIT = 30.0
"""Longest a test waits for a fleet to reach a state (a deadline, not a timing)."""


class FleetProcess:
    """A ``pyorchestrate run FILE`` subprocess and a client of its socket."""

    def __init__(self, process: subprocess.Popen[str], socket_path: Path) -> None:
        self.process = process
        self.socket_path = socket_path
        self.stdout = ""
        self.stderr = ""

    def request(self, command: str, *args: Any) -> dict[str, Any]:
        with ControlClient(self.socket_path, timeout=10.0) as client:
            return client.request(command, *args)

    def agents(self) -> dict[str, dict[str, Any]]:
        payload = self.request("ps")
        assert payload["status"] == "success", payload
        return {a["name"]: a for a in payload["data"]["agents"]}

    def wait_for(
        self, predicate: Callable[[dict[str, dict[str, Any]]], bool], what: str
    ) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + WAIT
        while True:
            agents = self.agents()
            if predicate(agents):
                return agents
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}: {agents}")
            time.sleep(0.05)

    def finish(self, timeout: float = WAIT) -> int:
        """Wait for the exit; keep its output; return the exit code."""
        out, err = self.process.communicate(timeout=timeout)
        self.stdout += out
        self.stderr += err
        return self.process.returncode


def fleet_env(**extra: str) -> dict[str, str]:
    """The test's environment (its private XDG dirs) plus ``extra``."""
    env = dict(os.environ)
    env.update(extra)
    return env


@pytest.fixture
def write_fleet(short_tmp: Path) -> Callable[[str], Path]:
    """Write a fleet file (its ``[orchestrator]`` gets a socket in short_tmp)."""

    def write(text: str, name: str = "fleet.toml") -> Path:
        path = short_tmp / name
        path.write_text(text)
        return path

    return write


@pytest.fixture
def run_fleet(short_tmp: Path) -> Iterator[Callable[..., Any]]:
    """Start ``pyorchestrate run FILE``; wait until it answers on its socket."""
    started: list[FleetProcess] = []

    @contextmanager
    def start(
        path: Path,
        *args: str,
        env: Mapping[str, str] | None = None,
        socket_path: Path | None = None,
    ) -> Iterator[FleetProcess]:
        socket_path = socket_path or short_tmp / "fleet.sock"
        process = subprocess.Popen(
            [sys.executable, "-m", "pyorchestrate", "run", str(path), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(env or fleet_env()),
        )
        fleet = FleetProcess(process, socket_path)
        started.append(fleet)
        deadline = time.monotonic() + WAIT
        while True:
            if process.poll() is not None:
                fleet.finish()
                pytest.fail(f"pyorchestrate run ended early: {fleet.stderr}")
            try:
                fleet.request("ps")
                break
            except ControlUnavailable:
                if time.monotonic() > deadline:
                    pytest.fail("pyorchestrate run did not answer on its socket")
                time.sleep(0.05)
        yield fleet

    yield start
    for fleet in started:  # no leak: whatever a test left running ends here
        if fleet.process.poll() is None:
            fleet.process.send_signal(signal.SIGTERM)
            try:
                fleet.finish()
            except subprocess.TimeoutExpired:
                fleet.process.kill()
                fleet.finish()


def socket_line(short_tmp: Path) -> str:
    """The ``[orchestrator]`` line that puts the socket in the test's directory."""
    return f'command_socket_path = "{short_tmp / "fleet.sock"}"'
