"""The agent's final run(): order, statuses, error paths, control events and stop().

Checklist §12 items 10-16 (and §3 of the reference), in both flavours.
"""

from __future__ import annotations

import os
import signal
import threading

import pytest

from pyorchestrate.core.agent import (
    AgentTerminationStatus,
    BaseAgent,
    ControlEvents,
    StateEvents,
    make_event,
)
from pyorchestrate.core.utilities.event import OrchestratorEvent
from pyorchestrate.core.utilities.messaging import (
    MessageChannel,
    MessageType,
    ServiceMessage,
)
from pyorchestrate.testing import EventRecorder
from tests.agents import (
    ProbeConfig,
    ProbeProcess,
    ProbeThread,
    SlowThread,
    TermCleanupProcess,
    agent,
    is_status,
    new_orchestrator,
    read_until,
    read_until_closed,
    run_to_end,
    statuses,
    trace,
)

LIFECYCLE = ["agent_started", "agent_ready", "agent_close"]


# --------------------------------------------------------------------------- clean run


def test_clean_run_sends_exactly_start_ready_close(
    flavour: str, channel: MessageChannel
) -> None:
    probe = agent("probe", flavour)("p", msg_channel=channel)
    run_to_end(probe)
    messages = read_until_closed(channel, ["p"])
    assert trace(messages) == [
        "status:agent_started",
        "setup",
        "status:agent_ready",
        "execute",
        "on_close",
        "status:agent_close",
    ]
    for message in messages:
        assert message.sender == "p"
        if is_status(message):
            assert message.payload["status"] == "success"
            assert message.payload["error"] == ""
            assert "generation_id" not in message.payload  # standalone: none set
            assert message.payload["pid"] == probe.pid
    assert messages[-1].payload["termination_status"] == "success"
    assert channel.drain(0.1) == []


def test_status_payloads_carry_the_generation_id(
    flavour: str, channel: MessageChannel
) -> None:
    probe = agent("probe", flavour)("p", msg_channel=channel, generation_id=7)
    run_to_end(probe)
    messages = read_until_closed(channel, ["p"])
    assert statuses(messages) == LIFECYCLE
    assert {m.payload["generation_id"] for m in messages if is_status(m)} == {7}
    # DATA messages are left alone.
    assert all("generation_id" not in m.payload for m in messages if not is_status(m))


def test_state_events_are_set_in_order_start_ready_close(
    flavour: str, channel: MessageChannel
) -> None:
    state = StateEvents.create(flavour)
    probe = agent("probe", flavour)("p", msg_channel=channel, state_events=state)
    assert probe.state_events is not None
    run_to_end(probe)
    by_step = {
        m.payload["step"]: m.payload
        for m in read_until_closed(channel, ["p"])
        if "step" in m.payload
    }
    flags = ("start", "ready", "close")
    assert tuple(by_step["setup"][f] for f in flags) == (True, False, False)
    assert tuple(by_step["execute"][f] for f in flags) == (True, True, False)
    assert tuple(by_step["on_close"][f] for f in flags) == (True, True, False)
    # The caller's own events were used, and all three are set at the end.
    assert state.start_event.is_set()
    assert state.ready_event.is_set()
    assert state.close_event.is_set()


def test_process_agent_exit_code_reflects_success_and_failure(
    channel: MessageChannel,
) -> None:
    ok = agent("probe", "process")("ok", msg_channel=channel)
    failing = agent("probe", "process")(
        "bad", {"fail_in": "execute"}, msg_channel=channel
    )
    run_to_end(ok)
    run_to_end(failing)
    read_until_closed(channel, ["ok", "bad"])
    assert ok.exitcode == 0
    assert failing.exitcode == 1


def test_thread_agent_termination_status() -> None:
    ok = ProbeThread("ok")
    failing = ProbeThread("bad", {"fail_in": "execute"})
    bad_config = ProbeThread("cfg", {"threshold": 9})
    for a in (ok, failing, bad_config):
        run_to_end(a)
    assert ok.termination_status is AgentTerminationStatus.SUCCESS
    assert failing.termination_status is AgentTerminationStatus.CRITICAL
    assert bad_config.termination_status is AgentTerminationStatus.ERROR
    assert ok.start_time is not None


