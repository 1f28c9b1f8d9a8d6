"""The worker pool: slots, the FIFO queue, and the limit as the orchestrator applies it."""

from __future__ import annotations

import pytest

from pyorchestrate import (
    AgentState,
    LifecycleError,
    OrchestratorEvent,
    RegistrationError,
    StartStatus,
)
from pyorchestrate.core.orchestrator import WorkerPool
from pyorchestrate.testing import EventRecorder
from tests.agents import agent

from .conftest import MakeOrchestrator

# ---------------------------------------------------------------- WorkerPool


def test_slots_are_counted_and_freed() -> None:
    pool = WorkerPool(2)
    assert pool.has_free_slot
    pool.occupy("a")
    pool.occupy("a")  # idempotent
    pool.occupy("b")
    assert pool.running_count == 2
    assert not pool.has_free_slot
    assert pool.release("a") is True
    assert pool.release("a") is False
    assert pool.running_count == 1
    assert pool.has_free_slot


def test_queue_is_fifo_without_duplicates() -> None:
    pool = WorkerPool(1)
    for name in ("a", "b", "c", "a"):
        pool.enqueue(name)
    assert pool.queue_size == 3
    assert [pool.queue_position(n) for n in "abc"] == [0, 1, 2]
    assert pool.queue_position("z") is None
    assert pool.is_queued("b")
    assert pool.dequeue("b") is True
    assert pool.dequeue("b") is False
    assert not pool.is_queued("b")
    assert pool.clear_queue() == ["a", "c"]
    assert pool.queue_size == 0


def test_take_launchable_respects_free_slots_and_order() -> None:
    pool = WorkerPool(3)
    pool.occupy("running")
    for name in ("q1", "q2", "q3", "q4"):
        pool.enqueue(name)
    taken = pool.take_launchable(lambda name: True)
    assert taken == ["q1", "q2"]  # 2 free slots, oldest first
    assert [pool.queue_position(n) for n in ("q3", "q4")] == [0, 1]


def test_take_launchable_skips_ineligible_but_keeps_them_queued() -> None:
    pool = WorkerPool(2)
    for name in ("blocked", "x", "y", "z"):
        pool.enqueue(name)
    taken = pool.take_launchable(lambda name: name != "blocked")
    assert taken == ["x", "y"]
    assert pool.queue_position("blocked") == 0
    assert pool.is_queued("z")


def test_take_launchable_with_no_free_slot_takes_nothing() -> None:
    pool = WorkerPool(1)
    pool.occupy("a")
    pool.enqueue("b")
    assert pool.take_launchable(lambda name: True) == []
    assert pool.is_queued("b")


def test_stats() -> None:
    pool = WorkerPool(4)
    pool.occupy("a")
    pool.enqueue("b")
    assert pool.stats() == {
        "max_workers": 4,
        "running_count": 1,
        "waiting_count": 1,
        "queue": ["b"],
        "accepting": True,
    }


# ---------------------------------------------------------------- orchestrator


def _max_concurrency(orchestrator: object, names: list[str]) -> int:
    """Sweep the history: +1 at agent_started, -1 at agent_terminated (seq order)."""
    records = orchestrator.events(1000)  # type: ignore[attr-defined]
    running = peak = 0
    for record in records:
        if record.agent not in names:
            continue
        if record.event_name == "agent_started":
            running += 1
            peak = max(peak, running)
        elif record.event_name == "agent_terminated":
            running -= 1
    return peak


