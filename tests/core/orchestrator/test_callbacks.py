"""The event bus and its callback executor: the keyword contract and where callbacks run."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from pyorchestrate import (
    AgentEvent,
    AgentTerminationStatus,
    EventRecord,
    OrchestratorEvent,
    Severity,
    severity_of,
)
from pyorchestrate.core.orchestrator import CallbackExecutor, EventBus, EventHistory
from pyorchestrate.core.utilities.event import CALLBACK_KEYWORDS
from pyorchestrate.testing import EventRecorder, wait_until
from tests.agents import agent

from .conftest import MakeOrchestrator


@pytest.fixture
def bus() -> Any:
    executor = CallbackExecutor(2, 100, name="pyorchestrate-test")
    event_bus = EventBus(EventHistory(), executor, orchestrator="test-orch")
    yield event_bus
    event_bus.close(5.0)


class Calls:
    """Thread-safe list of calls with a wait."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._cond = threading.Condition()

    def add(self, item: Any) -> None:
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    def wait(self, count: int, timeout: float = 10.0) -> list[Any]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.items) >= count, timeout), (
                self.items
            )
            return list(self.items)


# ---------------------------------------------------------------- the keyword contract


def test_callback_gets_only_the_keywords_it_names(bus: EventBus) -> None:
    calls = Calls()

    def on_started(event_date: str, event_time: str, agent_name: str) -> None:
        calls.add((event_date, event_time, agent_name))

    def only_name(agent_name: str) -> None:
        calls.add(agent_name)

    bus.register(OrchestratorEvent.AGENT_STARTED, on_started)
    bus.register(OrchestratorEvent.AGENT_STARTED, only_name)
    record = bus.emit(OrchestratorEvent.AGENT_STARTED, agent_name="a")
    assert record is not None
    got = calls.wait(2)
    full = next(c for c in got if isinstance(c, tuple))
    date, when, name = full
    assert name == "a"
    # ISO date and time of the recorded event.
    assert date == time.strftime("%Y-%m-%d", time.localtime(record.t_wall))
    assert len(when.split(":")) == 3
    assert "a" in got


def test_callback_with_kwargs_gets_everything(bus: EventBus) -> None:
    calls = Calls()

    def everything(**kwargs: Any) -> None:
        calls.add(kwargs)

    bus.register(OrchestratorEvent.AGENT_ERROR, everything)
    record = bus.emit(
        OrchestratorEvent.AGENT_ERROR,
        agent_name="a",
        context={
            "error_message": "ValueError: boom",
            "reason": "exception",
            "generation_id": 3,
            "pid": 1234,
            "exit_code": None,
        },
    )
    (kwargs,) = calls.wait(1)
    assert set(CALLBACK_KEYWORDS) <= set(kwargs)
    assert kwargs["agent_name"] == "a"
    assert kwargs["error_message"] == "ValueError: boom"
    assert kwargs["reason"] == "exception"
    assert kwargs["generation_id"] == 3
    assert kwargs["pid"] == 1234
    assert kwargs["event"] is OrchestratorEvent.AGENT_ERROR
    assert kwargs["orchestrator"] == "test-orch"
    assert kwargs["record"] is record
    assert kwargs["seq"] == record.seq


def test_named_keywords_mixed_with_kwargs(bus: EventBus) -> None:
    calls = Calls()

    def mixed(agent_name: str, **rest: Any) -> None:
        calls.add((agent_name, rest))

    bus.register(OrchestratorEvent.AGENT_READY, mixed)
    bus.emit(OrchestratorEvent.AGENT_READY, agent_name="a")
    ((name, rest),) = calls.wait(1)
    assert name == "a"
    assert "event_date" in rest
    assert "agent_name" not in rest


def test_optional_unknown_parameter_keeps_its_default(bus: EventBus) -> None:
    calls = Calls()

    def with_default(agent_name: str, extra: str = "default") -> None:
        calls.add((agent_name, extra))

    bus.register(OrchestratorEvent.AGENT_READY, with_default)
    bus.emit(OrchestratorEvent.AGENT_READY, agent_name="a")
    assert calls.wait(1) == [("a", "default")]


