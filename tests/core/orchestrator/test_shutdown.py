"""shutdown(): cooperative stop, escalation of stubborn agents, survivors, teardown."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from pyorchestrate import (
    AgentState,
    LifecycleError,
    Orchestrator,
    OrchestratorEvent,
)
from pyorchestrate.testing import EventRecorder
from tests.agents import (
    StubbornProcess,
    StubbornThread,
    TermCleanupMarkerProcess,
    agent,
)

from .conftest import MakeOrchestrator

MARGIN = 3.0
"""Slack for a loaded 2-core machine on top of the configured budgets (seconds)."""


def _threads_of(orchestrator: Orchestrator) -> list[str]:
    prefixes = (
        f"pyorchestrate-router-{orchestrator.name}",
        f"pyorchestrate-{orchestrator.name}-callbacks",
    )
    return [t.name for t in threading.enumerate() if t.name.startswith(prefixes)]


def test_cooperative_agents_stop_and_nothing_survives(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    for name in ("a", "b"):
        orchestrator.register_agent(agent("forever", flavour), name)
    orchestrator.start()
    for name in ("a", "b"):
        recorder.wait_for(OrchestratorEvent.AGENT_READY, name)
    assert orchestrator.shutdown() == []
    for name in ("a", "b"):
        entry = orchestrator.get_agent(name)
        assert entry.state is AgentState.TERMINATED
        assert not entry.is_alive()
        terminated = recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, name)
        assert terminated["termination_status"] == "success"
        if flavour == "process":
            assert terminated["exit_code"] == 0
    assert recorder.of(OrchestratorEvent.AGENT_ERROR) == []
    (record,) = orchestrator.events(event_name="SHUTDOWN")
    assert record.data["total_agents"] == "2"
    assert record.data["surviving_agents"] == "0"


@pytest.mark.process
def test_a_stubborn_process_is_killed_within_the_bound(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make_orchestrator(agent_stop_timeout=0.5, termination_grace=0.5)
    recorder.attach(orchestrator)
    entry = orchestrator.register_agent(StubbornProcess, "mule")
    orchestrator.start()
    recorder.wait_for(OrchestratorEvent.AGENT_READY, "mule")
    began = time.monotonic()
    survivors = orchestrator.shutdown()
    elapsed = time.monotonic() - began
    assert survivors == []
    assert elapsed < 0.5 + 2 * 0.5 + MARGIN
    assert not entry.is_alive()
    assert entry.state is AgentState.TERMINATED
    error = recorder.wait_for(OrchestratorEvent.AGENT_ERROR, "mule")
    assert error["signal"] == "SIGKILL"
    assert error["exit_code"] == -9
    assert error["reason"] == "killed"
    terminated = recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "mule")
    assert terminated["seq"] > error["seq"]
    assert terminated["exit_code"] == -9


@pytest.mark.process
def test_shutdown_timeout_overrides_the_configured_budget(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make_orchestrator(agent_stop_timeout=30.0, termination_grace=0.5)
    recorder.attach(orchestrator)
    orchestrator.register_agent(StubbornProcess, "mule")
    orchestrator.start()
    recorder.wait_for(OrchestratorEvent.AGENT_READY, "mule")
    began = time.monotonic()
    assert orchestrator.shutdown(timeout=0.3) == []
    assert time.monotonic() - began < 0.3 + 2 * 0.5 + MARGIN


@pytest.mark.process
def test_sigterm_unwinds_a_process_agent_and_runs_on_close(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, tmp_path: Path
) -> None:
    """TermCleanupProcess ignores the stop request; SIGTERM ends it through on_close.

    The marker subclass writes a file in on_close: a message on ``msg_channel`` could
    be lost when the process ends by SIGTERM right after queueing it.
    """
    marker = tmp_path / "closed"
    orchestrator = make_orchestrator(agent_stop_timeout=0.3, termination_grace=2.0)
    recorder.attach(orchestrator)
    entry = orchestrator.register_agent(
        TermCleanupMarkerProcess, "cleanup", marker=str(marker)
    )
    orchestrator.start()
    recorder.wait_for(OrchestratorEvent.AGENT_READY, "cleanup")
    assert orchestrator.shutdown() == []
    assert marker.read_text() == "on_close ran"
    assert entry.exit_code == -15
    assert entry.state is AgentState.TERMINATED
    error = recorder.wait_for(OrchestratorEvent.AGENT_ERROR, "cleanup")
    assert error["signal"] == "SIGTERM"
    terminated = recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "cleanup")
    # It closed itself (CLOSE was sent), flagged by the interruption.
    assert terminated["termination_status"] == "warning"
    assert terminated["signal"] == "SIGTERM"


def test_a_stubborn_thread_is_returned_as_a_survivor(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder
) -> None:
    """The brief's StubbornThread, released through its ``release`` kwarg."""
    orchestrator = make_orchestrator(agent_stop_timeout=0.3)
    recorder.attach(orchestrator)
    release = threading.Event()
    entry = orchestrator.register_agent(StubbornThread, "stubborn", release=release)
    try:
        orchestrator.start()
        recorder.wait_for(OrchestratorEvent.AGENT_READY, "stubborn")
        assert orchestrator.shutdown() == ["stubborn"]
        assert entry.state is AgentState.QUARANTINED
        assert entry.is_alive()
    finally:
        release.set()
        if entry.is_initialized:
            entry.require_instance().join(10)
    assert not entry.is_alive()


