"""Control and state events: make_event, defaults, default-filling, flavour checks."""

from __future__ import annotations

import threading

import pytest

from pyorchestrate import RegistrationError
from pyorchestrate.core.agent import (
    ControlEvents,
    ProcessEvent,
    StateEvents,
    make_event,
)
from pyorchestrate.core.utilities.messaging import MessageChannel
from tests.agents import (
    ProbeProcess,
    ProbeThread,
    agent,
    new_orchestrator,
    read_until_closed,
    run_to_end,
    statuses,
)

EVENT_TYPES = {"thread": threading.Event, "process": ProcessEvent}


def test_make_event_builds_the_flavours_event(flavour: str) -> None:
    event = make_event(flavour)
    assert isinstance(event, EVENT_TYPES[flavour])
    assert not event.is_set()
    assert make_event(flavour, is_set=True).is_set()


def test_make_event_rejects_other_flavours() -> None:
    with pytest.raises(ValueError, match="flavour"):
        make_event("fiber")  # type: ignore[arg-type]


def test_control_defaults_setup_and_execute_set_stop_clear(flavour: str) -> None:
    events = ControlEvents().filled(flavour)
    assert isinstance(events.stop_event, EVENT_TYPES[flavour])
    assert events.setup_event.is_set()
    assert events.execute_event.is_set()
    assert not events.stop_event.is_set()
    created = ControlEvents.create(flavour, setup=False)
    assert not created.setup_event.is_set()
    assert created.execute_event.is_set()
    assert not created.stop_event.is_set()


def test_state_defaults_are_all_clear(flavour: str) -> None:
    for events in (StateEvents().filled(flavour), StateEvents.create(flavour)):
        for event in (events.start_event, events.ready_event, events.close_event):
            assert isinstance(event, EVENT_TYPES[flavour])
            assert not event.is_set()


def test_partial_containers_are_filled_with_defaults(flavour: str) -> None:
    mine = make_event(flavour)
    partial = ControlEvents(execute_event=mine)
    filled = partial.filled(flavour)
    assert filled.execute_event is mine
    assert not filled.execute_event.is_set()  # kept as given, not preset
    assert filled.setup_event.is_set()
    assert filled.stop_event is not None
    assert not filled.stop_event.is_set()
    assert partial.setup_event is None  # the original is untouched

    close = make_event(flavour)
    state = StateEvents(close_event=close).filled(flavour)
    assert state.close_event is close
    assert state.start_event is not None
    assert state.ready_event is not None


def test_an_agent_fills_a_partial_container(flavour: str) -> None:
    stop = make_event(flavour)
    probe = agent("probe", flavour)("p", control_events=ControlEvents(stop_event=stop))
    assert probe.control_events.stop_event is stop
    assert probe.control_events.setup_event.is_set()
    assert probe.control_events.execute_event.is_set()
    assert probe.state_events.ready_event is not None
    probe.stop()
    assert stop.is_set()


def test_agents_get_events_of_their_flavour() -> None:
    thread_probe, process_probe = ProbeThread("t"), ProbeProcess("p")
    for probe, kind in ((thread_probe, threading.Event), (process_probe, ProcessEvent)):
        events = [
            probe.control_events.setup_event,
            probe.control_events.execute_event,
            probe.control_events.stop_event,
            probe.state_events.start_event,
            probe.state_events.ready_event,
            probe.state_events.close_event,
        ]
        assert all(isinstance(e, kind) for e in events)


def test_a_threading_event_cannot_reach_a_process_agent() -> None:
    with pytest.raises(TypeError, match="stop_event"):
        ProbeProcess("p", control_events=ControlEvents(stop_event=threading.Event()))
    with pytest.raises(TypeError, match="ready_event"):
        ProbeProcess("p", state_events=StateEvents(ready_event=threading.Event()))
    with new_orchestrator() as orchestrator:
        with pytest.raises(TypeError, match="setup_event"):
            orchestrator.register_agent(
                ProbeProcess,
                "p",
                control_events=ControlEvents(setup_event=threading.Event()),
            )
        assert orchestrator.agents == {}


def test_process_events_work_for_a_thread_agent(channel: MessageChannel) -> None:
    state = StateEvents.create("process")
    probe = ProbeThread("t", state_events=state, msg_channel=channel)
    run_to_end(probe)
    assert state.close_event.is_set()
    assert statuses(read_until_closed(channel, ["t"]))[-1] == "agent_close"


def test_shared_state_events_are_cleared_on_each_orchestrated_start(
    flavour: str, channel: MessageChannel
) -> None:
    state = StateEvents.create(flavour)
    state.ready_event.set()  # stale, as after a previous run
    state.close_event.set()
    with new_orchestrator() as orchestrator:
        orchestrator.register_agent(
            agent("probe", flavour), "p", state_events=state, msg_channel=channel
        )
        orchestrator.start()
        assert orchestrator.join() == []
    messages = read_until_closed(channel, ["p"])
    setup = next(m.payload for m in messages if m.payload.get("step") == "setup")
    assert (setup["start"], setup["ready"], setup["close"]) == (True, False, False)
    assert state.close_event.is_set()


def test_an_agent_built_by_hand_checks_its_name_too() -> None:
    assert ProbeThread().name == "ProbeThread"  # None: the class name
    with pytest.raises(RegistrationError, match="must not be empty"):
        ProbeThread("")
    with pytest.raises(TypeError, match="name: an agent name must be a string"):
        ProbeThread(5)  # type: ignore[arg-type]
