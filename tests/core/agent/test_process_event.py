"""ProcessEvent: a cross-process event with no named semaphore and no tracker."""

from __future__ import annotations

import gc
import multiprocessing
import pickle
from pathlib import Path

import pytest

from pyorchestrate import OrchestratorEvent
from pyorchestrate.core.agent import ProcessEvent, make_event
from pyorchestrate.core.agent.flavours import process_context
from pyorchestrate.core.utilities.messaging import MessageChannel
from pyorchestrate.testing import EventRecorder
from tests.agents import agent, new_orchestrator

SHM = Path("/dev/shm")


def _named_semaphores() -> set[str]:
    """multiprocessing's named semaphores on this machine (``/dev/shm/sem.mp-*``)."""
    return {p.name for p in SHM.glob("sem.mp-*")} if SHM.is_dir() else set()


def _open_fds() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def test_set_clear_is_set_and_wait() -> None:
    event = ProcessEvent()
    assert not event.is_set()
    assert event.wait(0.01) is False
    event.set()
    event.set()  # setting twice is still one set flag
    assert event.is_set()
    assert event.wait() is True
    assert event.wait(0) is True
    event.clear()
    assert not event.is_set()
    event.clear()  # clearing a clear event is fine
    assert not event.is_set()
    assert ProcessEvent(is_set=True).is_set()
    assert "unset" in repr(event)


def _child(go: ProcessEvent, done: ProcessEvent) -> None:
    if go.wait(10):
        done.set()


@pytest.mark.process
@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_a_child_sees_what_the_parent_sets_and_the_other_way(method: str) -> None:
    go, done = ProcessEvent(), ProcessEvent()
    ctx = process_context(method)  # type: ignore[arg-type]
    child = ctx.Process(target=_child, args=(go, done))  # type: ignore[attr-defined]
    child.start()
    try:
        assert not done.wait(0.05)
        go.set()
        assert done.wait(10)
    finally:
        child.join(10)
    assert child.exitcode == 0


def test_it_reaches_a_child_only_as_the_child_starts() -> None:
    with pytest.raises(RuntimeError, match="inheritance"):
        pickle.dumps(ProcessEvent())


def test_each_event_is_one_descriptor_closed_with_it() -> None:
    gc.collect()  # what earlier tests left for the collector is not ours to count
    before = _open_fds()
    events = [ProcessEvent() for _ in range(50)]
    assert _open_fds() - before == 50
    events[0].close()
    events[0].close()  # idempotent
    del events
    gc.collect()
    assert _open_fds() == before


@pytest.mark.process
def test_process_agents_create_no_named_semaphore() -> None:
    # Each multiprocessing.Event is five named semaphores whose finalizers raced the
    # resource tracker (ReentrantCallError and "might leak" warnings on 3.12+).
    assert isinstance(make_event("process"), ProcessEvent)
    before = _named_semaphores()
    probe = multiprocessing.get_context("spawn").Event()
    assert _named_semaphores() - before  # the probe sees what it looks for
    del probe
    gc.collect()
    before = _named_semaphores()
    recorder = EventRecorder()
    channel = MessageChannel()  # nor does a channel that gets a copy of each message
    with new_orchestrator() as orchestrator:
        recorder.attach(orchestrator)
        for n in range(3):
            orchestrator.register_agent(
                agent("forever", "process"), f"a{n}", msg_channel=channel
            )
        orchestrator.start()
        for n in range(3):
            recorder.wait_for(OrchestratorEvent.AGENT_READY, f"a{n}")
        during = _named_semaphores()
        orchestrator.stop()
        assert orchestrator.join() == []
    assert during - before == set()
    assert {m.sender for m in channel.drain(1)} == {"a0", "a1", "a2"}
    channel.close()
