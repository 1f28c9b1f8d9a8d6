"""OneShotAgent: runs its task once, then closes (§11.3: our own design)."""

from __future__ import annotations

import pytest

from pyorchestrate.core.agent import ControlEvents, OneShotThreadAgent, make_event
from pyorchestrate.core.utilities.event import OrchestratorEvent
from pyorchestrate.core.utilities.messaging import MessageChannel
from pyorchestrate.testing import EventRecorder
from tests.agents import (
    OneShotProbeThread,
    QuickThread,
    agent,
    new_orchestrator,
    read_until_closed,
    run_to_end,
    trace,
)


def test_task_runs_once_then_the_agent_closes(
    flavour: str, channel: MessageChannel
) -> None:
    oneshot = agent("oneshot_probe", flavour)("o", msg_channel=channel)
    run_to_end(oneshot)
    assert trace(read_until_closed(channel, ["o"])) == [
        "status:agent_started",
        "setup",
        "status:agent_ready",
        "task",
        "on_close",
        "status:agent_close",
    ]


def test_the_result_is_kept_on_the_agent() -> None:
    quick = QuickThread("q")
    assert quick.result is None
    run_to_end(quick)
    assert quick.result == 42
    probe = OneShotProbeThread("p")
    run_to_end(probe)
    assert probe.result == 7


def test_a_stop_before_the_task_skips_it() -> None:
    probe = OneShotProbeThread("p")
    probe.stop()
    run_to_end(probe)
    assert probe.result is None


def test_a_stop_while_waiting_for_execute_skips_the_task(
    flavour: str, channel: MessageChannel
) -> None:
    control = ControlEvents(execute_event=make_event(flavour))
    oneshot = agent("oneshot_probe", flavour)(
        "o", control_events=control, msg_channel=channel
    )
    oneshot.stop()  # requested before it even starts
    run_to_end(oneshot)
    messages = read_until_closed(channel, ["o"])
    assert "task" not in trace(messages)
    assert messages[-1].payload["termination_status"] == "success"


def test_a_failing_task_reports_agent_error(
    flavour: str, recorder: EventRecorder
) -> None:
    with new_orchestrator() as orchestrator:
        recorder.attach(orchestrator)
        orchestrator.register_agent(agent("boom", flavour), "b")
        orchestrator.register_agent(
            agent("oneshot_probe", flavour), "o", {"fail_in": "task"}
        )
        orchestrator.start()
        assert orchestrator.join() == []
    assert [
        e["error_message"] for e in recorder.of(OrchestratorEvent.AGENT_ERROR, "b")
    ] == ["ValueError: boom"]
    assert [
        e["error_message"] for e in recorder.of(OrchestratorEvent.AGENT_ERROR, "o")
    ] == ["ValueError: task failed"]
    for name in ("b", "o"):
        [terminated] = recorder.of(OrchestratorEvent.AGENT_TERMINATED, name)
        assert terminated["termination_status"] == "critical"


def test_a_oneshot_agent_must_implement_task() -> None:
    with pytest.raises(TypeError):
        OneShotThreadAgent("abstract")  # type: ignore[abstract]
    with new_orchestrator() as orchestrator, pytest.raises(TypeError, match="task"):
        orchestrator.register_agent(OneShotThreadAgent, "abstract")
