"""The seed flow end to end, both flavours."""

from __future__ import annotations

from pyorchestrate import Orchestrator, OrchestratorEvent
from pyorchestrate.testing import EventRecorder
from tests.agents import agent


def test_seed_flow_emits_lifecycle_in_order(
    flavour: str, recorder: EventRecorder
) -> None:
    orchestrator = Orchestrator("Orchestrator")
    recorder.attach(orchestrator)
    orchestrator.register_agent(agent("quick", flavour), "Publisher")
    orchestrator.register_agent(agent("boom", flavour), "Subscriber")
    orchestrator.start()
    assert orchestrator.join() == []
    recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "Subscriber")
    assert recorder.names("Publisher") == [
        "agent_registered",
        "agent_started",
        "agent_ready",
        "agent_terminated",
    ]
    assert recorder.names("Subscriber") == [
        "agent_registered",
        "agent_started",
        "agent_ready",
        "agent_error",
        "agent_terminated",
    ]
    error = recorder.of(OrchestratorEvent.AGENT_ERROR, "Subscriber")[0]
    assert error["error_message"] == "ValueError: boom"
