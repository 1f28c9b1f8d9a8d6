"""register_agent with every parameter, register_event, and the bad-input errors."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable

import pytest

from pyorchestrate import (
    AgentPlugin,
    AgentState,
    ConfigError,
    ControlEvents,
    LifecycleError,
    MessageChannel,
    OrchestratorEvent,
    RegistrationError,
    StateEvents,
    make_event,
)
from pyorchestrate.core.agent import (
    BaseAgent,
    LoopingConfig,
    LoopingThreadAgent,
    OneShotThreadAgent,
)
from pyorchestrate.core.utilities.messaging import MessageType, ServiceMessage
from pyorchestrate.testing import EventRecorder, wait_until
from tests.agents import QuickThread, RecordingPlugin, SlowThread, agent

from .conftest import MakeOrchestrator


def _drain_until(
    channel: MessageChannel,
    predicate: Callable[[ServiceMessage], bool],
    timeout: float = 10.0,
) -> list[ServiceMessage]:
    """Read ``channel`` until a message satisfies ``predicate``; return all read."""
    seen: list[ServiceMessage] = []
    found = wait_until(
        lambda: _read_some(channel, seen) and any(map(predicate, seen)),
        timeout=timeout,
    )
    assert found, seen
    return seen


def _read_some(channel: MessageChannel, into: list[ServiceMessage]) -> bool:
    with contextlib.suppress(queue.Empty):
        into.append(channel.get(timeout=0.05))
    return True


def _is_close(message: ServiceMessage) -> bool:
    return (
        message.type is MessageType.STATUS
        and message.payload.get("event") == "agent_close"
    )


# ---------------------------------------------------------------- the entry


def test_fresh_entry_is_registered_with_generation_zero(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator()
    entry = orchestrator.register_agent(QuickThread, "q")
    assert entry.name == "q"
    assert entry.state is AgentState.REGISTERED
    assert entry.generation_id == 0
    assert entry.is_initialized is False
    assert entry.is_alive() is False
    with pytest.raises(RuntimeError):
        entry.require_instance()
    assert orchestrator.get_agent("q") is entry
    assert orchestrator.agents == {"q": entry}


def test_fresh_entry_instance_raises_runtime_error(
    make_orchestrator: MakeOrchestrator,
) -> None:
    """Checklist §12.2: ``.instance`` raises RuntimeError until the agent has one."""
    orchestrator = make_orchestrator()
    entry = orchestrator.register_agent(QuickThread, "q")
    with pytest.raises(RuntimeError):
        _ = entry.instance


def test_name_defaults_to_the_class_name(make_orchestrator: MakeOrchestrator) -> None:
    orchestrator = make_orchestrator()
    entry = orchestrator.register_agent(QuickThread)
    assert entry.name == "QuickThread"
    assert "QuickThread" in orchestrator.agents


def test_registration_emits_and_records_agent_registered(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    orchestrator.register_agent(QuickThread, "q")
    event = recorder.wait_for(OrchestratorEvent.AGENT_REGISTERED, "q")
    assert event["agent_name"] == "q"
    assert event["event_date"] and event["event_time"]
    records = orchestrator.events(event_name="agent_registered")
    assert [r.agent for r in records] == ["q"]
    assert records[0].category == "orchestrator"


# ---------------------------------------------------------------- bad input


class NotAnAgent:
    def run(self) -> None:
        pass


class AbstractLooping(LoopingThreadAgent):
    """Does not implement ``cycle``."""


@pytest.mark.parametrize(
    "bad",
    [
        NotAnAgent,
        BaseAgent,  # no flavour
        LoopingThreadAgent,  # abstract
        AbstractLooping,
        QuickThread(),  # an instance, not a class
        "QuickThread",
        len,
    ],
    ids=[
        "plain-class",
        "BaseAgent",
        "abstract",
        "abstract-subclass",
        "instance",
        "str",
        "function",
    ],
)
def test_not_an_agent_class_is_a_type_error(
    make_orchestrator: MakeOrchestrator, bad: object
) -> None:
    orchestrator = make_orchestrator()
    with pytest.raises(TypeError):
        orchestrator.register_agent(bad, "bad")  # type: ignore[arg-type]
    assert len(orchestrator.registry) == 0
    assert orchestrator.events(event_name="agent_registered") == []


def test_duplicate_name_is_a_value_error_and_keeps_the_first(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator()
    first = orchestrator.register_agent(
        agent("counter", "thread"), "dup", custom_config={"limit": 2}
    )
    with pytest.raises(ValueError, match="dup") as info:
        orchestrator.register_agent(QuickThread, "dup", custom_config={"limit": 1})
    assert isinstance(info.value, RegistrationError)
    kept = orchestrator.get_agent("dup")
    assert kept is first
    assert kept.agent_class is agent("counter", "thread")
    assert kept.config is not None and kept.config.limit == 2  # type: ignore[attr-defined]
    assert len(orchestrator.registry) == 1
    assert len(orchestrator.events(event_name="agent_registered")) == 1


def test_invalid_custom_config_names_the_field(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator()
    with pytest.raises(ConfigError) as info:
        orchestrator.register_agent(
            agent("counter", "thread"), "c", custom_config={"limit": -5}
        )
    assert "limit:" in str(info.value)
    assert "c" not in orchestrator.agents


def test_custom_config_of_the_wrong_type_is_a_type_error(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator()
    with pytest.raises(TypeError):
        orchestrator.register_agent(QuickThread, "q", custom_config=42)  # type: ignore[arg-type]
    assert "q" not in orchestrator.agents


def test_kwarg_that_shadows_an_agent_method_is_a_type_error(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator()
    with pytest.raises(TypeError, match="stop"):
        orchestrator.register_agent(QuickThread, "q", stop=1)
    assert "q" not in orchestrator.agents


def test_thread_events_cannot_be_given_to_a_process_agent(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator()
    with pytest.raises(TypeError):
        orchestrator.register_agent(
            agent("quick", "process"),
            "p",
            state_events=StateEvents(start_event=threading.Event()),
        )
    assert "p" not in orchestrator.agents


# ---------------------------------------------------------------- every parameter


def test_custom_config_and_msg_channel(
    make_orchestrator: MakeOrchestrator, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    channel = MessageChannel()
    cls = agent("counter", flavour)
    orchestrator.register_agent(
        cls, "counter", custom_config=LoopingConfig(limit=3), msg_channel=channel
    )
    orchestrator.start()
    assert orchestrator.join() == []
    seen = _drain_until(channel, _is_close)
    cycles = [m.payload["cycle"] for m in seen if m.type is MessageType.DATA]
    assert cycles == [0, 1, 2]
    status = [m.payload["event"] for m in seen if m.type is MessageType.STATUS]
    assert status == ["agent_started", "agent_ready", "agent_close"]
    assert all(m.sender == "counter" for m in seen)
    assert all(
        m.payload.get("generation_id") == 1
        for m in seen
        if m.type is MessageType.STATUS
    )


def test_custom_config_as_a_mapping_keeps_defaults_and_extras(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator()
    entry = orchestrator.register_agent(
        agent("counter", "thread"),
        "c",
        custom_config={"limit": 1, "output_file": "custom.txt"},
    )
    config = entry.config
    assert config is not None
    assert config.limit == 1  # type: ignore[attr-defined]
    assert config.output_file == "custom.txt"  # type: ignore[attr-defined]
    assert config.heartbeat_interval is None  # default kept
    assert orchestrator.agent_status("c")["config"]["output_file"] == "custom.txt"


def test_custom_plugin_is_initialized_and_finalized(
    make_orchestrator: MakeOrchestrator, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    channel = MessageChannel()
    orchestrator.register_agent(
        agent("quick", flavour),
        "q",
        custom_plugin=AgentPlugin(recorder=RecordingPlugin("mine")),
        msg_channel=channel,
    )
    orchestrator.start()
    orchestrator.join()
    seen = _drain_until(channel, _is_close)
    steps = [
        (m.payload["plugin"], m.payload["step"])
        for m in seen
        if m.type is MessageType.DATA and "plugin" in m.payload
    ]
    assert steps == [("mine", "initialize"), ("mine", "finalize")]


def test_kwargs_are_attributes_of_the_agent(
    make_orchestrator: MakeOrchestrator, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    channel = MessageChannel()
    entry = orchestrator.register_agent(
        agent("echo", flavour), "e", msg_channel=channel, echo={"x": [1, 2]}
    )
    assert entry.spec.kwargs == {"echo": {"x": [1, 2]}}
    orchestrator.start()
    orchestrator.join()
    seen = _drain_until(channel, _is_close)
    echoed = [m.payload["echo"] for m in seen if "echo" in m.payload]
    assert echoed == [{"x": [1, 2]}]


def test_kwarg_overrides_a_plain_class_level_default(
    make_orchestrator: MakeOrchestrator,
) -> None:
    """A data default declared on the class (``duration = 0.3``) is a kwarg to set.

    tests/agents.py documents ``SlowThread(duration=…)``, ``StubbornThread(release=…)``
    and ``ExitProcess(code=…)`` this way; only methods and framework attributes
    should be protected from shadowing.
    """
    orchestrator = make_orchestrator()
    entry = orchestrator.register_agent(SlowThread, "slow", duration=0.01)
    assert entry.spec.kwargs == {"duration": 0.01}
    orchestrator.start()
    assert orchestrator.join() == []
    assert entry.require_instance().duration == 0.01  # type: ignore[attr-defined]


def test_control_events_steer_the_agent(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    execute = make_event(flavour)  # type: ignore[arg-type]
    orchestrator.register_agent(
        agent("quick", flavour),
        "gated",
        control_events=ControlEvents(execute_event=execute),
    )
    orchestrator.start()
    recorder.wait_for(OrchestratorEvent.AGENT_READY, "gated")
    # Held at execute_event: it does not finish on its own.
    assert not wait_until(
        lambda: bool(recorder.of(OrchestratorEvent.AGENT_TERMINATED, "gated")),
        timeout=0.3,
    )
    assert orchestrator.get_agent("gated").is_alive()
    execute.set()
    recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "gated")
    assert orchestrator.join() == []


def test_state_events_are_set_by_the_agent(
    make_orchestrator: MakeOrchestrator, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    events = StateEvents(
        start_event=make_event(flavour),  # type: ignore[arg-type]
        ready_event=make_event(flavour),  # type: ignore[arg-type]
        close_event=make_event(flavour),  # type: ignore[arg-type]
    )
    orchestrator.register_agent(agent("quick", flavour), "q", state_events=events)
    assert not events.close_event.is_set()  # type: ignore[union-attr]
    orchestrator.start()
    assert events.close_event.wait(10)  # type: ignore[union-attr]
    assert events.start_event.is_set()  # type: ignore[union-attr]
    assert events.ready_event.is_set()  # type: ignore[union-attr]
    assert orchestrator.join() == []


# ---------------------------------------------------------------- register_event


def test_register_event_rejects_non_events(make_orchestrator: MakeOrchestrator) -> None:
    orchestrator = make_orchestrator()
    with pytest.raises(TypeError):
        orchestrator.register_event("agent_started", lambda: None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        orchestrator.register_event(OrchestratorEvent.AGENT_STARTED, "not callable")  # type: ignore[arg-type]


def test_register_event_callback_runs_for_every_agent(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator()
    names: list[str] = []
    done = threading.Event()

    def on_terminated(agent_name: str) -> None:
        names.append(agent_name)
        if len(names) == 2:
            done.set()

    orchestrator.register_event(OrchestratorEvent.AGENT_TERMINATED, on_terminated)
    orchestrator.register_agent(QuickThread, "a")
    orchestrator.register_agent(QuickThread, "b")
    orchestrator.start()
    orchestrator.join()
    assert done.wait(10)
    assert sorted(names) == ["a", "b"]


def test_unregister_event(make_orchestrator: MakeOrchestrator) -> None:
    orchestrator = make_orchestrator()
    calls: list[str] = []

    def callback(agent_name: str) -> None:
        calls.append(agent_name)

    orchestrator.register_event(OrchestratorEvent.AGENT_REGISTERED, callback)
    assert orchestrator.unregister_event(OrchestratorEvent.AGENT_REGISTERED, callback)
    assert not orchestrator.unregister_event(
        OrchestratorEvent.AGENT_REGISTERED, callback
    )
    orchestrator.register_agent(QuickThread, "q")
    orchestrator.shutdown()  # runs whatever was queued
    assert calls == []


# ---------------------------------------------------------------- start twice


def test_start_twice_is_a_clear_error_and_starts_nothing_twice(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    orchestrator.register_agent(agent("forever", flavour), "f")
    orchestrator.start()
    recorder.wait_for(OrchestratorEvent.AGENT_STARTED, "f")
    with pytest.raises(LifecycleError, match="already started"):
        orchestrator.start()
    entry = orchestrator.get_agent("f")
    assert entry.generation_id == 1
    assert entry.starts == 1
    orchestrator.stop()
    assert orchestrator.join() == []
    assert len(recorder.of(OrchestratorEvent.AGENT_STARTED, "f")) == 1
    assert len(orchestrator.events(agent="f", event_name="agent_started")) == 1


def test_start_after_shutdown_is_an_error(make_orchestrator: MakeOrchestrator) -> None:
    orchestrator = make_orchestrator()
    orchestrator.register_agent(QuickThread, "q")
    orchestrator.shutdown()
    with pytest.raises(RuntimeError):
        orchestrator.start()
    assert orchestrator.get_agent("q").generation_id == 0


def test_an_abstract_one_shot_is_refused(make_orchestrator: MakeOrchestrator) -> None:
    orchestrator = make_orchestrator()
    with pytest.raises(TypeError, match="task"):
        orchestrator.register_agent(OneShotThreadAgent, "o")