def test_max_workers_limits_concurrency_and_the_queue_is_fifo(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator(max_workers=2)
    recorder.attach(orchestrator)
    names = [f"w{i}" for i in range(5)]
    for name in names:
        orchestrator.register_agent(agent("slow", flavour), name)

    peak = 0
    launched: list[str] = []
    occupy = orchestrator.worker_pool.occupy

    def spying_occupy(name: str) -> None:
        nonlocal peak
        if name not in launched:  # the first occupy is the launch (STARTING)
            launched.append(name)
        occupy(name)
        peak = max(peak, orchestrator.worker_pool.running_count)

    orchestrator.worker_pool.occupy = spying_occupy  # type: ignore[method-assign]

    results = orchestrator.start()
    assert [r.status for r in results] == [StartStatus.STARTED] * 2 + [
        StartStatus.QUEUED
    ] * 3
    assert "slot" in results[2].reason
    assert [orchestrator.agent_status(n)["in_queue"] for n in names] == [
        False,
        False,
        True,
        True,
        True,
    ]
    assert orchestrator.worker_pool.stats()["queue"] == names[2:]
    assert [orchestrator.get_agent(n).state for n in names[2:]] == [
        AgentState.QUEUED
    ] * 3

    assert orchestrator.join() == []
    assert peak == 2
    assert _max_concurrency(orchestrator, names) <= 2
    # FIFO: launched in the order they were queued. (Their START messages may
    # arrive in another order: two processes launched a moment apart race.)
    assert launched == names
    started = {r.agent for r in orchestrator.events(event_name="agent_started")}
    assert started == set(names)
    assert all(orchestrator.get_agent(n).state is AgentState.TERMINATED for n in names)
    assert orchestrator.worker_pool.running_count == 0


def test_a_failing_agent_frees_its_slot(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator(max_workers=1)
    recorder.attach(orchestrator)
    orchestrator.register_agent(agent("boom", flavour), "boom")
    orchestrator.register_agent(agent("quick", flavour), "next")
    orchestrator.start()
    assert orchestrator.join() == []
    recorder.wait_for(OrchestratorEvent.AGENT_ERROR, "boom")
    assert orchestrator.get_agent("next").state is AgentState.TERMINATED
    assert orchestrator.worker_pool.running_count == 0


def test_a_start_failure_frees_its_slot(
    make_orchestrator: MakeOrchestrator, flavour: str
) -> None:
    orchestrator = make_orchestrator(max_workers=1)
    orchestrator.register_agent(agent("init_boom", flavour), "bad")
    orchestrator.register_agent(agent("quick", flavour), "next")
    results = orchestrator.start()
    assert results[0].status is StartStatus.FAILED_CLEAN
    assert "constructor failed" in results[0].reason
    assert orchestrator.join() == []
    assert orchestrator.get_agent("bad").state is AgentState.FAILED
    assert orchestrator.get_agent("next").state is AgentState.TERMINATED


def test_a_start_timeout_is_reported_and_frees_the_slot(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator(max_workers=1, agent_start_timeout=0.3)
    recorder.attach(orchestrator)
    orchestrator.register_agent(agent("never_starts", flavour), "mute")
    orchestrator.register_agent(agent("quick", flavour), "next")
    results = orchestrator.start()
    assert [r.status for r in results] == [StartStatus.STARTED, StartStatus.QUEUED]
    error = recorder.wait_for(OrchestratorEvent.AGENT_ERROR, "mute")
    assert error["reason"] == "start_timeout"
    assert "0.3" in error["error_message"]
    recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "next")
    assert orchestrator.join() == []
    assert orchestrator.get_agent("mute").state is AgentState.FAILED
    assert recorder.of(OrchestratorEvent.AGENT_STARTED, "mute") == []


def test_start_agent_results_and_errors(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator(max_workers=1)
    recorder.attach(orchestrator)
    orchestrator.register_agent(agent("forever", flavour), "a")
    orchestrator.register_agent(agent("forever", flavour), "b")
    assert orchestrator.start_agent("a").status is StartStatus.STARTED
    assert orchestrator.start_agent("b").status is StartStatus.QUEUED
    # Re-queueing a queued agent keeps it queued, once.
    assert orchestrator.start_agent("b").status is StartStatus.QUEUED
    assert orchestrator.worker_pool.queue_size == 1
    with pytest.raises(LifecycleError, match="already"):
        orchestrator.start_agent("a")
    with pytest.raises(RuntimeError):
        orchestrator.start_agent("a")
    with pytest.raises(RegistrationError, match="nobody"):
        orchestrator.start_agent("nobody")
    with pytest.raises(ValueError):
        orchestrator.start_agent("nobody")

    # Stopping a queued agent takes it out of the queue.
    assert "queue" in orchestrator.stop_agent("b")
    assert orchestrator.get_agent("b").state is AgentState.TERMINATED
    assert orchestrator.worker_pool.queue_size == 0

    recorder.wait_for(OrchestratorEvent.AGENT_STARTED, "a")
    orchestrator.stop_agent("a")
    recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "a")
    assert orchestrator.worker_pool.running_count == 0


def test_no_new_starts_after_stop(
    make_orchestrator: MakeOrchestrator, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    orchestrator.register_agent(agent("quick", flavour), "q")
    orchestrator.stop()
    with pytest.raises(LifecycleError, match="cannot accept new starts"):
        orchestrator.start_agent("q")
    assert orchestrator.get_agent("q").generation_id == 0


def test_stop_empties_the_queue(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator(max_workers=1)
    recorder.attach(orchestrator)
    orchestrator.register_agent(agent("forever", flavour), "running")
    orchestrator.register_agent(agent("forever", flavour), "waiting")
    orchestrator.start()
    recorder.wait_for(OrchestratorEvent.AGENT_STARTED, "running")
    orchestrator.stop()
    assert orchestrator.worker_pool.queue_size == 0
    assert orchestrator.get_agent("waiting").state is AgentState.TERMINATED
    assert orchestrator.join() == []
    assert orchestrator.get_agent("waiting").generation_id == 0
    assert recorder.of(OrchestratorEvent.AGENT_STARTED, "waiting") == []