# --------------------------------------------------------------------------- failures


def test_exception_in_execute_sends_error_then_close(
    flavour: str, channel: MessageChannel, recorder: EventRecorder
) -> None:
    """§12.12: agent_error with the exception text, then CLOSE; CRITICAL; close set."""
    state = StateEvents.create(flavour)
    with new_orchestrator() as orchestrator:
        recorder.attach(orchestrator)
        orchestrator.register_agent(
            agent("probe", flavour),
            "p",
            {"fail_in": "execute"},
            state_events=state,
            msg_channel=channel,
        )
        orchestrator.start()
        assert orchestrator.join() == []
    messages = read_until_closed(channel, ["p"])
    assert trace(messages) == [
        "status:agent_started",
        "setup",
        "status:agent_ready",
        "execute",
        "status:agent_error",
        "on_close",
        "status:agent_close",
    ]
    error = next(m for m in messages if is_status(m, "agent_error"))
    assert error.payload["status"] == "error"
    assert error.payload["error"] == "ValueError: boom"
    assert error.payload["error_type"] == "ValueError"
    assert "raise ValueError" in error.payload["traceback"]
    assert messages[-1].payload["termination_status"] == "critical"
    assert state.close_event.is_set()

    assert recorder.names("p") == [
        "agent_registered",
        "agent_started",
        "agent_ready",
        "agent_error",
        "agent_terminated",
    ]
    [reported] = recorder.of(OrchestratorEvent.AGENT_ERROR, "p")
    assert reported["error_message"] == "ValueError: boom"
    assert reported["reason"] == "exception"
    terminated = recorder.of(OrchestratorEvent.AGENT_TERMINATED, "p")[0]
    assert terminated["termination_status"] == "critical"
    if flavour == "process":
        assert terminated["exit_code"] == 1


def test_exception_in_setup_skips_ready_and_execute_but_closes(
    flavour: str, channel: MessageChannel
) -> None:
    """§12.13: no READY, no execute; on_close still runs; CLOSE is still sent."""
    state = StateEvents.create(flavour)
    probe = agent("probe", flavour)(
        "p", {"fail_in": "setup"}, msg_channel=channel, state_events=state
    )
    run_to_end(probe)
    messages = read_until_closed(channel, ["p"])
    assert trace(messages) == [
        "status:agent_started",
        "setup",
        "status:agent_error",
        "on_close",
        "status:agent_close",
    ]
    error = next(m for m in messages if is_status(m, "agent_error"))
    assert error.payload["error"] == "RuntimeError: setup failed"
    assert not state.ready_event.is_set()
    assert state.close_event.is_set()


def test_exception_in_on_close_is_logged_and_the_agent_still_closes(
    flavour: str, channel: MessageChannel
) -> None:
    probe = agent("probe", flavour)("p", {"fail_in": "on_close"}, msg_channel=channel)
    run_to_end(probe)
    messages = read_until_closed(channel, ["p"])
    assert statuses(messages) == LIFECYCLE
    assert messages[-1].payload["termination_status"] == "success"


def test_sigterm_unwinds_a_process_agent_through_on_close(
    channel: MessageChannel,
) -> None:
    state = StateEvents.create("process")
    stubborn = TermCleanupProcess("t", msg_channel=channel, state_events=state)
    stubborn.start()
    try:
        assert state.ready_event.wait(15)
        stubborn.stop()  # ignored by this agent
        assert not state.close_event.wait(0.2)
        stubborn.terminate()
        stubborn.join(15)
    finally:
        if stubborn.is_alive():
            stubborn.kill()
            stubborn.join(5)
    assert stubborn.exitcode == -signal.SIGTERM
    assert state.close_event.is_set()
    # The msg_channel gets a copy of every message, the last ones included.
    messages = read_until_closed(channel, ["t"], timeout=3)
    assert {"on_close": True} in [m.payload for m in messages]
    assert messages[-1].payload["termination_status"] == "warning"


# --------------------------------------------------------------------------- control