def test_error_message_is_none_for_other_events(bus: EventBus) -> None:
    calls = Calls()

    def cb(agent_name: str, error_message: str | None) -> None:
        calls.add(error_message)

    bus.register(OrchestratorEvent.AGENT_STARTED, cb)
    bus.emit(OrchestratorEvent.AGENT_STARTED, agent_name="a")
    assert calls.wait(1) == [None]


def test_a_callback_requiring_an_unknown_parameter_is_refused(bus: EventBus) -> None:
    def needs_unknown(agent_name: str, colour: str) -> None:
        pass

    with pytest.raises(TypeError, match="colour"):
        bus.register(OrchestratorEvent.AGENT_STARTED, needs_unknown)
    assert not bus.has_listeners(OrchestratorEvent.AGENT_STARTED)


def test_orchestrator_register_event_refuses_unknown_parameters(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator()
    with pytest.raises(TypeError, match="colour"):
        orchestrator.register_event(OrchestratorEvent.AGENT_ERROR, lambda colour: None)


def test_a_raising_callback_is_logged_and_the_others_run(
    bus: EventBus, caplog: pytest.LogCaptureFixture
) -> None:
    calls = Calls()

    def broken(agent_name: str) -> None:
        raise RuntimeError("callback exploded")

    def fine(agent_name: str) -> None:
        calls.add(agent_name)

    bus.register(OrchestratorEvent.AGENT_TERMINATED, broken)
    bus.register(OrchestratorEvent.AGENT_TERMINATED, fine)
    with caplog.at_level(logging.ERROR):
        bus.emit(OrchestratorEvent.AGENT_TERMINATED, agent_name="a")
        bus.emit(OrchestratorEvent.AGENT_TERMINATED, agent_name="b")
        assert sorted(calls.wait(2)) == ["a", "b"]
        executor = bus._executor
        assert wait_until(lambda: executor.failed == 2, 5)
    assert "callback exploded" in caplog.text


def test_a_raising_callback_in_an_orchestrator_does_not_stop_others(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator()

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("callback exploded")

    for event in OrchestratorEvent:
        orchestrator.register_event(event, broken)
    recorder.attach(orchestrator)
    orchestrator.register_agent(agent("quick", flavour), "q")
    orchestrator.start()
    assert orchestrator.join() == []
    recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "q")
    assert orchestrator.report()["callbacks"]["failed"] >= 4


# ---------------------------------------------------------------- where and in what order


def test_callbacks_run_off_the_router_thread(
    make_orchestrator: MakeOrchestrator, flavour: str
) -> None:
    orchestrator = make_orchestrator("offrouter")
    threads = Calls()

    def where(agent_name: str) -> None:
        threads.add(threading.current_thread().name)

    for event in (
        OrchestratorEvent.AGENT_STARTED,
        OrchestratorEvent.AGENT_READY,
        OrchestratorEvent.AGENT_TERMINATED,
    ):
        orchestrator.register_event(event, where)
    orchestrator.register_agent(agent("quick", flavour), "q")
    orchestrator.start()
    names = threads.wait(3)
    router_name = orchestrator.router._thread.name
    assert router_name.startswith("pyorchestrate-router")
    for name in names:
        assert name != router_name
        assert name.startswith("pyorchestrate-offrouter-callbacks-"), name
        assert name != threading.main_thread().name
    orchestrator.join()


def test_one_agents_callbacks_run_in_event_order() -> None:
    bus = EventBus(
        EventHistory(), CallbackExecutor(4, 1000, name="pyorchestrate-order")
    )
    seen: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    done = Calls()

    def record(agent_name: str, seq: int) -> None:
        if seq % 3 == 0:
            time.sleep(0.001)  # uneven durations would reorder a shared pool
        seen[agent_name].append(seq)
        done.add(seq)

    bus.register(OrchestratorEvent.AGENT_HEARTBEAT, record)
    for i in range(150):
        bus.emit(OrchestratorEvent.AGENT_HEARTBEAT, agent_name="abc"[i % 3])
    done.wait(150)
    assert bus.close(5.0) == []
    for name, seqs in seen.items():
        assert len(seqs) == 50, name
        assert seqs == sorted(seqs), name


def test_one_agents_lifecycle_callbacks_arrive_in_order(
    make_orchestrator: MakeOrchestrator, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    order = Calls()

    def slow_first(event: OrchestratorEvent) -> None:
        if event is OrchestratorEvent.AGENT_STARTED:
            time.sleep(0.05)
        order.add(event.value)

    for event in OrchestratorEvent:
        orchestrator.register_event(event, slow_first)
    orchestrator.register_agent(agent("boom", flavour), "b")
    orchestrator.start()
    orchestrator.join()
    assert order.wait(5) == [
        "agent_registered",
        "agent_started",
        "agent_ready",
        "agent_error",
        "agent_terminated",
    ]


def test_no_listeners_no_threads() -> None:
    executor = CallbackExecutor(2, 10, name="pyorchestrate-idle")
    event_bus = EventBus(EventHistory(), executor)
    before = {t.name for t in threading.enumerate()}
    record = event_bus.emit(OrchestratorEvent.AGENT_STARTED, agent_name="a")
    assert record is not None  # still recorded
    assert event_bus.history.last(1)[0].event_name == "agent_started"
    after = {t.name for t in threading.enumerate()}
    assert not any(n.startswith("pyorchestrate-idle") for n in after - before)
    event_bus.close()


# ---------------------------------------------------------------- closing


def test_emit_after_close_is_dropped(
    bus: EventBus, caplog: pytest.LogCaptureFixture
) -> None:
    calls = Calls()
    bus.register(OrchestratorEvent.AGENT_STARTED, lambda agent_name: calls.add(1))
    bus.close(5.0)
    assert bus.closed
    last_seq = bus.history.last_seq
    with caplog.at_level(logging.WARNING):
        assert bus.emit(OrchestratorEvent.AGENT_STARTED, agent_name="late") is None
    assert "late" in caplog.text
    assert bus.history.last_seq == last_seq
    assert calls.items == []
    bus.close(5.0)  # twice is safe


def test_close_runs_what_is_queued_then_stops_the_threads() -> None:
    executor = CallbackExecutor(1, 100, name="pyorchestrate-drain")
    event_bus = EventBus(EventHistory(), executor)
    calls = Calls()

    def slow(seq: int) -> None:
        time.sleep(0.01)
        calls.add(seq)

    event_bus.register(OrchestratorEvent.AGENT_STARTED, slow)
    for _ in range(10):
        event_bus.emit(OrchestratorEvent.AGENT_STARTED, agent_name="a")
    assert event_bus.close(5.0) == []
    assert len(calls.items) == 10
    assert not any(
        t.name.startswith("pyorchestrate-drain") for t in threading.enumerate()
    )
    assert executor.completed == 10


def test_a_full_queue_drops_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    executor = CallbackExecutor(1, 1, name="pyorchestrate-full")
    event_bus = EventBus(EventHistory(), executor)
    gate = threading.Event()
    entered = threading.Event()

    def blocking(seq: int) -> None:
        entered.set()
        gate.wait(10)

    event_bus.register(OrchestratorEvent.AGENT_STARTED, blocking)
    event_bus.emit(OrchestratorEvent.AGENT_STARTED, agent_name="a")
    assert entered.wait(5)  # the worker is busy; the queue has room for one
    with caplog.at_level(logging.ERROR):
        event_bus.emit(OrchestratorEvent.AGENT_STARTED, agent_name="a")
        event_bus.emit(OrchestratorEvent.AGENT_STARTED, agent_name="a")
    assert executor.dropped == 1
    assert "full" in caplog.text
    # Recorded in the history even when the callback was dropped.
    assert len(event_bus.history.last(10, event_name="agent_started")) == 3
    gate.set()
    assert event_bus.close(5.0) == []


# ---------------------------------------------------------------- AgentEvent vs OrchestratorEvent


def test_agent_event_and_orchestrator_event_listeners_are_independent(
    bus: EventBus,
) -> None:
    agent_calls = Calls()
    orch_calls = Calls()
    bus.register(AgentEvent.ERROR, lambda agent_name: agent_calls.add(agent_name))
    bus.register(
        OrchestratorEvent.AGENT_ERROR, lambda agent_name: orch_calls.add(agent_name)
    )
    bus.emit(OrchestratorEvent.AGENT_ERROR, agent_name="a")
    assert orch_calls.wait(1) == ["a"]
    bus.close(5.0)  # every queued callback has run
    assert agent_calls.items == []
    assert AgentEvent.ERROR.value == OrchestratorEvent.AGENT_ERROR.value


def test_emit_records_severity_and_context(bus: EventBus) -> None:
    record = bus.emit(
        OrchestratorEvent.AGENT_ERROR,
        agent_name="a",
        context={"error_message": "boom", "pid": 7, "exit_code": None},
    )
    assert record is not None
    assert record.severity is Severity.ERROR
    assert record.category == "orchestrator"
    assert record.event_name == "agent_error"
    assert record.agent == "a"
    assert record.data == {"error_message": "boom", "pid": "7"}
    info = bus.emit(OrchestratorEvent.AGENT_STARTED, agent_name="a")
    assert info is not None and info.severity is Severity.INFO


@pytest.mark.parametrize(
    ("event", "context", "expected"),
    [
        (OrchestratorEvent.AGENT_ERROR, {}, Severity.ERROR),
        (OrchestratorEvent.AGENT_WATCHDOG_TIMEOUT, {}, Severity.ERROR),
        (OrchestratorEvent.AGENT_RESTARTING, {}, Severity.WARNING),
        (OrchestratorEvent.AGENT_FATAL, {}, Severity.CRITICAL),
        (OrchestratorEvent.AGENT_HEARTBEAT, {}, Severity.DEBUG),
        (OrchestratorEvent.AGENT_READY, {}, Severity.INFO),
        (OrchestratorEvent.AGENT_TERMINATED, {}, Severity.INFO),
        (
            OrchestratorEvent.AGENT_TERMINATED,
            {"termination_status": "success"},
            Severity.INFO,
        ),
        (
            OrchestratorEvent.AGENT_TERMINATED,
            {"termination_status": "warning"},
            Severity.WARNING,
        ),
        (
            OrchestratorEvent.AGENT_TERMINATED,
            {"termination_status": "error"},
            Severity.ERROR,
        ),
        (
            OrchestratorEvent.AGENT_TERMINATED,
            {"termination_status": "critical"},
            Severity.CRITICAL,
        ),
    ],
)
def test_the_record_carries_the_one_severity_decision(
    bus: EventBus,
    event: OrchestratorEvent,
    context: dict[str, object],
    expected: Severity,
) -> None:
    # What the alerts always said (notifiers read the termination status and sent
    # heartbeats at DEBUG), the history now says too: severity_of decides for both.
    assert severity_of(event, context) is expected
    record = bus.emit(event, agent_name="a", context=context)
    assert record is not None
    assert record.severity is expected
    assert record.to_dict()["severity"] == expected.name  # the wire keeps the name


def test_a_termination_status_enum_counts_like_its_value() -> None:
    status = {"termination_status": AgentTerminationStatus.ERROR}
    assert severity_of(OrchestratorEvent.AGENT_TERMINATED, status) is Severity.ERROR


def test_callbacks_get_the_typed_record(bus: EventBus) -> None:
    calls = Calls()
    bus.register(OrchestratorEvent.AGENT_RESTARTING, lambda record: calls.add(record))
    emitted = bus.emit(OrchestratorEvent.AGENT_RESTARTING, agent_name="a")
    (record,) = calls.wait(1)
    assert record is emitted
    assert isinstance(record, EventRecord)
    assert record.severity is Severity.WARNING
