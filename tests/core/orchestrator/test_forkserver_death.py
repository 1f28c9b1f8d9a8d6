"""Process agents do not depend on the forkserver that started them staying alive.

The forkserver forks every process agent and, while it lives, reports their exit
status through a pipe. The OOM killer or a stray ``kill`` can end it as easily as an
agent: running agents must go on, their end must be seen on their own pid, and an
agent whose exit status went with the forkserver is reported as failed, never as a
clean end.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from pyorchestrate import AgentState, OrchestratorEvent
from pyorchestrate.testing import EventRecorder
from tests.agents import CloseMarkerProcess

from .conftest import MakeOrchestrator, state_of

pytestmark = pytest.mark.process


def _kill_the_forkserver() -> None:
    """SIGKILL this process's forkserver and wait until it is dead (a zombie: its
    status pipes are closed, so whatever watched them has seen end of file)."""
    servers = [
        child
        for child in psutil.Process().children()
        if "forkserver" in " ".join(child.cmdline())
    ]
    assert len(servers) == 1, servers
    (server,) = servers
    os.kill(server.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server.status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the forkserver did not die"
        time.sleep(0.01)


def test_running_agents_outlive_the_forkserver_and_close_as_usual(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, tmp_path: Path
) -> None:
    orchestrator = make_orchestrator(start_method="forkserver")
    recorder.attach(orchestrator)
    marker = tmp_path / "closed"
    entry = orchestrator.register_agent(CloseMarkerProcess, "w", marker=str(marker))
    orchestrator.start()
    recorder.wait_for(OrchestratorEvent.AGENT_READY, "w")
    pid = entry.pid
    assert pid is not None

    _kill_the_forkserver()
    # Give the router every chance to (wrongly) take the closed status pipe for an end.
    time.sleep(0.3)
    assert state_of(orchestrator, "w") is AgentState.READY
    assert entry.is_alive()
    assert psutil.Process(pid).is_running()
    assert recorder.of(OrchestratorEvent.AGENT_TERMINATED, "w") == []

    orchestrator.stop_agent("w")
    terminated = recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "w")
    assert marker.read_text() == "on_close ran"  # it closed as usual
    assert recorder.of(OrchestratorEvent.AGENT_ERROR, "w") == []
    # It said how it closed; the code it exits with follows from that.
    assert terminated["exit_code"] == 0
    assert terminated["termination_status"] == "success"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() in (
        psutil.STATUS_ZOMBIE,
        psutil.STATUS_DEAD,
    )


def test_an_agent_killed_after_the_forkserver_died_is_a_failure_and_restarts(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, tmp_path: Path
) -> None:
    orchestrator = make_orchestrator(start_method="forkserver")
    recorder.attach(orchestrator)
    entry = orchestrator.register_agent(
        CloseMarkerProcess,
        "w",
        marker=str(tmp_path / "closed"),
        supervision={"restart": "on-failure", "immediate_restarts": 1},
    )
    orchestrator.start()
    recorder.wait_for(OrchestratorEvent.AGENT_READY, "w")
    first_pid = entry.pid
    assert first_pid is not None

    _kill_the_forkserver()
    os.kill(first_pid, signal.SIGKILL)
    error = recorder.wait_for(OrchestratorEvent.AGENT_ERROR, "w")
    assert error["reason"] == "process_lost"
    assert error["exit_code"] is None
    assert "forkserver" in str(error["error_message"])
    assert error["pid"] == first_pid
    # A failure, so the restart policy applies; a new forkserver starts the agent.
    recorder.wait_for(OrchestratorEvent.AGENT_RESTARTING, "w")
    ready = recorder.wait_for(OrchestratorEvent.AGENT_READY, "w", count=2)
    assert ready["generation_id"] == 2
    assert entry.pid not in (None, first_pid)
    orchestrator.stop()
    assert orchestrator.join() == []
