"""Agent names: what a name may be, checked at registration and at every lookup.

Issue 12, item 4: ``register_agent(IdleThread, 5)`` was accepted, the CLI could not
address the agent, and ``shutdown()`` then raised ``AttributeError`` and left threads
running; ``register_agent(Cls, "")`` silently used the class name.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from pyorchestrate import Orchestrator, RegistrationError
from pyorchestrate.core.agent import PoolThreadAgent
from pyorchestrate.core.control.client import ControlClient
from pyorchestrate.core.orchestrator import AgentSpec
from tests.agents import ForeverThread, QuickThread
from tests.cli._support import invoke_cli

from .conftest import FAST, MakeOrchestrator


def _orchestrator_threads(name: str) -> list[str]:
    return [t.name for t in threading.enumerate() if name in t.name]


def test_a_non_string_name_is_refused_and_shutdown_stays_clean(
    make_orchestrator: MakeOrchestrator,
) -> None:
    """The issue's reproduction: two agents, one named 5, then shutdown()."""
    orchestrator = make_orchestrator("names-int")
    with pytest.raises(TypeError, match=r"name: .*must be a string, not int \(5\)"):
        orchestrator.register_agent(ForeverThread, 5)  # type: ignore[arg-type]
    assert orchestrator.agents == {}
    assert orchestrator.events(event_name="agent_registered") == []
    orchestrator.register_agent(ForeverThread, "second")
    orchestrator.start()
    assert orchestrator.shutdown(timeout=2.0) == []
    assert _orchestrator_threads("names-int") == []
    assert _orchestrator_threads("pyorchestrate-agent-") == []


@pytest.mark.parametrize("bad", [5, 1.5, b"bytes", ("a",), object()])
def test_every_non_string_name_is_a_type_error_naming_name(
    make_orchestrator: MakeOrchestrator, bad: object
) -> None:
    orchestrator = make_orchestrator()
    with pytest.raises(TypeError, match=r"^name: "):
        orchestrator.register_agent(QuickThread, bad)  # type: ignore[arg-type]
    assert len(orchestrator.registry) == 0


def test_an_empty_name_is_an_error_and_only_none_means_the_class_name(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator()
    with pytest.raises(RegistrationError, match=r"^name: .*must not be empty"):
        orchestrator.register_agent(QuickThread, "")
    assert orchestrator.agents == {}
    assert orchestrator.register_agent(QuickThread, None).name == "QuickThread"


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (" worker", "whitespace"),
        ("worker ", "whitespace"),
        ("worker\n", "whitespace"),
        ("a\tb", "U\\+0009"),
        ("a\nb", "U\\+000A"),
        ("a\x1bb", "U\\+001B"),
        ("a\u200bb", "U\\+200B"),  # zero-width space: looks like "ab"
        ("a\u2028b", "U\\+2028"),  # line separator
        ("a\u00a0b", "U\\+00A0"),  # no-break space: looks like "a b"
    ],
)
def test_names_the_cli_could_not_type_or_show_are_refused(
    make_orchestrator: MakeOrchestrator, bad: str, why: str
) -> None:
    orchestrator = make_orchestrator()
    with pytest.raises(RegistrationError, match=why) as info:
        orchestrator.register_agent(QuickThread, bad)
    assert str(info.value).startswith("name: ")
    assert isinstance(info.value, ValueError)
    assert len(orchestrator.registry) == 0


def test_an_agent_spec_checks_its_name_too() -> None:
    """Specs handed to a pool never pass through register_agent's own check."""
    with pytest.raises(TypeError, match=r"^name: "):
        AgentSpec(QuickThread, 7)  # type: ignore[arg-type]
    with pytest.raises(RegistrationError, match="must not be empty"):
        AgentSpec(QuickThread, "")
    assert AgentSpec(QuickThread, "ok").name == "ok"
    with pytest.raises(RegistrationError):
        PoolThreadAgent.Config(agents_entry=[AgentSpec(QuickThread, " x")])


def _calls(orchestrator: Orchestrator) -> list[tuple[str, Any]]:
    return [
        ("start_agent", lambda: orchestrator.start_agent(5)),  # type: ignore[arg-type]
        ("stop_agent", lambda: orchestrator.stop_agent(5)),  # type: ignore[arg-type]
        ("restart_agent", lambda: orchestrator.restart_agent(5)),  # type: ignore[arg-type]
        ("get_agent", lambda: orchestrator.get_agent(5)),  # type: ignore[arg-type]
        ("agent_status", lambda: orchestrator.agent_status(5)),  # type: ignore[arg-type]
        ("add_dependency", lambda: orchestrator.add_dependency(5, "a")),  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize("index", range(6))
def test_lookups_with_a_non_string_name_raise_a_clear_type_error(
    make_orchestrator: MakeOrchestrator, index: int
) -> None:
    orchestrator = make_orchestrator()
    orchestrator.register_agent(QuickThread, "a")
    label, call = _calls(orchestrator)[index]
    with pytest.raises(TypeError, match=r"^name: .*must be a string, not int \(5\)"):
        call()
    # Refused before anything started (no router, no socket).
    assert not orchestrator.router.running, label


def test_add_dependency_checks_each_dependency(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator()
    with pytest.raises(TypeError, match=r"^dependencies: .*not int \(3\)"):
        orchestrator.add_dependency("a", ["b", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"^dependencies: .*iterable of names"):
        orchestrator.add_dependency("a", 5)  # type: ignore[arg-type]
    # Nothing half-recorded.
    assert orchestrator.dependency_graph.as_dict() == {}
    orchestrator.add_dependency("a", "b")
    assert orchestrator.dependency_graph.as_dict() == {"a": ["b"]}


def test_events_refuses_a_non_string_agent_filter(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator()
    with pytest.raises(TypeError, match=r"^agent: "):
        orchestrator.events(agent=5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name", ["ingest worker", "Ünïcödé-агент.1", "-dash", "a/b:c", "x" * 300]
)
def test_a_valid_name_is_addressable_through_the_channel_and_the_cli(
    short_tmp: Path, name: str
) -> None:
    settings = {
        **FAST,
        "enable_command_interface": True,
        "command_socket_path": str(short_tmp / "n.sock"),
    }
    orchestrator = Orchestrator("names-ctl", Orchestrator.Config(**settings))
    try:
        orchestrator.register_agent(QuickThread, name)
        orchestrator.start()
        with ControlClient(orchestrator.command_socket_path, timeout=5.0) as client:
            assert client.status(name)["name"] == name
            assert [a["name"] for a in client.ps()["agents"]] == [name]
        # From a shell: "--" ends the options, so even "-dash" is an argument.
        socket_path = orchestrator.command_socket_path
        result = invoke_cli("status", "--json", "--socket", socket_path, "--", name)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["name"] == name
    finally:
        assert orchestrator.shutdown(timeout=2.0) == []
