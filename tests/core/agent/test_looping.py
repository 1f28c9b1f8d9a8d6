"""LoopingAgent: limit semantics and what each kind of exception does (§12 items 17, 18)."""

from __future__ import annotations

import pytest

from pyorchestrate.core.agent import LoopingThreadAgent, StateEvents
from pyorchestrate.core.utilities.event import OrchestratorEvent
from pyorchestrate.core.utilities.messaging import MessageChannel
from pyorchestrate.testing import EventRecorder
from tests.agents import (
    ScriptedThread,
    agent,
    cycles,
    is_status,
    new_orchestrator,
    read_until,
    read_until_closed,
    run_to_end,
    statuses,
)


@pytest.mark.parametrize("limit", [0, 1, 3])
def test_limit_runs_cycle_exactly_that_many_times(
    flavour: str, channel: MessageChannel, limit: int
) -> None:
    looper = agent("scripted", flavour)("l", {"limit": limit}, msg_channel=channel)
    run_to_end(looper)
    messages = read_until_closed(channel, ["l"])
    assert cycles(messages) == list(range(limit))
    assert statuses(messages) == ["agent_started", "agent_ready", "agent_close"]
    assert messages[-1].payload["termination_status"] == "success"


def test_cycles_done_counts_the_cycles() -> None:
    looper = ScriptedThread("l", {"limit": 4})
    run_to_end(looper)
    assert looper.cycles_done == 4


def test_limit_minus_one_runs_until_stopped(
    flavour: str, channel: MessageChannel
) -> None:
    state = StateEvents.create(flavour)
    counter = agent("forever", flavour)("f", msg_channel=channel, state_events=state)
    counter.start()
    try:
        assert state.ready_event.wait(15)
        # Well past what a small limit would have allowed, it is still going.
        assert not state.close_event.wait(0.2)
        assert counter.is_alive()
    finally:
        counter.stop()
        counter.join(15)
    assert not counter.is_alive()
    assert (
        read_until_closed(channel, ["f"])[-1].payload["termination_status"] == "success"
    )


def test_recoverable_continues_and_nonrecoverable_ends_cleanly(
    flavour: str, channel: MessageChannel, recorder: EventRecorder
) -> None:
    script = {0: "recoverable", 1: "recoverable", 3: "nonrecoverable"}
    with new_orchestrator() as orchestrator:
        recorder.attach(orchestrator)
        orchestrator.register_agent(
            agent("scripted", flavour),
            "l",
            {"limit": 10, "script": script},
            msg_channel=channel,
        )
        orchestrator.start()
        assert orchestrator.join() == []
    messages = read_until_closed(channel, ["l"])
    assert cycles(messages) == [0, 1, 2, 3]
    assert statuses(messages) == ["agent_started", "agent_ready", "agent_close"]
    assert messages[-1].payload["termination_status"] == "success"
    assert recorder.of(OrchestratorEvent.AGENT_ERROR) == []
    terminated = recorder.of(OrchestratorEvent.AGENT_TERMINATED, "l")[0]
    assert terminated["termination_status"] == "success"


def test_a_recoverable_cycle_still_counts_towards_the_limit(
    flavour: str, channel: MessageChannel
) -> None:
    script = {0: "recoverable", 1: "recoverable"}
    looper = agent("scripted", flavour)(
        "l", {"limit": 2, "script": script}, msg_channel=channel
    )
    run_to_end(looper)
    assert cycles(read_until_closed(channel, ["l"])) == [0, 1]


def test_any_other_exception_ends_the_agent_with_agent_error(
    flavour: str, channel: MessageChannel, recorder: EventRecorder
) -> None:
    with new_orchestrator() as orchestrator:
        recorder.attach(orchestrator)
        orchestrator.register_agent(
            agent("scripted", flavour),
            "l",
            {"limit": 10, "script": {1: "error"}},
            msg_channel=channel,
        )
        orchestrator.start()
        assert orchestrator.join() == []
    messages = read_until_closed(channel, ["l"])
    assert cycles(messages) == [0, 1]
    assert statuses(messages) == [
        "agent_started",
        "agent_ready",
        "agent_error",
        "agent_close",
    ]
    assert messages[-1].payload["termination_status"] == "critical"
    [error] = recorder.of(OrchestratorEvent.AGENT_ERROR, "l")
    assert error["error_message"] == "ValueError: bad cycle 1"


def test_stop_from_inside_a_cycle_ends_the_loop_after_it(
    flavour: str, channel: MessageChannel
) -> None:
    looper = agent("scripted", flavour)(
        "l", {"limit": -1, "script": {2: "stop"}}, msg_channel=channel
    )
    run_to_end(looper)
    messages = read_until_closed(channel, ["l"])
    assert cycles(messages) == [0, 1, 2]
    assert messages[-1].payload["termination_status"] == "success"


def test_heartbeats_are_sent_at_most_once_per_interval(
    flavour: str, channel: MessageChannel
) -> None:
    looper = agent("scripted", flavour)(
        "l", {"limit": 50, "heartbeat_interval": 3600}, msg_channel=channel
    )
    run_to_end(looper)
    messages = read_until_closed(channel, ["l"])
    assert len(cycles(messages)) == 50
    assert len([m for m in messages if is_status(m, "agent_heartbeat")]) <= 1


def test_no_heartbeats_without_a_heartbeat_interval(channel: MessageChannel) -> None:
    looper = ScriptedThread("l", {"limit": 3}, msg_channel=channel)
    run_to_end(looper)
    messages = read_until_closed(channel, ["l"])
    assert not [m for m in messages if is_status(m, "agent_heartbeat")]


def test_heartbeats_reach_the_orchestrator(
    flavour: str, channel: MessageChannel, recorder: EventRecorder
) -> None:
    with new_orchestrator() as orchestrator:
        recorder.attach(orchestrator)
        orchestrator.register_agent(
            agent("forever", flavour),
            "f",
            {"heartbeat_interval": 0.02},
            msg_channel=channel,
        )
        orchestrator.start()
        recorder.wait_for(OrchestratorEvent.AGENT_HEARTBEAT, "f", count=2, timeout=15)
        orchestrator.stop()
        assert orchestrator.join() == []
    read_until(channel, lambda m: is_status(m, "agent_close"))


def test_a_looping_agent_must_implement_cycle() -> None:
    with pytest.raises(TypeError):
        LoopingThreadAgent("abstract")  # type: ignore[abstract]
