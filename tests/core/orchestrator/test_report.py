"""report() and agent_status(): what they contain, and that they are JSON-safe."""

from __future__ import annotations

import json
import os

import pytest

from pyorchestrate import OrchestratorEvent, RegistrationError, RunMode
from pyorchestrate.testing import EventRecorder
from tests.agents import agent

from .conftest import MakeOrchestrator

STATUS_KEYS = {
    "name",
    "agent_name",
    "class_name",
    "flavour",
    "lifecycle_state",
    "alive",
    "started",
    "in_queue",
    "pid",
    "generation_id",
    "starts",
    "restarts",
    "uptime",
    "signal",
    "restart_policy",
    "restart_attempt",
    "next_start_in",
    "fatal_reason",
    "exit_code",
    "termination_status",
    "last_error",
    "next_run",  # scheduled agents (issue 16)
    "last_result",
    "dependencies",
    "config",
}


def test_agent_status_before_any_start(make_orchestrator: MakeOrchestrator) -> None:
    orchestrator = make_orchestrator()
    orchestrator.register_agent(
        agent("counter", "thread"), "c", custom_config={"limit": 4}
    )
    orchestrator.register_agent(agent("quick", "thread"), "d")
    orchestrator.add_dependency("d", "c")
    status = orchestrator.agent_status("c")
    assert set(status) == STATUS_KEYS
    assert status["name"] == "c"
    assert status["class_name"] == "CounterThread"
    assert status["flavour"] == "thread"
    assert status["lifecycle_state"] == "REGISTERED"
    assert status["alive"] is False
    assert status["started"] is False
    assert status["in_queue"] is False
    assert status["generation_id"] == 0
    assert status["starts"] == 0
    assert status["restarts"] == 0
    assert status["uptime"] is None
    assert status["exit_code"] is None
    assert status["last_error"] is None
    assert status["config"]["limit"] == 4  # the registered config
    assert orchestrator.agent_status("d")["dependencies"] == ["c"]
    json.dumps(status)


def test_agent_status_of_an_unknown_agent(make_orchestrator: MakeOrchestrator) -> None:
    orchestrator = make_orchestrator()
    with pytest.raises(RegistrationError, match="ghost"):
        orchestrator.agent_status("ghost")
    with pytest.raises(ValueError):
        orchestrator.get_agent("ghost")


def test_agent_status_while_running_and_after(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    orchestrator.register_agent(agent("forever", flavour), "f")
    orchestrator.register_agent(agent("boom", flavour), "b")
    orchestrator.start()
    ready = recorder.wait_for(OrchestratorEvent.AGENT_READY, "f")
    recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "b")
    running = orchestrator.agent_status("f")
    assert running["lifecycle_state"] == "READY"
    assert running["alive"] is True
    assert running["started"] is True
    assert running["generation_id"] == 1
    assert running["pid"] == ready["pid"]
    assert isinstance(running["uptime"], float) and running["uptime"] >= 0
    if flavour == "thread":
        assert running["pid"] == os.getpid()
    orchestrator.stop()
    assert orchestrator.join() == []

    stopped = orchestrator.agent_status("f")
    assert stopped["lifecycle_state"] == "TERMINATED"
    assert stopped["alive"] is False
    assert stopped["uptime"] is None
    assert stopped["termination_status"] == "success"
    failed = orchestrator.agent_status("b")
    assert failed["last_error"] == "ValueError: boom"
    assert failed["termination_status"] == "critical"
    if flavour == "process":
        assert failed["exit_code"] == 1
        assert stopped["exit_code"] == 0
    json.dumps([stopped, failed])


def test_report_contents(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator("reporter", max_workers=1, run_mode=RunMode.DAEMON)
    recorder.attach(orchestrator)
    orchestrator.register_agent(
        agent("forever", flavour), "first", custom_config={"note": "hello"}
    )
    orchestrator.register_agent(agent("quick", flavour), "second")
    orchestrator.add_dependency("second", "first")

    before = orchestrator.report()
    assert before["started"] is False
    assert [a["name"] for a in before["agents"]] == ["first", "second"]

    orchestrator.start()
    recorder.wait_for(OrchestratorEvent.AGENT_READY, "first")
    report = orchestrator.report()
    data = json.loads(json.dumps(report))
    assert data["name"] == "reporter"
    assert data["run_mode"] == "daemon"
    assert data["started"] is True
    assert data["shutdown_requested"] is False
    assert data["uptime"] >= 0
    assert data["workers"]["max_workers"] == 1
    assert data["workers"]["running_count"] == 1
    assert data["workers"]["queue"] == ["second"]
    assert data["dependencies"] == {"second": ["first"]}
    agents = {a["name"]: a for a in data["agents"]}
    assert agents["first"]["lifecycle_state"] == "READY"
    assert agents["first"]["config"]["note"] == "hello"
    assert agents["second"]["lifecycle_state"] == "QUEUED"
    assert agents["second"]["in_queue"] is True
    assert data["history"]["max_events"] == orchestrator.config.history_max_events
    assert data["history"]["last_seq"] >= 5
    assert data["callbacks"] == {"dropped": 0, "failed": 0}

    orchestrator.shutdown()
    after = orchestrator.report()
    json.dumps(after)
    assert after["shutdown_requested"] is True
    assert after["workers"]["running_count"] == 0
    assert after["workers"]["accepting"] is False
    states = {a["name"]: a["lifecycle_state"] for a in after["agents"]}
    assert states == {"first": "TERMINATED", "second": "TERMINATED"}


def test_the_orchestrator_reports_through_control_s_builders(
    make_orchestrator: MakeOrchestrator,
) -> None:
    """agent_summary/agent_summaries/agent_status stay public methods; they are
    control's JSON shapes of the orchestrator's snapshots."""
    from pyorchestrate.core.control.reports import (
        build_agent_status,
        build_agent_summary,
    )

    orchestrator = make_orchestrator()
    orchestrator.register_agent(agent("quick", "thread"), "a")
    orchestrator.register_agent(agent("quick", "thread"), "b")
    orchestrator.add_dependency("b", "a")
    details = orchestrator.agent_details("b")
    assert details.dependencies == ("a",)
    assert details.agent == orchestrator.agent_snapshot("b")
    assert orchestrator.agent_status("b") == build_agent_status(details)
    assert orchestrator.agent_summary("b") == build_agent_summary(details.agent)
    assert orchestrator.agent_summaries() == [
        build_agent_summary(s) for s in orchestrator.agent_snapshots()
    ]
    overview = orchestrator.snapshot()
    assert (overview.total_agents, overview.dependencies) == (2, {"b": ["a"]})
    assert orchestrator.has_agent("a") and not orchestrator.has_agent("ghost")
    for read in (orchestrator.agent_snapshot, orchestrator.agent_details):
        with pytest.raises(RegistrationError):
            read("ghost")
