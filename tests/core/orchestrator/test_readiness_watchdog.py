"""Readiness-gated dependencies, ready_timeout, the heartbeat watchdog, reverse-order stop.

Deadlines run on a ``FakeClock`` (``make_clocked``). Agents beat on real time, so a
test that checks a watchdog does *not* fire moves the fake clock in steps shorter than
``heartbeat_timeout``, each only once a beat has been seen at the current fake time:
the agent must keep beating for the test to get through, and nothing depends on how
fast a loaded machine runs.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import Any

import pytest

from pyorchestrate import (
    AgentState,
    ControlEvents,
    LifecycleError,
    MessageChannel,
    Orchestrator,
    OrchestratorEvent,
    StartStatus,
    make_event,
)
from pyorchestrate.core.utilities.messaging import MessageType, ServiceMessage
from pyorchestrate.testing import EventRecorder, FakeClock, wait_until
from tests.agents import agent

from .conftest import TINY, MakeOrchestrator, exact_policy, state_of

E = OrchestratorEvent
S = AgentState


def _gated_setup(flavour: str) -> tuple[ControlEvents, Any]:
    """Control events whose setup() waits for the returned gate (a slow setup)."""
    gate = make_event(flavour)  # type: ignore[arg-type]
    return ControlEvents(setup_event=gate), gate


def _outlive_the_watchdog(
    orchestrator: Orchestrator,
    clock: FakeClock,
    name: str,
    timeout: float,
    steps: int = 5,
) -> None:
    """Move the fake clock ``steps`` times by 0.6 x ``timeout`` (3 timeouts in all for
    5 steps), each time only once the watchdog was renewed at the current fake time
    (by READY, then only by heartbeats); check it never fired."""
    entry = orchestrator.get_agent(name)
    lifecycle = orchestrator.lifecycle
    fired_before = orchestrator.events(agent=name, event_name="agent_watchdog_timeout")

    def renewed_now() -> bool:
        with lifecycle.lock:
            deadline = entry.beat_deadline
            return deadline is not None and deadline >= clock() + timeout

    for step in range(steps):
        assert wait_until(renewed_now, timeout=5.0), f"no heartbeat before step {step}"
        clock.advance(0.6 * timeout)
        lifecycle.check_deadlines()
        assert state_of(orchestrator, name) is S.READY
    fired = orchestrator.events(agent=name, event_name="agent_watchdog_timeout")
    assert fired == fired_before


def _ready_of_generation(
    recorder: EventRecorder, name: str, generation: int
) -> dict[str, Any]:
    """Wait for the AGENT_READY of ``name``'s ``generation``; return it."""

    def found() -> list[dict[str, Any]]:
        return [
            e
            for e in recorder.of(E.AGENT_READY, name)
            if e["generation_id"] == generation
        ]

    assert wait_until(lambda: bool(found()), timeout=10.0), recorder.names(name)
    return found()[0]


# ---------------------------------------------------------------- readiness