def test_default_control_events_never_block() -> None:
    for flavour in ("thread", "process"):
        events = agent("probe", flavour)("p").control_events
        assert events.setup_event.is_set()
        assert events.execute_event.is_set()
        assert not events.stop_event.is_set()


def test_custom_control_events_block_until_set(
    flavour: str, channel: MessageChannel
) -> None:
    """§12.15: setup() waits for setup_event, execute() for execute_event."""
    control = ControlEvents(
        setup_event=make_event(flavour), execute_event=make_event(flavour)
    )
    state = StateEvents.create(flavour)
    oneshot = agent("oneshot_probe", flavour)(
        "o", control_events=control, state_events=state, msg_channel=channel
    )
    oneshot.start()
    try:
        assert state.start_event.wait(15)
        assert not state.ready_event.wait(0.2)  # blocked in setup()
        control.setup_event.set()
        assert state.ready_event.wait(15)
        assert not state.close_event.wait(0.2)  # blocked in execute()
        assert "task" not in trace(channel.drain(0.05))
        control.execute_event.set()
        assert state.close_event.wait(15)
        oneshot.join(15)
    finally:
        oneshot.stop()
        oneshot.join(5)
    assert not oneshot.is_alive()
    rest = read_until_closed(channel, ["o"])
    assert trace(rest)[-3:] == ["task", "on_close", "status:agent_close"]


def test_stop_while_waiting_for_execute_event_ends_the_agent_without_work(
    flavour: str, channel: MessageChannel
) -> None:
    control = ControlEvents(execute_event=make_event(flavour))
    state = StateEvents.create(flavour)
    oneshot = agent("oneshot_probe", flavour)(
        "o", control_events=control, state_events=state, msg_channel=channel
    )
    oneshot.start()
    try:
        assert state.ready_event.wait(15)
        oneshot.stop()
        oneshot.join(15)
    finally:
        oneshot.stop()
        oneshot.join(5)
    assert not oneshot.is_alive()
    messages = read_until_closed(channel, ["o"])
    assert "task" not in trace(messages)
    assert messages[-1].payload["termination_status"] == "success"


# --------------------------------------------------------------------------- stop()


def test_stop_calls_on_stop_in_the_caller_then_sets_stop_event(flavour: str) -> None:
    probe = agent("probe", flavour)("p")
    assert not probe.stop_requested
    probe.stop()
    pid, thread_id, stop_was_set = probe.stopped_from
    assert (pid, thread_id) == (os.getpid(), threading.get_ident())
    assert stop_was_set is False
    assert probe.stop_event.is_set()
    assert probe.stop_requested


class _FailingOnStop(ProbeThread):
    def on_stop(self) -> None:
        raise RuntimeError("on_stop failed")


def test_stop_sets_stop_event_even_when_on_stop_raises() -> None:
    probe = _FailingOnStop("p")
    with pytest.raises(RuntimeError, match="on_stop failed"):
        probe.stop()
    assert probe.stop_event.is_set()


def test_stop_ends_an_infinite_looping_agent(
    flavour: str, channel: MessageChannel
) -> None:
    """§12.16: a LoopingAgent with limit -1 exits at its next check after stop()."""
    state = StateEvents.create(flavour)
    forever = agent("forever", flavour)("f", msg_channel=channel, state_events=state)
    forever.start()
    try:
        assert state.ready_event.wait(15)
        assert not state.close_event.wait(0.1)  # it really loops
        forever.stop()
        forever.join(15)
    finally:
        forever.stop()
        forever.join(5)
    assert not forever.is_alive()
    messages = read_until_closed(channel, ["f"])
    assert statuses(messages) == LIFECYCLE
    assert messages[-1].payload["termination_status"] == "success"


def test_wait_returns_early_on_stop() -> None:
    probe = ProbeThread("p")
    assert probe.wait(0.01) is False
    probe.stop()
    assert probe.wait(30) is True


# --------------------------------------------------------------------------- construction


def test_default_name_is_the_class_name_and_kwargs_become_attributes() -> None:
    probe = ProbeThread(colour="blue", retries=2)
    assert probe.name == "ProbeThread"
    assert (probe.colour, probe.retries) == ("blue", 2)
    assert "ProbeThread" in repr(probe)


