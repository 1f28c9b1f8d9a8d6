"""``orchestrator.serve_web()``: the dashboard in the orchestrator's own process,
on a thread the orchestrator stops and joins at shutdown."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pyorchestrate import Orchestrator
from pyorchestrate.core.errors import ConfigError, LifecycleError
from tests.agents import agent

from .conftest import FAST


def _web_threads() -> list[str]:
    return [
        t.name for t in threading.enumerate() if t.name.startswith("pyorchestrate-web")
    ]


def _get(url: str) -> tuple[int, dict[str, object]]:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.status, json.load(reply)


def test_the_embedded_dashboard_answers_and_ends_with_the_orchestrator(
    short_tmp: Path,
) -> None:
    orchestrator = Orchestrator(
        "embedded",
        Orchestrator.Config(**FAST, command_socket_path=str(short_tmp / "o.sock")),
    )
    orchestrator.register_agent(agent("forever", "thread"), "worker")
    orchestrator.start()
    try:
        web = orchestrator.serve_web(port=0)
        assert web.url.startswith("http://127.0.0.1:")
        status, body = _get(web.url + "/api/agents")
        assert status == 200
        assert [a["name"] for a in body["agents"]] == ["worker"]  # type: ignore[attr-defined]
        assert "pyorchestrate-web" in _web_threads()
    finally:
        orchestrator.shutdown(timeout=2)
    assert _web_threads() == []
    with pytest.raises(urllib.error.URLError):
        _get(web.url + "/api/health")
    with pytest.raises(LifecycleError):
        orchestrator.serve_web(port=0)


def test_it_needs_the_command_interface_and_takes_the_web_settings(
    short_tmp: Path,
) -> None:
    quiet = Orchestrator(
        "quiet", Orchestrator.Config(**FAST, enable_command_interface=False)
    )
    with pytest.raises(ConfigError, match="enable_command_interface"):
        quiet.serve_web(port=0)
    quiet.shutdown()
    loud = Orchestrator(
        "loud",
        Orchestrator.Config(**FAST, command_socket_path=str(short_tmp / "l.sock")),
    )
    try:
        with pytest.raises(ConfigError, match=r"host: .0\.0\.0\.0. is not a loopback"):
            loud.serve_web(host="0.0.0.0", port=0)
        with pytest.raises(ConfigError, match="permissions"):
            loud.serve_web(port=0, permissions="operator")  # no token
    finally:
        loud.shutdown()
    assert _web_threads() == []


def test_without_the_web_extra_serve_web_names_it() -> None:
    probe = (
        "import sys\n"
        "sys.modules['starlette'] = None  # as if the [web] extra were not installed\n"
        "from pyorchestrate import Orchestrator\n"
        "o = Orchestrator('x', {'enable_command_interface': False})\n"
        "try:\n"
        "    o.serve_web()\n"
        "except ImportError as exc:\n"
        "    print('ERROR', exc)\n"
        "o.shutdown()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert (
        "ERROR serve_web needs the [web] extra (starlette is missing)" in result.stdout
    )
    assert "pip install 'pyorchestrate[web]'" in result.stdout
