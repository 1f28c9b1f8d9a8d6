"""A real Prometheus (Debian's) scrapes the dashboard's /metrics on 127.0.0.1 every
second and sees an agent's restarts counter go up after a kill. Its first scrape
comes about 6 s after it starts (a fixed target sync): this is the one test that
pays for it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyorchestrate import Orchestrator
from tests.agents import agent

from ._binaries import PROMETHEUS, require
from .conftest import MakeFleet, MakeServer

pytestmark = pytest.mark.slow

RESTART_FAST = {
    "restart": "always",
    "immediate_restarts": 0,
    "backoff_initial": 0.05,
    "backoff_jitter": 0,
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=5) as reply:
            body: bytes = reply.read()
            return body

    def value(self, query: str) -> float | None:
        body = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": query}))
        result = json.loads(body)["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def wait(self, what: str, check: object, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if check():  # type: ignore[operator]
                    return
            except OSError:
                pass  # not listening yet
            time.sleep(0.2)
        raise AssertionError(f"Prometheus: {what} within {timeout:g} s")


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[object]:
    require(PROMETHEUS)
    started: list[subprocess.Popen[bytes]] = []

    def start(target: str) -> Prometheus:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: pyorchestrate\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        port = _free_port()
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        server = Prometheus(f"http://127.0.0.1:{port}")
        server.wait("ready", lambda: server.get("/-/ready"))
        return server

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_prometheus_sees_the_restarts_counter_go_up_after_a_kill(
    make_fleet: MakeFleet, make_server: MakeServer, prometheus_for: object
) -> None:
    def register(orchestrator: Orchestrator) -> None:
        orchestrator.register_agent(
            agent("forever", "process"), "proc", supervision=RESTART_FAST
        )

    fleet = make_fleet(register)
    fleet.wait_state("proc", "READY")
    server = make_server(socket_path=fleet.socket)
    prometheus = prometheus_for(server.url.removeprefix("http://"))  # type: ignore[operator]
    restarts = 'pyorchestrate_agent_restarts_total{agent="proc"}'
    prometheus.wait("first scrape", lambda: prometheus.value(restarts) == 0)
    os.kill(fleet.orchestrator.agent_status("proc")["pid"], signal.SIGKILL)
    prometheus.wait("the restart", lambda: (prometheus.value(restarts) or 0) >= 1)
    # The error's label set was there at 0 before it, so increase() sees the first.
    errors = 'increase(pyorchestrate_events_total{event="agent_error"}[1m])'
    prometheus.wait("the first error", lambda: (prometheus.value(errors) or 0) > 0)
    assert prometheus.value("up") == 1
    fleet.wait_state("proc", "READY")
    fleet.orchestrator.stop_agent("proc")
