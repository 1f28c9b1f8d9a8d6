"""Agent plugins: discovery, order around the lifecycle, failures (§12 item 56, §8)."""

from __future__ import annotations

import logging

import pytest

from pyorchestrate.core.agent import AgentPlugin, PluginManager, PluginProtocol
from pyorchestrate.core.utilities.event import OrchestratorEvent
from pyorchestrate.core.utilities.messaging import MessageChannel
from pyorchestrate.testing import EventRecorder
from tests.agents import (
    ChannelPlugin,
    ProbeThread,
    agent,
    new_orchestrator,
    read_until_closed,
    run_to_end,
    statuses,
    trace,
)


class Recorder:
    """A plugin that appends its calls to a shared list."""

    def __init__(self, log: list[str], tag: str, fail_on: str | None = None) -> None:
        self.log = log
        self.tag = tag
        self.fail_on = fail_on

    def _call(self, what: str) -> None:
        self.log.append(f"{self.tag}.{what}")
        if self.fail_on == what:
            raise RuntimeError(f"{self.tag} {what} failed")

    def set_owner(self, owner: object) -> None:
        self._call("set_owner")

    def initialize(self) -> None:
        self._call("initialize")

    def finalize(self) -> None:
        self._call("finalize")


class NoOwner:
    """A plugin without set_owner (it is optional)."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def initialize(self) -> None:
        self.log.append("no_owner.initialize")

    def finalize(self) -> None:
        self.log.append("no_owner.finalize")


# --------------------------------------------------------------------------- container


def test_protocol_needs_initialize_and_finalize() -> None:
    assert isinstance(NoOwner([]), PluginProtocol)
    assert isinstance(Recorder([], "r"), PluginProtocol)
    assert not isinstance(object(), PluginProtocol)


def test_container_finds_class_plugins_and_keyword_overrides() -> None:
    log: list[str] = []
    shared = Recorder(log, "shared")

    class Plugins(AgentPlugin):
        first = shared
        second = Recorder(log, "second")
        unset = None
        not_a_plugin = 42
        _private = Recorder(log, "private")

    replacement = Recorder(log, "replacement")
    extra = NoOwner(log)
    container = Plugins(second=replacement, extra=extra, also_not=object())
    assert container.items() == [
        ("first", shared),
        ("second", replacement),
        ("extra", extra),
    ]
    assert AgentPlugin().items() == []


def test_manager_sets_owner_then_initializes_and_finalizes_in_reverse() -> None:
    log: list[str] = []
    container = AgentPlugin(a=Recorder(log, "a"), b=NoOwner(log))
    manager = PluginManager(container, owner=object())
    assert manager.get_plugin("b") is container.b
    assert manager.get_plugin("missing") is None
    manager.initialize()
    manager.finalize()
    assert log == [
        "a.set_owner",
        "a.initialize",
        "no_owner.initialize",
        "no_owner.finalize",
        "a.finalize",
    ]


def test_plugin_failures_are_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    container = AgentPlugin(
        a=Recorder(log, "a", fail_on="initialize"),
        b=Recorder(log, "b", fail_on="finalize"),
        c=Recorder(log, "c"),
    )
    manager = PluginManager(container, owner=object())
    with caplog.at_level(logging.ERROR):
        manager.initialize()
        manager.finalize()
    # Every plugin is initialized and finalized despite the failures around it,
    # the one that failed to initialize included.
    assert log == [
        "a.set_owner",
        "a.initialize",
        "b.set_owner",
        "b.initialize",
        "c.set_owner",
        "c.initialize",
        "c.finalize",
        "b.finalize",
        "a.finalize",
    ]
    messages = [r.getMessage() for r in caplog.records]
    assert "plugin 'a' failed to initialize" in messages
    assert "plugin 'b' failed to finalize" in messages


# --------------------------------------------------------------------------- in the agent


def _plugins(channel: MessageChannel, **fail: str) -> AgentPlugin:
    return AgentPlugin(
        one=ChannelPlugin(channel, "one", fail.get("one")),
        two=ChannelPlugin(channel, "two", fail.get("two")),
    )


def test_plugins_are_initialized_before_setup_and_finalized_after_on_close(
    flavour: str, channel: MessageChannel
) -> None:
    probe = agent("probe", flavour)("p", plugin=_plugins(channel), msg_channel=channel)
    run_to_end(probe)
    messages = read_until_closed(channel, ["p"])
    assert trace(messages) == [
        "status:agent_started",
        "one.set_owner",
        "one.initialize",
        "two.set_owner",
        "two.initialize",
        "setup",
        "status:agent_ready",
        "execute",
        "on_close",
        "two.finalize",
        "one.finalize",
        "status:agent_close",
    ]
    owners = {m.payload["owner"] for m in messages if m.sender in ("one", "two")}
    assert owners == {"p"}  # set_owner got the agent itself


def test_plugins_are_finalized_when_setup_fails(
    flavour: str, channel: MessageChannel
) -> None:
    probe = agent("probe", flavour)(
        "p", {"fail_in": "setup"}, plugin=_plugins(channel), msg_channel=channel
    )
    run_to_end(probe)
    steps = trace(read_until_closed(channel, ["p"]))
    assert steps[-5:] == [
        "status:agent_error",
        "on_close",
        "two.finalize",
        "one.finalize",
        "status:agent_close",
    ]


def test_plugins_are_not_initialized_after_a_config_error_but_are_finalized(
    flavour: str, channel: MessageChannel
) -> None:
    probe = agent("probe", flavour)(
        "p", {"threshold": 9}, plugin=_plugins(channel), msg_channel=channel
    )
    run_to_end(probe)
    assert trace(read_until_closed(channel, ["p"])) == [
        "status:agent_started",
        "status:agent_error",
        "on_close",
        "two.finalize",
        "one.finalize",
        "status:agent_close",
    ]


def test_failing_plugins_do_not_stop_the_agent(
    flavour: str, channel: MessageChannel, recorder: EventRecorder
) -> None:
    plugins = _plugins(channel, one="initialize", two="finalize")
    with new_orchestrator() as orchestrator:
        recorder.attach(orchestrator)
        orchestrator.register_agent(
            agent("probe", flavour), "p", custom_plugin=plugins, msg_channel=channel
        )
        orchestrator.start()
        assert orchestrator.join() == []
    messages = read_until_closed(channel, ["p"])
    steps = trace(messages)
    assert "execute" in steps
    assert "one.finalize" in steps  # still finalized after failing to initialize
    assert statuses(messages) == ["agent_started", "agent_ready", "agent_close"]
    assert messages[-1].payload["termination_status"] == "success"
    assert recorder.of(OrchestratorEvent.AGENT_ERROR) == []


def test_a_class_level_plugin_is_shared_by_thread_agents() -> None:
    log: list[str] = []

    class Plugins(AgentPlugin):
        shared = Recorder(log, "shared")

    class WithPlugins(ProbeThread):
        Plugin = Plugins

    first, second = WithPlugins("a"), WithPlugins("b")
    assert first.plugin.shared is second.plugin.shared
    run_to_end(first)
    run_to_end(second)
    assert log.count("shared.initialize") == 2
    assert log.count("shared.finalize") == 2