def test_a_kwarg_may_set_a_class_level_default() -> None:
    slow = SlowThread("s", duration=0.05)
    assert slow.duration == 0.05
    assert SlowThread.duration == 0.3  # the class default is untouched
    with new_orchestrator() as orchestrator:
        entry = orchestrator.register_agent(SlowThread, "s", duration=0.05)
        assert entry.spec.kwargs == {"duration": 0.05}


@pytest.mark.parametrize("key", ["stop", "setup", "wait", "stop_event", "Config"])
def test_a_kwarg_that_would_replace_a_method_or_property_raises(key: str) -> None:
    with pytest.raises(TypeError, match=key):
        ProbeThread("p", **{key: 1})
    with new_orchestrator() as orchestrator:
        with pytest.raises(TypeError, match=key):
            orchestrator.register_agent(ProbeThread, "p", **{key: 1})
        assert orchestrator.agents == {}


@pytest.mark.parametrize(
    "key",
    ["config", "plugin", "generation_id", "termination_status", "logger", "_link"],
)
def test_registration_rejects_a_kwarg_the_framework_manages(key: str) -> None:
    """Refused at registration, not by every later start ("could not start: ...")."""
    with new_orchestrator() as orchestrator:
        with pytest.raises(TypeError, match=key):
            orchestrator.register_agent(ProbeThread, "p", **{key: None})
        assert orchestrator.agents == {}


@pytest.mark.parametrize("flavour_value", ["thread", "process"])
def test_flavour_cannot_be_replaced_by_a_kwarg(flavour_value: str) -> None:
    """``flavour`` is managed by the framework: the orchestrator acts on it.

    A thread agent registered with ``flavour="process"`` has its only link closed by
    the orchestrator right after start, losing its READY/CLOSE messages and producing
    a spurious AGENT_ERROR "exited with code None without closing".
    """
    with pytest.raises(TypeError, match="flavour"):
        ProbeThread("p", flavour=flavour_value)
    with pytest.raises(TypeError, match="flavour"):
        ProbeProcess("p", flavour=flavour_value)
    with new_orchestrator() as orchestrator:
        with pytest.raises(TypeError, match="flavour"):
            orchestrator.register_agent(ProbeThread, "p", flavour=flavour_value)
        assert orchestrator.agents == {}


def test_an_agent_class_without_a_flavour_cannot_be_built() -> None:
    class Flavourless(BaseAgent):
        def execute(self) -> None:
            pass

    with pytest.raises(TypeError, match="ThreadAgent"):
        Flavourless("x")


def test_an_agent_can_only_be_started_once(flavour: str) -> None:
    probe = agent("probe", flavour)("p")
    run_to_end(probe)
    with pytest.raises(RuntimeError, match="once"):
        probe.start()


def test_send_message_wraps_mappings_and_stamps_status_generation(
    channel: MessageChannel,
) -> None:
    probe = ProbeThread("p", msg_channel=channel, generation_id=3)
    probe.send_message({"k": 1})
    probe.send_message(ServiceMessage("p", MessageType.STATUS, {"event": "x"}))
    probe.send_message(
        ServiceMessage("p", MessageType.STATUS, {"event": "y", "generation_id": 9})
    )
    data, status, explicit = read_until(
        channel, lambda m: m.payload.get("event") == "y", timeout=5
    )
    assert (data.sender, data.type, data.payload) == ("p", MessageType.DATA, {"k": 1})
    assert status.payload == {"event": "x", "generation_id": 3}
    assert explicit.payload["generation_id"] == 9


def test_send_message_to_a_closed_channel_does_not_raise() -> None:
    closed = MessageChannel()
    closed.close()
    probe = ProbeThread("p", msg_channel=closed)
    probe.send_message({"k": 1})  # logged, not raised


def test_standalone_agent_without_a_channel_runs(flavour: str) -> None:
    state = StateEvents.create(flavour)
    probe = agent("probe", flavour)("p", state_events=state)
    run_to_end(probe)
    assert state.close_event.is_set()


def test_probe_config_is_the_agents_config() -> None:
    assert isinstance(ProbeThread("p").config, ProbeConfig)