def test_a_thread_that_will_not_stop_is_quarantined_and_reported(
    make_orchestrator: MakeOrchestrator,
    recorder: EventRecorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    orchestrator = make_orchestrator(agent_stop_timeout=0.3)
    recorder.attach(orchestrator)
    gate = threading.Event()
    entry = orchestrator.register_agent(StubbornThread, "stubborn", release=gate)
    orchestrator.register_agent(agent("forever", "thread"), "polite")
    try:
        orchestrator.start()
        recorder.wait_for(OrchestratorEvent.AGENT_READY, "stubborn")
        began = time.monotonic()
        with caplog.at_level(logging.CRITICAL, logger="pyorchestrate"):
            assert orchestrator.shutdown() == ["stubborn"]
        assert time.monotonic() - began < 0.3 + MARGIN
        critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
        assert any("stubborn" in r.getMessage() for r in critical)
        assert entry.state is AgentState.QUARANTINED
        assert entry.is_alive()
        assert orchestrator.get_agent("polite").state is AgentState.TERMINATED
        (record,) = orchestrator.events(event_name="SHUTDOWN")
        assert record.data["surviving_agents"] == "1"
        assert record.data["survivors"] == "stubborn"
        assert orchestrator.agent_status("stubborn")["lifecycle_state"] == "QUARANTINED"
        assert orchestrator.shutdown() == []  # already done
    finally:
        gate.set()
        entry.require_instance().join(10)
    assert not entry.is_alive()


def test_stop_does_not_wait_for_the_agents(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make_orchestrator(agent_stop_timeout=0.3)
    recorder.attach(orchestrator)
    gate = threading.Event()
    entry = orchestrator.register_agent(StubbornThread, "stubborn", release=gate)
    try:
        orchestrator.start()
        recorder.wait_for(OrchestratorEvent.AGENT_READY, "stubborn")
        stopper = threading.Thread(target=orchestrator.stop)
        stopper.start()
        stopper.join(5)
        assert not stopper.is_alive()  # returned while the agent still runs
        assert entry.is_alive()
        assert entry.state is AgentState.STOPPING
        # join() then finishes the shutdown and reports the survivor.
        assert orchestrator.join() == ["stubborn"]
    finally:
        gate.set()
        entry.require_instance().join(10)


def test_shutdown_of_an_agent_still_starting(
    make_orchestrator: MakeOrchestrator,
    recorder: EventRecorder,
    flavour: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Stopped before it reported START, the agent ends without one: it is not a survivor."""
    # A failure here can log the same router error thousands of times: keep it out.
    caplog.set_level(logging.CRITICAL, logger="pyorchestrate.router")
    caplog.set_level(logging.CRITICAL, logger="pyorchestrate.lifecycle")
    orchestrator = make_orchestrator(agent_stop_timeout=0.5, termination_grace=0.5)
    recorder.attach(orchestrator)
    entry = orchestrator.register_agent(agent("never_starts", flavour), "late")
    orchestrator.start()
    began = time.monotonic()
    survivors = orchestrator.shutdown()
    elapsed = time.monotonic() - began
    outcome = {
        "survivors": survivors,
        "alive": entry.is_alive(),
        "final": entry.state in (AgentState.TERMINATED, AgentState.FAILED),
        "errors": min(
            len(orchestrator.events(1000, agent="late", event_name="agent_error")), 2
        ),
        "terminated": len(
            orchestrator.events(1000, agent="late", event_name="agent_terminated")
        ),
    }
    # At most one AGENT_ERROR (a process is reported killed by SIGTERM), not a flood.
    assert outcome["errors"] <= 1, outcome
    outcome.pop("errors")
    assert outcome == {"survivors": [], "alive": False, "final": True, "terminated": 1}
    assert elapsed < 0.5 + 2 * 0.5 + MARGIN


def test_second_shutdown_returns_nothing_and_everything_is_torn_down(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator("teardown")
    recorder.attach(orchestrator)
    orchestrator.register_agent(agent("forever", flavour), "f")
    orchestrator.start()
    recorder.wait_for(OrchestratorEvent.AGENT_READY, "f")
    assert orchestrator.router.running
    assert _threads_of(orchestrator)
    assert orchestrator.shutdown() == []
    assert orchestrator.shutdown() == []
    assert len(orchestrator.events(event_name="SHUTDOWN")) == 1
    assert not orchestrator.router.running
    assert _threads_of(orchestrator) == []
    assert orchestrator.event_bus.closed
    with pytest.raises(LifecycleError):
        orchestrator.start()
    with pytest.raises(LifecycleError, match="cannot accept new starts"):
        orchestrator.start_agent("f")


def test_shutdown_without_start(make_orchestrator: MakeOrchestrator) -> None:
    orchestrator = make_orchestrator()
    orchestrator.register_agent(agent("quick", "thread"), "q")
    assert orchestrator.shutdown() == []
    assert orchestrator.get_agent("q").generation_id == 0
    (record,) = orchestrator.events(event_name="SHUTDOWN")
    assert record.data["total_agents"] == "1"


def test_the_context_manager_shuts_down(recorder: EventRecorder, flavour: str) -> None:
    config = Orchestrator.Config(
        enable_command_interface=False, check_interval=0.05, agent_stop_timeout=2.0
    )
    with Orchestrator("ctx", config) as orchestrator:
        recorder.attach(orchestrator)
        orchestrator.register_agent(agent("forever", flavour), "f")
        orchestrator.start()
        recorder.wait_for(OrchestratorEvent.AGENT_READY, "f")
    assert orchestrator.get_agent("f").state is AgentState.TERMINATED
    assert _threads_of(orchestrator) == []
