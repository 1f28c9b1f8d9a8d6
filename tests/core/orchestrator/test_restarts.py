"""Restart policies at run time: BACKOFF, FATAL, generations, operator stops and starts.

Every orchestrator here runs on a ``FakeClock`` (``make_clocked``): a backoff delay
passes only when the test moves the clock, so delays are asserted exactly and nothing
waits for real time. The tests that check nothing happens before a deadline call
``lifecycle.check_deadlines()`` themselves: that is what the router does after a wake,
so "still in BACKOFF" is then a fact, not a race with the router thread.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import pytest

from pyorchestrate import (
    AgentState,
    ControlEvents,
    Orchestrator,
    OrchestratorEvent,
    StartStatus,
    SupervisionConfig,
    make_event,
)
from pyorchestrate.core.utilities.messaging import MessageType, ServiceMessage
from pyorchestrate.testing import EventRecorder, FakeClock
from tests.agents import BoomThread, ExitProcess, SleepForeverProcess, agent

from .conftest import TINY, MakeOrchestrator, exact_policy, state_of

E = OrchestratorEvent
S = AgentState


def _crash_end(flavour: str) -> str:
    """How the ``boom`` agent's end is described in AGENT_RESTARTING's reason."""
    return "exited with code 1" if flavour == "process" else "ended (critical)"


def _sit_out_backoff(
    orchestrator: Orchestrator, clock: FakeClock, name: str, delay: float
) -> None:
    """Check ``name`` stays in BACKOFF until exactly ``delay`` has passed, then pass it."""
    entry = orchestrator.get_agent(name)
    generation = entry.generation_id
    assert orchestrator.agent_status(name)["next_start_in"] == delay
    clock.advance(delay - TINY)
    orchestrator.lifecycle.check_deadlines()
    with orchestrator.lifecycle.lock:
        assert entry.state is S.BACKOFF
        assert entry.generation_id == generation
    assert orchestrator.agent_status(name)["next_start_in"] == round(TINY, 3)
    clock.advance(TINY)  # the delay is over to the exact tick: the restart is now


def _no_restart_after(orchestrator: Orchestrator, clock: FakeClock, name: str) -> None:
    """Move the clock far on and check ``name`` is not started again."""
    entry = orchestrator.get_agent(name)
    generation = entry.generation_id
    clock.advance(3_600.0)
    orchestrator.lifecycle.check_deadlines()
    with orchestrator.lifecycle.lock:
        assert entry.generation_id == generation
        assert entry.restart_at is None
        assert entry.state not in (S.BACKOFF, S.QUEUED, S.STARTING)


# ---------------------------------------------------------------- crash loops


def test_a_crash_loop_backs_off_exactly_then_goes_fatal_after_max_restarts(
    make_clocked: MakeOrchestrator,
    clock: FakeClock,
    recorder: EventRecorder,
    flavour: str,
) -> None:
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    orchestrator.register_agent(
        agent("boom", flavour),
        "crash",
        supervision=exact_policy(max_restarts=3, flap_restarts=None),
    )
    orchestrator.start()

    for attempt, delay in ((1, 1.0), (2, 2.0), (3, 4.0)):
        restarting = recorder.wait_for(E.AGENT_RESTARTING, "crash", count=attempt)
        assert restarting["attempt"] == attempt
        assert restarting["delay"] == delay
        assert restarting["reason"] == _crash_end(flavour)
        assert restarting["generation_id"] == attempt
        assert state_of(orchestrator, "crash") is S.BACKOFF
        _sit_out_backoff(orchestrator, clock, "crash", delay)
        started = recorder.wait_for(E.AGENT_STARTED, "crash", count=attempt + 1)
        assert started["generation_id"] == attempt + 1

    fatal = recorder.wait_for(E.AGENT_FATAL, "crash")
    assert fatal["reason"] == "max_restarts"
    assert fatal["attempt"] == 3
    assert fatal["generation_id"] == 4
    assert fatal["error_message"] == (
        f"gave up after 3 restarts (max_restarts); last end: {_crash_end(flavour)}"
    )
    assert state_of(orchestrator, "crash") is S.FATAL
    _no_restart_after(orchestrator, clock, "crash")
    assert orchestrator.join() == []  # FATAL is final: STOP_ON_EMPTY is done

    generation = [1, 2, 3, 4]
    errors = recorder.of(E.AGENT_ERROR, "crash")
    assert [e["generation_id"] for e in errors] == generation  # one per crash
    assert {(e["reason"], e["error_message"]) for e in errors} == {
        ("exception", "ValueError: boom")
    }
    assert len(recorder.of(E.AGENT_FATAL, "crash")) == 1
    per_start = ["agent_started", "agent_ready", "agent_error", "agent_terminated"]
    assert recorder.names("crash") == [
        "agent_registered",
        *[*per_start, "agent_restarting"] * 3,
        *per_start,
        "agent_fatal",
    ]


def test_a_crash_loop_within_the_flap_window_goes_fatal_as_flapping(
    make_clocked: MakeOrchestrator,
    clock: FakeClock,
    recorder: EventRecorder,
    flavour: str,
) -> None:
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    orchestrator.register_agent(
        agent("boom", flavour),
        "crash",
        supervision=exact_policy(flap_restarts=2, flap_window=60.0),
    )
    orchestrator.start()
    for attempt, delay in ((1, 1.0), (2, 2.0)):
        restarting = recorder.wait_for(E.AGENT_RESTARTING, "crash", count=attempt)
        assert (restarting["attempt"], restarting["delay"]) == (attempt, delay)
        _sit_out_backoff(orchestrator, clock, "crash", delay)

    fatal = recorder.wait_for(E.AGENT_FATAL, "crash")
    assert fatal["reason"] == "flapping"
    assert fatal["attempt"] == 2
    assert fatal["restarts"] == 2
    assert fatal["error_message"].startswith("flapping: 2 restarts within 60 s")
    status = orchestrator.agent_status("crash")
    assert status["lifecycle_state"] == "FATAL"
    assert status["fatal_reason"] == "flapping: 2 restarts within 60 s"
    _no_restart_after(orchestrator, clock, "crash")
    assert orchestrator.join() == []
    assert len(recorder.of(E.AGENT_ERROR, "crash")) == 3
    assert len(recorder.of(E.AGENT_RESTARTING, "crash")) == 2
    assert len(recorder.of(E.AGENT_FATAL, "crash")) == 1


def test_agent_status_in_backoff_and_in_fatal(
    make_clocked: MakeOrchestrator, clock: FakeClock, recorder: EventRecorder
) -> None:
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    # The policy given in the agent's own config this time.
    config = BoomThread.Config(
        supervision=SupervisionConfig(
            **exact_policy(backoff_initial=4.0, max_restarts=1)
        )
    )
    orchestrator.register_agent(BoomThread, "crash", custom_config=config)
    orchestrator.start()

    recorder.wait_for(E.AGENT_RESTARTING, "crash")
    status = orchestrator.agent_status("crash")
    assert status["lifecycle_state"] == "BACKOFF"
    assert status["restart_policy"] == "on-failure"
    assert status["restart_attempt"] == 1
    assert status["next_start_in"] == 4.0
    assert status["restarts"] == 0  # one start so far
    assert status["generation_id"] == 1
    assert status["alive"] is False
    assert status["uptime"] is None
    assert status["fatal_reason"] is None
    assert status["last_error"] == "ValueError: boom"
    assert status["termination_status"] == "critical"
    assert status["exit_code"] is None  # a thread
    clock.advance(1.5)
    assert orchestrator.agent_status("crash")["next_start_in"] == 2.5
    clock.advance(2.5)

    recorder.wait_for(E.AGENT_FATAL, "crash")
    status = orchestrator.agent_status("crash")
    assert status["lifecycle_state"] == "FATAL"
    assert status["fatal_reason"] == "gave up after 1 restart (max_restarts)"
    assert status["restarts"] == 1
    assert status["restart_attempt"] == 1
    assert status["next_start_in"] is None
    assert status["generation_id"] == 2
    (reported,) = orchestrator.report()["agents"]
    assert reported["fatal_reason"] == status["fatal_reason"]


def test_start_agent_from_fatal_works_with_a_fresh_budget(
    make_clocked: MakeOrchestrator, clock: FakeClock, recorder: EventRecorder
) -> None:
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    orchestrator.register_agent(
        agent("boom", "thread"), "crash", supervision=exact_policy(max_restarts=1)
    )
    orchestrator.start()
    recorder.wait_for(E.AGENT_RESTARTING, "crash")
    clock.advance(1.0)
    recorder.wait_for(E.AGENT_FATAL, "crash")
    assert state_of(orchestrator, "crash") is S.FATAL

    assert orchestrator.start_agent("crash").status is StartStatus.STARTED
    started = recorder.wait_for(E.AGENT_STARTED, "crash", count=3)
    assert started["generation_id"] == 3
    # The first crash after the operator's start is restart number 1 again.
    restarting = recorder.wait_for(E.AGENT_RESTARTING, "crash", count=2)
    assert (restarting["attempt"], restarting["delay"]) == (1, 1.0)
    status = orchestrator.agent_status("crash")
    assert status["lifecycle_state"] == "BACKOFF"
    assert status["fatal_reason"] is None
    assert status["restart_attempt"] == 1
    clock.advance(1.0)
    fatal = recorder.wait_for(E.AGENT_FATAL, "crash", count=2)
    assert (fatal["attempt"], fatal["generation_id"]) == (1, 4)


# ---------------------------------------------------------------- kill -9


def _kill_and_restart(
    make_clocked: MakeOrchestrator, clock: FakeClock, recorder: EventRecorder
) -> tuple[Orchestrator, int]:
    """A process agent SIGKILLed, then restarted by its policy; return the old pid."""
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    orchestrator.register_agent(
        SleepForeverProcess, "victim", supervision=exact_policy(backoff_initial=0.5)
    )
    orchestrator.start()
    ready = recorder.wait_for(E.AGENT_READY, "victim")
    pid = ready["pid"]
    assert pid is not None and pid != os.getpid()

    os.kill(pid, signal.SIGKILL)
    error = recorder.wait_for(E.AGENT_ERROR, "victim")
    assert (error["reason"], error["signal"], error["exit_code"]) == (
        "killed",
        "SIGKILL",
        -9,
    )
    assert (error["generation_id"], error["pid"]) == (1, pid)
    restarting = recorder.wait_for(E.AGENT_RESTARTING, "victim")
    assert restarting["attempt"] == 1
    assert restarting["delay"] == 0.5
    assert restarting["reason"] == "killed by SIGKILL"
    assert (restarting["signal"], restarting["exit_code"]) == ("SIGKILL", -9)
    status = orchestrator.agent_status("victim")
    assert (status["lifecycle_state"], status["exit_code"], status["signal"]) == (
        "BACKOFF",
        -9,
        "SIGKILL",
    )
    clock.advance(0.5)
    return orchestrator, pid


@pytest.mark.process
def test_sigkill_restarts_a_process_agent_with_a_new_generation_and_pid(
    make_clocked: MakeOrchestrator, clock: FakeClock, recorder: EventRecorder
) -> None:
    orchestrator, old_pid = _kill_and_restart(make_clocked, clock, recorder)
    ready = recorder.wait_for(E.AGENT_READY, "victim", count=2)
    assert ready["generation_id"] == 2
    assert ready["pid"] not in (None, old_pid)
    entry = orchestrator.get_agent("victim")
    assert entry.pid == ready["pid"]
    assert entry.is_alive()
    status = orchestrator.agent_status("victim")
    assert status["lifecycle_state"] == "READY"
    assert status["restarts"] == 1
    assert status["exit_code"] is None  # the new generation has not ended
    assert len(recorder.of(E.AGENT_ERROR, "victim")) == 1


@pytest.mark.process
def test_a_status_of_the_old_generation_after_the_restart_is_ignored(
    make_clocked: MakeOrchestrator, clock: FakeClock, recorder: EventRecorder
) -> None:
    orchestrator, old_pid = _kill_and_restart(make_clocked, clock, recorder)
    recorder.wait_for(E.AGENT_READY, "victim", count=2)
    entry = orchestrator.get_agent("victim")
    lifecycle = orchestrator.lifecycle

    def late(event: str, generation: int, **extra: Any) -> ServiceMessage:
        payload = {"event": event, "generation_id": generation, "pid": old_pid}
        return ServiceMessage("victim", MessageType.STATUS, {**payload, **extra})

    def beats() -> int:
        counts = orchestrator.history.stats("victim")["by_type"]
        assert isinstance(counts, dict)
        return int(counts.get("agent_heartbeat", 0))

    with lifecycle.lock:
        before = orchestrator.history.last_seq
        beats_before = beats()
        new_pid = entry.pid
        for event in ("agent_started", "agent_ready", "agent_heartbeat"):
            lifecycle.on_message(entry, late(event, 1))
        lifecycle.on_message(entry, late("agent_error", 1, error="late", reason="x"))
        lifecycle.on_message(
            entry, late("agent_close", 1, termination_status="critical")
        )
        assert orchestrator.history.last_seq == before
        assert beats() == beats_before
        assert entry.state is S.READY
        assert entry.generation_id == 2
        assert entry.pid == new_pid
        assert entry.last_error == "killed by SIGKILL"
        assert entry.close_seen is False
        assert entry.termination_status is None
        # The same kind of message from the current generation does count.
        lifecycle.on_message(entry, late("agent_heartbeat", 2))
        assert beats() == beats_before + 1  # (a heartbeat takes no seq of its own)
    (beat,) = orchestrator.events(agent="victim", event_name="agent_heartbeat")
    assert beat.data["generation_id"] == "2"


# ---------------------------------------------------------------- operator


def test_an_operator_stop_during_backoff_cancels_the_restart(
    make_clocked: MakeOrchestrator, clock: FakeClock, recorder: EventRecorder
) -> None:
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    orchestrator.register_agent(
        agent("boom", "thread"), "crash", supervision=exact_policy()
    )
    orchestrator.start()
    recorder.wait_for(E.AGENT_RESTARTING, "crash")
    entry = orchestrator.get_agent("crash")
    assert entry.tracker.attempts == 1

    assert "pending restart cancelled" in orchestrator.stop_agent("crash")
    assert state_of(orchestrator, "crash") is S.TERMINATED
    status = orchestrator.agent_status("crash")
    assert status["next_start_in"] is None
    _no_restart_after(orchestrator, clock, "crash")
    assert entry.tracker.attempts == 1  # the stop is no restart and no failure
    assert orchestrator.join() == []
    assert len(recorder.of(E.AGENT_STARTED, "crash")) == 1
    assert len(recorder.of(E.AGENT_RESTARTING, "crash")) == 1
    assert recorder.of(E.AGENT_FATAL, "crash") == []
    # Cancelling a BACKOFF ends no generation: no second AGENT_TERMINATED.
    assert len(recorder.of(E.AGENT_TERMINATED, "crash")) == 1


def test_an_operator_start_during_backoff_starts_at_once_with_a_fresh_budget(
    make_clocked: MakeOrchestrator, clock: FakeClock, recorder: EventRecorder
) -> None:
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    orchestrator.register_agent(
        agent("boom", "thread"), "crash", supervision=exact_policy(backoff_initial=8.0)
    )
    orchestrator.start()
    recorder.wait_for(E.AGENT_RESTARTING, "crash")
    assert orchestrator.start_agent("crash").status is StartStatus.STARTED
    started = recorder.wait_for(E.AGENT_STARTED, "crash", count=2)
    assert started["generation_id"] == 2  # no fake time has passed
    restarting = recorder.wait_for(E.AGENT_RESTARTING, "crash", count=2)
    assert (restarting["attempt"], restarting["delay"]) == (1, 8.0)
    orchestrator.stop_agent("crash")
    assert orchestrator.join() == []


@pytest.mark.parametrize("phase", ["STARTING", "RUNNING", "READY"])
def test_an_operator_stop_never_restarts_a_restart_always_agent(
    make_clocked: MakeOrchestrator,
    clock: FakeClock,
    recorder: EventRecorder,
    flavour: str,
    phase: str,
) -> None:
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    events = None
    agent_class = agent("forever", flavour)
    if phase == "STARTING":  # never reports START until stopped
        agent_class = agent("never_starts", flavour)
    elif phase == "RUNNING":  # reports START, then waits in setup() for a gate
        events = ControlEvents(setup_event=make_event(flavour))  # type: ignore[arg-type]
    orchestrator.register_agent(
        agent_class,
        "always",
        control_events=events,
        supervision=exact_policy(restart="always"),
    )
    orchestrator.start()
    if phase == "RUNNING":
        recorder.wait_for(E.AGENT_STARTED, "always")
    elif phase == "READY":
        recorder.wait_for(E.AGENT_READY, "always")
    assert state_of(orchestrator, "always").value == phase

    orchestrator.stop_agent("always")
    if phase == "STARTING" and flavour == "process":
        # Stuck before run(): only the escalation after its stop timeout ends it.
        clock.advance(1.0)
    terminated = recorder.wait_for(E.AGENT_TERMINATED, "always")
    assert terminated["generation_id"] == 1
    expected = S.FAILED if phase == "STARTING" else S.TERMINATED
    assert state_of(orchestrator, "always") is expected
    _no_restart_after(orchestrator, clock, "always")
    assert orchestrator.get_agent("always").tracker.attempts == 0
    assert recorder.of(E.AGENT_RESTARTING, "always") == []
    assert recorder.of(E.AGENT_FATAL, "always") == []
    assert orchestrator.join() == []


# ---------------------------------------------------------------- policies


def test_restart_always_restarts_a_clean_exit(
    make_clocked: MakeOrchestrator,
    clock: FakeClock,
    recorder: EventRecorder,
    flavour: str,
) -> None:
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    orchestrator.register_agent(
        agent("quick", flavour), "q", supervision=exact_policy(restart="always")
    )
    orchestrator.start()
    clean_end = "exited with code 0" if flavour == "process" else "ended (success)"
    for attempt, delay in ((1, 1.0), (2, 2.0)):
        terminated = recorder.wait_for(E.AGENT_TERMINATED, "q", count=attempt)
        assert terminated["termination_status"] == "success"
        restarting = recorder.wait_for(E.AGENT_RESTARTING, "q", count=attempt)
        assert restarting["reason"] == clean_end
        assert (restarting["attempt"], restarting["delay"]) == (attempt, delay)
        clock.advance(delay)
    recorder.wait_for(E.AGENT_RESTARTING, "q", count=3)
    orchestrator.stop_agent("q")
    assert orchestrator.join() == []
    assert recorder.of(E.AGENT_ERROR, "q") == []
    started = recorder.of(E.AGENT_STARTED, "q")
    assert [e["generation_id"] for e in started] == [1, 2, 3]


def test_on_failure_does_not_restart_a_clean_exit(
    make_clocked: MakeOrchestrator, clock: FakeClock, recorder: EventRecorder
) -> None:
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    orchestrator.register_agent(
        agent("quick", "thread"), "q", supervision=exact_policy()
    )
    orchestrator.start()
    recorder.wait_for(E.AGENT_TERMINATED, "q")
    assert state_of(orchestrator, "q") is S.TERMINATED
    _no_restart_after(orchestrator, clock, "q")
    assert orchestrator.join() == []
    assert recorder.of(E.AGENT_RESTARTING, "q") == []


@pytest.mark.process
@pytest.mark.parametrize(
    ("success_exit_codes", "restarts"), [({0, 3}, False), (None, True)]
)
def test_success_exit_codes_decide_what_on_failure_restarts(
    make_clocked: MakeOrchestrator,
    clock: FakeClock,
    recorder: EventRecorder,
    success_exit_codes: set[int] | None,
    restarts: bool,
) -> None:
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    policy = exact_policy()
    if success_exit_codes is not None:
        policy["success_exit_codes"] = success_exit_codes
    orchestrator.register_agent(ExitProcess, "exiter", supervision=policy, code=3)
    orchestrator.start()
    terminated = recorder.wait_for(E.AGENT_TERMINATED, "exiter")
    assert terminated["exit_code"] == 3
    if restarts:
        restarting = recorder.wait_for(E.AGENT_RESTARTING, "exiter")
        assert restarting["reason"] == "exited with code 3"
        assert restarting["exit_code"] == 3
        assert state_of(orchestrator, "exiter") is S.BACKOFF
        orchestrator.stop_agent("exiter")
    else:
        assert state_of(orchestrator, "exiter") is S.TERMINATED
        _no_restart_after(orchestrator, clock, "exiter")
        assert recorder.of(E.AGENT_RESTARTING, "exiter") == []
    assert orchestrator.join() == []
    # Either way the abrupt exit (no CLOSE) is reported once.
    (error,) = recorder.of(E.AGENT_ERROR, "exiter")
    assert (error["reason"], error["exit_code"]) == ("exited", 3)


# ---------------------------------------------------------------- run modes


def test_stop_on_empty_join_waits_through_backoff_and_returns_once_fatal(
    make_clocked: MakeOrchestrator, clock: FakeClock, recorder: EventRecorder
) -> None:
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    orchestrator.register_agent(
        agent("boom", "thread"), "crash", supervision=exact_policy(max_restarts=1)
    )
    orchestrator.start()
    recorder.wait_for(E.AGENT_RESTARTING, "crash")
    survivors: list[list[str]] = []
    joiner = threading.Thread(target=lambda: survivors.append(orchestrator.join()))
    joiner.start()
    try:
        joiner.join(0.3)
        assert joiner.is_alive(), "join() returned while the agent was in BACKOFF"
        assert state_of(orchestrator, "crash") is S.BACKOFF
        clock.advance(1.0)
        joiner.join(5.0)
        assert not joiner.is_alive()
    finally:
        if joiner.is_alive():
            orchestrator.stop()
            joiner.join()
    assert survivors == [[]]
    assert state_of(orchestrator, "crash") is S.FATAL
    assert len(recorder.of(E.AGENT_FATAL, "crash")) == 1


def test_shutdown_during_backoff_cancels_the_restart(
    make_clocked: MakeOrchestrator, clock: FakeClock, recorder: EventRecorder
) -> None:
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    orchestrator.register_agent(
        agent("boom", "thread"), "crash", supervision=exact_policy()
    )
    orchestrator.register_agent(agent("forever", "thread"), "steady")
    orchestrator.start()
    recorder.wait_for(E.AGENT_RESTARTING, "crash")
    recorder.wait_for(E.AGENT_READY, "steady")

    assert orchestrator.shutdown() == []
    entry = orchestrator.get_agent("crash")
    assert entry.state is S.TERMINATED
    assert entry.restart_at is None
    assert orchestrator.get_agent("steady").state is S.TERMINATED
    clock.advance(3_600.0)
    orchestrator.lifecycle.check_deadlines()
    assert entry.state is S.TERMINATED
    assert entry.generation_id == 1
    assert len(recorder.of(E.AGENT_STARTED, "crash")) == 1
    assert recorder.of(E.AGENT_FATAL, "crash") == []


def test_a_restart_waits_for_a_free_worker_slot(
    make_clocked: MakeOrchestrator, clock: FakeClock, recorder: EventRecorder
) -> None:
    """The end of a BACKOFF queues the agent: it starts when a slot is free."""
    orchestrator = make_clocked(max_workers=1)
    recorder.attach(orchestrator)
    orchestrator.register_agent(
        agent("boom", "thread"), "crash", supervision=exact_policy()
    )
    orchestrator.register_agent(agent("forever", "thread"), "hog")
    orchestrator.start()
    recorder.wait_for(E.AGENT_RESTARTING, "crash")
    recorder.wait_for(E.AGENT_READY, "hog")  # took the slot the crash freed
    clock.advance(1.0)
    orchestrator.lifecycle.check_deadlines()
    assert state_of(orchestrator, "crash") is S.QUEUED
    assert orchestrator.agent_status("crash")["in_queue"] is True
    orchestrator.stop_agent("hog")
    started = recorder.wait_for(E.AGENT_STARTED, "crash", count=2)
    assert started["generation_id"] == 2
    orchestrator.stop()
    assert orchestrator.join() == []