def test_a_dependent_waits_for_its_dependencys_ready_not_its_start(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    events, gate = _gated_setup(flavour)
    orchestrator.register_agent(agent("forever", flavour), "db", control_events=events)
    orchestrator.register_agent(agent("forever", flavour), "api")
    orchestrator.add_dependency("api", "db")
    results = orchestrator.start()
    assert [r.status for r in results] == [StartStatus.STARTED, StartStatus.QUEUED]
    assert results[1].reason == "waiting for dependencies: db"

    recorder.wait_for(E.AGENT_STARTED, "db")  # started, still in setup()
    with orchestrator.lifecycle.lock:
        assert orchestrator.get_agent("db").state is S.RUNNING
        api = orchestrator.get_agent("api")
        assert api.state is S.QUEUED
        assert api.generation_id == 0

    gate.set()  # setup() finishes: db is READY
    db_ready = recorder.wait_for(E.AGENT_READY, "db")
    api_started = recorder.wait_for(E.AGENT_STARTED, "api")
    assert db_ready["seq"] < api_started["seq"]
    orchestrator.stop()
    assert orchestrator.join() == []


def test_a_missed_ready_timeout_is_an_error_and_the_policy_restarts_the_agent(
    make_clocked: MakeOrchestrator,
    clock: FakeClock,
    recorder: EventRecorder,
    flavour: str,
) -> None:
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    events, gate = _gated_setup(flavour)
    orchestrator.register_agent(
        agent("forever", flavour),
        "slow",
        control_events=events,
        supervision=exact_policy(ready_timeout=5.0),
    )
    orchestrator.start()
    recorder.wait_for(E.AGENT_STARTED, "slow")
    clock.advance(5.0 - TINY)
    orchestrator.lifecycle.check_deadlines()
    assert state_of(orchestrator, "slow") is S.RUNNING
    assert recorder.of(E.AGENT_ERROR, "slow") == []

    clock.advance(TINY)
    error = recorder.wait_for(E.AGENT_ERROR, "slow")
    assert error["reason"] == "ready_timeout"
    assert error["error_message"] == "did not report READY within 5 s of START"
    assert error["generation_id"] == 1
    restarting = recorder.wait_for(E.AGENT_RESTARTING, "slow")
    assert restarting["reason"] == "stopped after ready timeout"
    assert (restarting["attempt"], restarting["delay"]) == (1, 1.0)
    reasons = [e["reason"] for e in recorder.of(E.AGENT_ERROR, "slow")]
    # A process agent is SIGTERMed at once; that signal is ours, not a second error.
    assert reasons == ["ready_timeout"]
    assert orchestrator.agent_status("slow")["last_error"] == error["error_message"]

    gate.set()  # the next generation's setup() goes through
    clock.advance(1.0)
    _ready_of_generation(recorder, "slow", 2)
    assert state_of(orchestrator, "slow") is S.READY
    orchestrator.stop()
    assert orchestrator.join() == []


def test_a_dependency_that_missed_its_ready_timeout_does_not_release_its_dependent(
    make_clocked: MakeOrchestrator,
    clock: FakeClock,
    recorder: EventRecorder,
    flavour: str,
) -> None:
    """The dependency failed to become READY: it must not be reported READY after its
    deadline, and its dependent must wait for the restarted generation's READY."""
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    events, gate = _gated_setup(flavour)
    orchestrator.register_agent(
        agent("forever", flavour),
        "db",
        control_events=events,
        supervision=exact_policy(ready_timeout=5.0),
    )
    orchestrator.register_agent(agent("forever", flavour), "api")
    orchestrator.add_dependency("api", "db")
    orchestrator.start()
    recorder.wait_for(E.AGENT_STARTED, "db")
    clock.advance(5.0)
    assert recorder.wait_for(E.AGENT_ERROR, "db")["reason"] == "ready_timeout"
    recorder.wait_for(E.AGENT_RESTARTING, "db")

    with orchestrator.lifecycle.lock:
        assert orchestrator.get_agent("db").state is S.BACKOFF
        assert orchestrator.get_agent("api").state is S.QUEUED
    assert recorder.of(E.AGENT_READY, "db") == []
    assert recorder.of(E.AGENT_STARTED, "api") == []

    gate.set()
    clock.advance(1.0)
    db_ready = recorder.wait_for(E.AGENT_READY, "db")
    assert db_ready["generation_id"] == 2
    api_started = recorder.wait_for(E.AGENT_STARTED, "api")
    assert db_ready["seq"] < api_started["seq"]
    orchestrator.stop()
    assert orchestrator.join() == []


def test_an_agent_stopped_during_setup_is_never_reported_ready(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    """Its setup() was cut short by the stop: it did not become READY."""
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    events, _gate = _gated_setup(flavour)
    orchestrator.register_agent(agent("forever", flavour), "db", control_events=events)
    orchestrator.start()
    recorder.wait_for(E.AGENT_STARTED, "db")
    orchestrator.stop_agent("db")
    recorder.wait_for(E.AGENT_TERMINATED, "db")
    assert recorder.names("db") == [
        "agent_registered",
        "agent_started",
        "agent_terminated",
    ]
    assert orchestrator.get_agent("db").reached_ready is False
    assert orchestrator.join() == []


# ---------------------------------------------------------------- watchdog


@pytest.mark.process
def test_a_hung_process_agent_is_killed_by_the_watchdog_and_restarted(
    make_clocked: MakeOrchestrator, clock: FakeClock, recorder: EventRecorder
) -> None:
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    gate = make_event("process")
    orchestrator.register_agent(
        agent("hanging", "process"),
        "hung",
        supervision=exact_policy(heartbeat_timeout=1.0),
        gate=gate,
    )
    orchestrator.start()
    recorder.wait_for(E.AGENT_HEARTBEAT, "hung")  # its last beat: now the cycle hangs
    clock.advance(1.0 - TINY)
    orchestrator.lifecycle.check_deadlines()
    assert state_of(orchestrator, "hung") is S.READY

    clock.advance(TINY)
    fired = recorder.wait_for(E.AGENT_WATCHDOG_TIMEOUT, "hung")
    assert fired["timeout"] == 1.0
    assert fired["generation_id"] == 1
    error = recorder.wait_for(E.AGENT_ERROR, "hung")
    assert error["reason"] == "watchdog"
    assert error["error_message"] == "no heartbeat for 1 s (watchdog)"
    assert fired["seq"] < error["seq"]
    # SIGTERM at once, without waiting for the stop timeout (the clock stands still).
    terminated = recorder.wait_for(E.AGENT_TERMINATED, "hung")
    assert (terminated["exit_code"], terminated["signal"]) == (-15, "SIGTERM")
    restarting = recorder.wait_for(E.AGENT_RESTARTING, "hung")
    assert restarting["reason"] == "stopped by the watchdog"
    assert restarting["attempt"] == 1
    reasons = [e["reason"] for e in recorder.of(E.AGENT_ERROR, "hung")]
    assert reasons == ["watchdog"]  # the SIGTERM was ours: one error, one alert

    gate.set()  # the next generation does not hang
    clock.advance(1.0)
    ready = recorder.wait_for(E.AGENT_READY, "hung", count=2)
    assert ready["generation_id"] == 2
    assert ready["pid"] != error["pid"]
    _outlive_the_watchdog(orchestrator, clock, "hung", 1.0, steps=3)
    assert len(recorder.of(E.AGENT_WATCHDOG_TIMEOUT, "hung")) == 1
    orchestrator.stop()
    assert orchestrator.join() == []


def test_a_hung_thread_agent_is_abandoned_then_restarted_once_its_thread_ends(
    make_clocked: MakeOrchestrator, clock: FakeClock, recorder: EventRecorder
) -> None:
    """A thread cannot be killed: the watchdog sets its stop event; after its
    stop_timeout it is QUARANTINED and reported abandoned; it cannot start again while
    its thread lives, and its policy restarts it once the thread has ended."""
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    gate = threading.Event()
    orchestrator.register_agent(
        agent("hanging", "thread"),
        "hung",
        supervision=exact_policy(heartbeat_timeout=1.0, stop_timeout=2.0),
        gate=gate,
    )
    try:
        orchestrator.start()
        recorder.wait_for(E.AGENT_HEARTBEAT, "hung")
        clock.advance(1.0)
        fired = recorder.wait_for(E.AGENT_WATCHDOG_TIMEOUT, "hung")
        assert fired["timeout"] == 1.0
        assert recorder.wait_for(E.AGENT_ERROR, "hung")["reason"] == "watchdog"
        entry = orchestrator.get_agent("hung")
        assert wait_until(lambda: entry.require_instance().stop_requested, 5.0)
        assert state_of(orchestrator, "hung") is S.STOPPING

        clock.advance(2.0 - TINY)
        orchestrator.lifecycle.check_deadlines()
        assert state_of(orchestrator, "hung") is S.STOPPING
        clock.advance(TINY)
        abandoned = recorder.wait_for(E.AGENT_ERROR, "hung", count=2)
        assert abandoned["reason"] == "abandoned"
        assert abandoned["error_message"] == (
            "did not stop within 2 s: abandoned (a thread cannot be killed)"
        )
        assert state_of(orchestrator, "hung") is S.QUARANTINED
        with pytest.raises(LifecycleError, match="QUARANTINED"):
            orchestrator.start_agent("hung")
        clock.advance(3_600.0)  # no restart while the thread lives
        orchestrator.lifecycle.check_deadlines()
        assert state_of(orchestrator, "hung") is S.QUARANTINED
        assert recorder.of(E.AGENT_RESTARTING, "hung") == []
    finally:
        gate.set()  # the hang ends: the thread sees its stop and returns

    terminated = recorder.wait_for(E.AGENT_TERMINATED, "hung")
    assert terminated["generation_id"] == 1
    restarting = recorder.wait_for(E.AGENT_RESTARTING, "hung")
    assert restarting["reason"] == "stopped by the watchdog"
    clock.advance(1.0)
    ready = recorder.wait_for(E.AGENT_READY, "hung", count=2)
    assert ready["generation_id"] == 2
    orchestrator.stop()
    assert orchestrator.join() == []
    assert len(recorder.of(E.AGENT_WATCHDOG_TIMEOUT, "hung")) == 1


def test_a_healthy_looping_agent_beats_by_itself_and_is_never_fired(
    make_clocked: MakeOrchestrator,
    clock: FakeClock,
    recorder: EventRecorder,
    flavour: str,
) -> None:
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    # No heartbeat_interval: it beats every third of the timeout (0.1 s).
    orchestrator.register_agent(
        agent("forever", flavour),
        "healthy",
        supervision=exact_policy(heartbeat_timeout=0.3),
    )
    orchestrator.start()
    recorder.wait_for(E.AGENT_READY, "healthy")
    _outlive_the_watchdog(orchestrator, clock, "healthy", 0.3)
    orchestrator.stop()
    assert orchestrator.join() == []
    assert recorder.of(E.AGENT_WATCHDOG_TIMEOUT) == []
    assert len(recorder.of(E.AGENT_HEARTBEAT, "healthy")) >= 4


def test_a_periodic_agent_beats_while_it_waits_for_its_next_run(
    make_clocked: MakeOrchestrator,
    clock: FakeClock,
    recorder: EventRecorder,
    flavour: str,
) -> None:
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    channel = MessageChannel()
    # Runs once at once, then waits 30 s: far longer than the 0.3 s watchdog.
    orchestrator.register_agent(
        agent("ticker", flavour),
        "periodic",
        custom_config={"execution_interval": 30.0},
        supervision=exact_policy(heartbeat_timeout=0.3),
        msg_channel=channel,
    )
    orchestrator.start()
    recorder.wait_for(E.AGENT_READY, "periodic")
    _outlive_the_watchdog(orchestrator, clock, "periodic", 0.3)
    orchestrator.stop()
    assert orchestrator.join() == []

    seen = _drain_until_close(channel)
    kinds = ["tick" if m.type is MessageType.DATA else m.payload["event"] for m in seen]
    assert kinds.count("tick") == 1
    after_tick = kinds[kinds.index("tick") + 1 :]
    # READY renews the watchdog once; every other renewal was a beat sent while the
    # agent waited for its next run.
    assert after_tick.count("agent_heartbeat") >= 3
    assert recorder.of(E.AGENT_WATCHDOG_TIMEOUT) == []


def _drain_until_close(channel: MessageChannel) -> list[ServiceMessage]:
    seen: list[ServiceMessage] = []

    def closed() -> bool:
        with contextlib.suppress(queue.Empty):
            seen.append(channel.get(timeout=0.05))
        return any(m.payload.get("event") == "agent_close" for m in seen)

    assert wait_until(closed, timeout=5.0), seen
    return seen


def test_an_explicit_heartbeat_keeps_a_plain_agent_alive(
    make_clocked: MakeOrchestrator,
    clock: FakeClock,
    recorder: EventRecorder,
    flavour: str,
) -> None:
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    orchestrator.register_agent(
        agent("beating", flavour),
        "plain",
        supervision=exact_policy(heartbeat_timeout=0.3),
        beat_every=0.02,
    )
    orchestrator.start()
    recorder.wait_for(E.AGENT_READY, "plain")
    _outlive_the_watchdog(orchestrator, clock, "plain", 0.3)
    orchestrator.stop()
    assert orchestrator.join() == []
    assert recorder.of(E.AGENT_WATCHDOG_TIMEOUT) == []


def test_the_watchdog_starts_at_ready_not_at_start(
    make_clocked: MakeOrchestrator, clock: FakeClock, recorder: EventRecorder
) -> None:
    """A slow setup() is the readiness deadline's business, not the watchdog's."""
    orchestrator = make_clocked()
    recorder.attach(orchestrator)
    events, gate = _gated_setup("thread")
    orchestrator.register_agent(
        agent("forever", "thread"),
        "slow",
        control_events=events,
        supervision=exact_policy(heartbeat_timeout=0.3),
    )
    orchestrator.start()
    recorder.wait_for(E.AGENT_STARTED, "slow")
    clock.advance(60.0)
    orchestrator.lifecycle.check_deadlines()
    assert state_of(orchestrator, "slow") is S.RUNNING
    gate.set()
    recorder.wait_for(E.AGENT_READY, "slow")
    _outlive_the_watchdog(orchestrator, clock, "slow", 0.3, steps=2)
    orchestrator.stop()
    assert orchestrator.join() == []
    assert recorder.of(E.AGENT_WATCHDOG_TIMEOUT) == []


# ---------------------------------------------------------------- reverse order


def test_shutdown_stops_dependents_first_and_each_only_after_its_dependents_ended(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    stop_log: list[tuple[str, int]] = []  # on_stop runs in this process, both flavours
    for name in ("a", "b", "c"):
        orchestrator.register_agent(agent("stop_log", flavour), name, stop_log=stop_log)
    orchestrator.add_dependency("b", "a")
    orchestrator.add_dependency("c", "b")
    orchestrator.start()
    recorder.wait_for(E.AGENT_READY, "c")

    assert orchestrator.shutdown() == []
    assert [name for name, _ in stop_log] == ["c", "b", "a"]
    asked = dict(stop_log)
    ended = {
        name: orchestrator.events(agent=name, event_name="agent_terminated")[0]
        for name in ("a", "b", "c")
    }
    # Each agent is asked to stop only after its dependent has terminated.
    assert ended["c"].t_mono_ns < asked["b"]
    assert ended["b"].t_mono_ns < asked["a"]
    for name in ("a", "b", "c"):
        assert orchestrator.get_agent(name).state is S.TERMINATED
    assert recorder.of(E.AGENT_ERROR) == []
