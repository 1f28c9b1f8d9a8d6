"""Death detection: killed, exited, crashed process agents; generations and restarts."""

from __future__ import annotations

import logging
import os
import signal

import pytest

from pyorchestrate import AgentState, OrchestratorEvent, StartStatus
from pyorchestrate.core.utilities.messaging import MessageType, ServiceMessage
from pyorchestrate.testing import EventRecorder
from tests.agents import ExitProcess, SegfaultProcess, SleepForeverProcess, agent

from .conftest import MakeOrchestrator


def _error_then_terminated(
    recorder: EventRecorder, name: str
) -> tuple[dict[str, object], dict[str, object]]:
    error = recorder.wait_for(OrchestratorEvent.AGENT_ERROR, name)
    terminated = recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, name)
    assert error["seq"] < terminated["seq"]  # type: ignore[operator]
    return error, terminated


@pytest.mark.process
def test_sigkill_is_reported_and_the_orchestrator_goes_on(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder
) -> None:
    # A long check interval: the death must be seen on the process sentinel,
    # not by a periodic poll.
    orchestrator = make_orchestrator(check_interval=30.0)
    recorder.attach(orchestrator)
    victim = orchestrator.register_agent(SleepForeverProcess, "victim")
    orchestrator.register_agent(agent("forever", "process"), "bystander")
    orchestrator.start()
    recorder.wait_for(OrchestratorEvent.AGENT_READY, "victim")
    recorder.wait_for(OrchestratorEvent.AGENT_READY, "bystander")
    pid = victim.pid
    assert pid is not None and pid != os.getpid()

    os.kill(pid, signal.SIGKILL)
    error, terminated = _error_then_terminated(recorder, "victim")
    assert error["signal"] == "SIGKILL"
    assert error["exit_code"] == -9
    assert error["reason"] == "killed"
    assert "SIGKILL" in str(error["error_message"])
    assert error["pid"] == pid
    assert error["generation_id"] == 1
    assert terminated["exit_code"] == -9
    assert terminated["signal"] == "SIGKILL"
    assert victim.state is AgentState.TERMINATED
    (record,) = orchestrator.events(agent="victim", event_name="agent_error")
    assert record.data["signal"] == "SIGKILL"
    assert record.data["exit_code"] == "-9"

    # The orchestrator goes on: the other agent is untouched, a restart works.
    bystander = orchestrator.get_agent("bystander")
    assert bystander.state is AgentState.READY
    assert bystander.is_alive()
    assert recorder.of(OrchestratorEvent.AGENT_ERROR, "bystander") == []
    assert orchestrator.start_agent("victim").status is StartStatus.STARTED
    restarted = recorder.wait_for(OrchestratorEvent.AGENT_READY, "victim", count=2)
    assert restarted["generation_id"] == 2
    assert victim.pid != pid
    orchestrator.stop()
    assert orchestrator.join() == []


