"""PoolAgent: children under an inner orchestrator (§12 item 59)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyorchestrate.core.agent import PoolAgentConfig, PoolProcessAgent, PoolThreadAgent
from pyorchestrate.core.orchestrator import (
    AgentSpec,
    AgentState,
    OrchestratorConfig,
)
from pyorchestrate.core.utilities.event import OrchestratorEvent
from pyorchestrate.core.utilities.messaging import MessageChannel
from pyorchestrate.testing import EventRecorder
from tests.agents import (
    QuickThread,
    agent,
    is_status,
    new_orchestrator,
    read_until,
    read_until_closed,
    statuses,
)


def _pool_config(
    specs: list[AgentSpec], max_workers: int = 2, **extra: object
) -> PoolAgentConfig:
    return PoolAgentConfig(
        agents_entry=specs,
        execution_interval=0.02,
        orchestrator_config=OrchestratorConfig(
            max_workers=max_workers, enable_command_interface=False
        ),
        **extra,
    )


@pytest.mark.parametrize(
    ("pool_flavour", "child_flavour"),
    [
        ("thread", "thread"),
        ("thread", "process"),
        ("process", "thread"),
        ("process", "process"),
    ],
)
def test_pool_runs_every_child_beyond_its_worker_limit_then_ends(
    pool_flavour: str,
    child_flavour: str,
    channel: MessageChannel,
    recorder: EventRecorder,
) -> None:
    names = [f"child{i}" for i in range(4)]
    specs = [
        AgentSpec(agent("slow", child_flavour), name, msg_channel=channel)
        for name in names
    ]
    with new_orchestrator("outer") as outer:
        recorder.attach(outer)
        outer.register_agent(
            agent("pool", pool_flavour),
            "pool",
            _pool_config(specs, max_workers=2),
            msg_channel=channel,
        )
        outer.start()
        assert outer.join() == []
    messages = read_until_closed(channel, [*names, "pool"])
    for name in names:
        assert statuses(messages, name) == [
            "agent_started",
            "agent_ready",
            "agent_close",
        ], name
    child_closes = [
        m.timestamp
        for m in messages
        if m.sender in names and is_status(m, "agent_close")
    ]
    child_starts = sorted(
        m.timestamp
        for m in messages
        if m.sender in names and is_status(m, "agent_started")
    )
    pool_close = next(
        m for m in messages if m.sender == "pool" and is_status(m, "agent_close")
    )
    # The pool ended because its children had: after the last of them closed.
    assert pool_close.timestamp >= max(child_closes)
    assert pool_close.payload["termination_status"] == "success"
    # Only two slots: the third child started after one of the first two closed.
    assert child_starts[2] >= min(child_closes)
    assert recorder.of(OrchestratorEvent.AGENT_ERROR) == []
    [terminated] = recorder.of(OrchestratorEvent.AGENT_TERMINATED, "pool")
    assert terminated["termination_status"] == "success"


def test_stopping_the_pool_shuts_its_children_down(
    flavour: str, channel: MessageChannel, recorder: EventRecorder
) -> None:
    specs = [AgentSpec(agent("forever", "thread"), "child", msg_channel=channel)]
    with new_orchestrator("outer") as outer:
        recorder.attach(outer)
        outer.register_agent(
            agent("pool", flavour), "pool", _pool_config(specs), msg_channel=channel
        )
        outer.start()
        read_until(
            channel, lambda m: m.sender == "child" and is_status(m, "agent_ready")
        )
        outer.stop()
        assert outer.join() == []
        pool_entry = outer.get_agent("pool")
    messages = read_until_closed(channel, ["child", "pool"])
    child_close = next(m for m in messages if m.sender == "child" and is_status(m))
    pool_close = next(
        m for m in messages if m.sender == "pool" and is_status(m, "agent_close")
    )
    assert child_close.payload["termination_status"] == "success"
    assert pool_close.timestamp >= child_close.timestamp  # on_close waited for it
    assert recorder.of(OrchestratorEvent.AGENT_ERROR) == []
    if flavour == "thread":
        inner = pool_entry.require_instance().orchestrator  # type: ignore[attr-defined]
        assert inner.get_agent("child").state is AgentState.TERMINATED
        assert inner.event_bus.closed
        assert inner.shutdown() == []  # already shut down by on_close


def test_on_close_shuts_the_inner_orchestrator_down() -> None:
    pool = PoolThreadAgent(
        "pool", _pool_config([AgentSpec(QuickThread, "q")], max_workers=1)
    )
    pool.setup()
    inner = pool.orchestrator
    assert inner.get_agent("q").state is not AgentState.REGISTERED  # setup started it
    pool.on_close()
    assert inner.event_bus.closed
    assert inner.get_agent("q").state is AgentState.TERMINATED
    assert not inner.get_agent("q").is_alive()


def test_the_inner_orchestrator_has_no_command_interface_by_default() -> None:
    pool = PoolThreadAgent("p", {"agents_entry": [AgentSpec(QuickThread, "q")]})
    pool.setup()
    try:
        inner = pool.orchestrator
        assert inner.config.enable_command_interface is False
        assert inner.command_server is None
        assert not Path(inner.command_socket_path).exists()
        assert inner.name == "p.pool"
    finally:
        pool.on_close()


def test_the_inner_orchestrator_uses_the_given_config() -> None:
    config = OrchestratorConfig(max_workers=3, enable_command_interface=False)
    pool = PoolThreadAgent("p", {"orchestrator_config": config})
    pool.setup()
    try:
        assert pool.orchestrator.config.max_workers == 3
        assert pool.orchestrator.agents == {}
    finally:
        pool.on_close()


def test_the_orchestrator_property_raises_before_setup() -> None:
    with pytest.raises(RuntimeError, match="setup"):
        _ = PoolProcessAgent("p").orchestrator
    PoolThreadAgent("p").on_close()  # nothing to shut down yet: a no-op


def test_an_empty_pool_warns_and_ends_cleanly(
    flavour: str, channel: MessageChannel, recorder: EventRecorder
) -> None:
    with new_orchestrator("outer") as outer:
        recorder.attach(outer)
        outer.register_agent(
            agent("pool", flavour), "pool", _pool_config([]), msg_channel=channel
        )
        outer.start()
        assert outer.join() == []
    assert statuses(read_until_closed(channel, ["pool"])) == [
        "agent_started",
        "agent_ready",
        "agent_close",
    ]
    assert recorder.of(OrchestratorEvent.AGENT_ERROR) == []


def test_an_empty_pool_is_an_error_when_warnings_are_not_ignored(
    recorder: EventRecorder,
) -> None:
    config = PoolAgentConfig(validation_policy={"ignore_warnings": False})
    with new_orchestrator("outer") as outer:
        recorder.attach(outer)
        outer.register_agent(PoolThreadAgent, "pool", config)
        outer.start()
        assert outer.join() == []
    [error] = recorder.of(OrchestratorEvent.AGENT_ERROR, "pool")
    assert "agents_entry" in error["error_message"]
    assert error["reason"] == "config"


def test_pool_hooks_run_around_each_check() -> None:
    calls: list[str] = []

    class Hooked(PoolThreadAgent):
        def pre_runner(self) -> None:
            calls.append("pre")

        def post_runner(self) -> None:
            calls.append("post")

    pool = Hooked(
        "h",
        {
            "execution_interval": 0.01,
            "agents_entry": [AgentSpec(agent("slow", "thread"), "s")],
        },
    )
    pool.start()
    pool.join(15)
    assert not pool.is_alive()
    # Checks while the child ran end with post_runner; the final one stops instead.
    assert calls[0] == "pre"
    assert calls[-1] == "pre"
    assert "post" in calls
    assert calls.count("pre") == calls.count("post") + 1
