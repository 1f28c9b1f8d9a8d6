"""The lifecycle state machine: the transition table and its one writer."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from pyorchestrate import AgentState, LifecycleError, OrchestratorEvent
from pyorchestrate.core.orchestrator.states import (
    ACTIVE_STATES,
    FINAL_STATES,
    LIVE_STATES,
    TRANSITIONS,
    can_transition,
)
from pyorchestrate.testing import EventRecorder
from tests.agents import agent

from .conftest import MakeOrchestrator

S = AgentState

EXPECTED: dict[AgentState, set[AgentState]] = {
    S.REGISTERED: {S.QUEUED, S.STARTING, S.TERMINATED},
    S.QUEUED: {S.STARTING, S.TERMINATED, S.FAILED},
    S.STARTING: {S.RUNNING, S.STOPPING, S.QUARANTINED, S.TERMINATED, S.FAILED},
    S.RUNNING: {S.READY, S.STOPPING, S.QUARANTINED, S.TERMINATED},
    S.READY: {S.STOPPING, S.QUARANTINED, S.TERMINATED},
    # asked to stop while starting, then ended before its START message
    S.STOPPING: {S.QUARANTINED, S.TERMINATED, S.FAILED},
    S.QUARANTINED: {S.STOPPING, S.TERMINATED, S.FAILED},
    # the restart policy's decision right after an end: BACKOFF, or FATAL
    S.TERMINATED: {S.QUEUED, S.STARTING, S.BACKOFF, S.FATAL},
    S.FAILED: {S.QUEUED, S.STARTING, S.BACKOFF, S.FATAL},
    # the delay is over (QUEUED), or an operator stop cancelled it (TERMINATED)
    S.BACKOFF: {S.QUEUED, S.TERMINATED},
    # only an operator start leaves FATAL
    S.FATAL: {S.QUEUED, S.STARTING},
}
"""The documented edges (states.py diagram, reference §3)."""


def test_the_eleven_states() -> None:
    assert {s.value for s in AgentState} == {
        "REGISTERED",
        "QUEUED",
        "STARTING",
        "RUNNING",
        "READY",
        "STOPPING",
        "QUARANTINED",
        "TERMINATED",
        "FAILED",
        "BACKOFF",
        "FATAL",
    }


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(AgentState)


@pytest.mark.parametrize(
    ("current", "target"), list(itertools.product(AgentState, AgentState))
)
def test_transition_table(current: AgentState, target: AgentState) -> None:
    assert can_transition(current, target) is (target in EXPECTED[current])


def test_state_groups() -> None:
    assert set(ACTIVE_STATES) == {
        S.STARTING,
        S.RUNNING,
        S.READY,
        S.STOPPING,
        S.QUARANTINED,
    }
    assert set(LIVE_STATES) == ACTIVE_STATES | {S.QUEUED, S.BACKOFF}
    assert set(FINAL_STATES) == {S.TERMINATED, S.FAILED, S.FATAL}


def test_no_state_goes_to_itself() -> None:
    for state in AgentState:
        assert not can_transition(state, state)


def test_every_live_state_can_end() -> None:
    for state in LIVE_STATES:
        assert TRANSITIONS[state] & FINAL_STATES, state


def test_final_states_only_restart() -> None:
    for state in FINAL_STATES:
        assert TRANSITIONS[state] - {S.BACKOFF, S.FATAL} == {S.QUEUED, S.STARTING}
    assert TRANSITIONS[S.FATAL] == {S.QUEUED, S.STARTING}


def test_change_state_refuses_an_illegal_edge(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator()
    entry = orchestrator.register_agent(agent("quick", "thread"), "q")
    with pytest.raises(LifecycleError, match="REGISTERED -> RUNNING"):
        orchestrator.lifecycle.change_state(entry, S.RUNNING)
    assert entry.state is S.REGISTERED
    assert orchestrator.worker_pool.running_count == 0
    with pytest.raises(RuntimeError):
        orchestrator.lifecycle.change_state(entry, S.READY)


def test_change_state_keeps_slots_in_step(make_orchestrator: MakeOrchestrator) -> None:
    orchestrator = make_orchestrator()
    entry = orchestrator.register_agent(agent("quick", "thread"), "q")
    lifecycle = orchestrator.lifecycle
    lifecycle.change_state(entry, S.QUEUED)
    assert orchestrator.worker_pool.running_count == 0
    lifecycle.change_state(entry, S.STARTING)
    assert orchestrator.worker_pool.running_count == 1
    lifecycle.change_state(entry, S.FAILED)
    assert orchestrator.worker_pool.running_count == 0


def test_a_run_goes_through_the_expected_states(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    entry = orchestrator.register_agent(agent("quick", flavour), "q")
    seen: list[AgentState] = [entry.state]
    change_state = orchestrator.lifecycle.change_state

    def spy(target_entry: Any, target: AgentState, **context: Any) -> None:
        change_state(target_entry, target, **context)
        if target_entry is entry:
            seen.append(target)

    orchestrator.lifecycle.change_state = spy  # type: ignore[method-assign]
    orchestrator.start()
    assert orchestrator.join() == []
    assert seen == [
        S.REGISTERED,
        S.QUEUED,
        S.STARTING,
        S.RUNNING,
        S.READY,
        S.TERMINATED,
    ]
    # Each event-bearing state produced its event, in order.
    recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "q")
    assert recorder.names("q") == [
        "agent_registered",
        "agent_started",
        "agent_ready",
        "agent_terminated",
    ]


def test_a_stopped_agent_goes_through_stopping(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    entry = orchestrator.register_agent(agent("forever", flavour), "f")
    orchestrator.start()
    recorder.wait_for(OrchestratorEvent.AGENT_READY, "f")
    assert entry.state is S.READY
    with orchestrator.lifecycle.lock:  # the router cannot see the exit meanwhile
        orchestrator.stop_agent("f")
        assert entry.state is S.STOPPING
    recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "f")
    assert entry.state is S.TERMINATED
    assert orchestrator.stop_agent("f").endswith("(TERMINATED)")