@pytest.mark.process
def test_os_exit_is_reported_with_its_exit_code(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    entry = orchestrator.register_agent(ExitProcess, "exiter")
    orchestrator.start()
    error, terminated = _error_then_terminated(recorder, "exiter")
    assert error["exit_code"] == 3
    assert error["reason"] == "exited"
    assert error["signal"] is None
    assert "3" in str(error["error_message"])
    assert terminated["exit_code"] == 3
    assert orchestrator.join() == []
    assert entry.state is AgentState.TERMINATED
    assert entry.exit_code == 3
    assert orchestrator.agent_status("exiter")["last_error"] == error["error_message"]


@pytest.mark.process
def test_a_segfault_is_reported(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    orchestrator.register_agent(SegfaultProcess, "crasher")
    orchestrator.start()
    error, terminated = _error_then_terminated(recorder, "crasher")
    assert error["signal"] == "SIGSEGV"
    assert error["exit_code"] == -signal.SIGSEGV
    assert error["reason"] == "killed"
    assert terminated["exit_code"] == -signal.SIGSEGV
    assert orchestrator.join() == []


@pytest.mark.process
def test_an_exception_gives_exactly_one_error(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    orchestrator.register_agent(agent("boom", "process"), "boom")
    orchestrator.start()
    assert orchestrator.join() == []
    error, terminated = _error_then_terminated(recorder, "boom")
    assert error["error_message"] == "ValueError: boom"
    assert error["reason"] == "exception"
    assert len(recorder.of(OrchestratorEvent.AGENT_ERROR, "boom")) == 1
    assert terminated["exit_code"] == 1
    assert terminated["termination_status"] == "critical"


# ---------------------------------------------------------------- generations


@pytest.fixture
def restarted(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> object:
    """An orchestrator whose agent ``q`` ran, terminated and ran again (generation 2)."""
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    orchestrator.register_agent(agent("quick", flavour), "q")
    orchestrator.start()
    first = recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "q")
    assert first["generation_id"] == 1
    assert orchestrator.get_agent("q").state is AgentState.TERMINATED
    assert orchestrator.start_agent("q").status is StartStatus.STARTED
    recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "q", count=2)
    return orchestrator


def test_a_restart_gets_the_next_generation(
    restarted: object, recorder: EventRecorder
) -> None:
    orchestrator = restarted
    entry = orchestrator.get_agent("q")  # type: ignore[attr-defined]
    assert entry.generation_id == 2
    assert entry.starts == 2
    assert orchestrator.agent_status("q")["restarts"] == 1  # type: ignore[attr-defined]
    started = recorder.of(OrchestratorEvent.AGENT_STARTED, "q")
    assert [e["generation_id"] for e in started] == [1, 2]
    records = orchestrator.events(agent="q", event_name="agent_started")  # type: ignore[attr-defined]
    assert [r.data["generation_id"] for r in records] == ["1", "2"]


def test_a_late_message_of_an_older_generation_is_ignored(restarted: object) -> None:
    orchestrator = restarted
    entry = orchestrator.get_agent("q")  # type: ignore[attr-defined]
    lifecycle = orchestrator.lifecycle  # type: ignore[attr-defined]
    before = orchestrator.history.last_seq  # type: ignore[attr-defined]
    # A heartbeat takes no seq of its own: count what was recorded as well.
    recorded = orchestrator.history.stats()["total"]  # type: ignore[attr-defined]

    def status(event: str, generation: int) -> ServiceMessage:
        return ServiceMessage(
            "q",
            MessageType.STATUS,
            {"event": event, "error": "late", "generation_id": generation},
        )

    with lifecycle.lock:
        for event in ("agent_error", "agent_heartbeat", "agent_started", "agent_ready"):
            lifecycle.on_message(entry, status(event, 1))
    assert orchestrator.history.last_seq == before  # type: ignore[attr-defined]
    assert orchestrator.history.stats()["total"] == recorded  # type: ignore[attr-defined]
    assert entry.last_error is None
    assert entry.state is AgentState.TERMINATED

    # The same message from the current generation is not ignored.
    with lifecycle.lock:
        lifecycle.on_message(entry, status("agent_error", 2))
    (error,) = orchestrator.events(agent="q", event_name="agent_error")  # type: ignore[attr-defined]
    assert error.data["error_message"] == "late"
    assert error.data["generation_id"] == "2"


# ---------------------------------------------------------------- odd messages


def test_odd_messages_only_log(
    make_orchestrator: MakeOrchestrator, caplog: pytest.LogCaptureFixture
) -> None:
    orchestrator = make_orchestrator()
    entry = orchestrator.register_agent(agent("quick", "thread"), "q")
    lifecycle = orchestrator.lifecycle
    before = orchestrator.history.last_seq
    with caplog.at_level(logging.WARNING, logger="pyorchestrate"), lifecycle.lock:
        lifecycle.on_message(entry, "not a message")
        lifecycle.on_message(entry, ServiceMessage("q", MessageType.DATA, {"x": 1}))
        lifecycle.on_message(
            entry, ServiceMessage("q", MessageType.STATUS, {"event": "agent_dancing"})
        )
    assert orchestrator.history.last_seq == before
    assert entry.state is AgentState.REGISTERED
    assert "agent_dancing" in caplog.text
    assert "str" in caplog.text  # the non-message is named by its type


def test_a_legacy_error_event_maps_to_agent_error(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    entry = orchestrator.register_agent(agent("quick", "thread"), "q")
    with orchestrator.lifecycle.lock:
        orchestrator.lifecycle.on_message(
            entry,
            ServiceMessage(
                "q", MessageType.STATUS, {"event": "ERROR", "message": "old"}
            ),
        )
        orchestrator.lifecycle.on_message(
            entry, ServiceMessage("q", MessageType.STATUS, {"event": "agent_error"})
        )
    first = recorder.wait_for(OrchestratorEvent.AGENT_ERROR, "q")
    assert first["error_message"] == "old"
    second = recorder.wait_for(OrchestratorEvent.AGENT_ERROR, "q", count=2)
    assert second["error_message"] == "Unknown error"
