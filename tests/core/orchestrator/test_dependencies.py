"""The dependency graph, and dependencies as the orchestrator enforces them."""

from __future__ import annotations

import pytest

from pyorchestrate import AgentState, DependencyError, OrchestratorEvent, StartStatus
from pyorchestrate.core.agent import ControlEvents, make_event
from pyorchestrate.core.orchestrator import DependencyGraph
from pyorchestrate.testing import EventRecorder, wait_until
from tests.agents import agent

from .conftest import MakeOrchestrator

# ---------------------------------------------------------------- DependencyGraph


def test_duplicate_edges_are_stored_once() -> None:
    graph = DependencyGraph()
    graph.add_dependency("b", ["a", "a"])
    graph.add_dependency("b", "a")
    assert graph.get_dependencies("b") == ["a"]


def test_an_empty_list_adds_nothing() -> None:
    graph = DependencyGraph()
    graph.add_dependency("b", [])
    assert graph.as_dict() == {}
    assert not graph.has_dependencies("b")


def test_queries() -> None:
    graph = DependencyGraph()
    graph.add_dependency("c", ["a", "b"])
    graph.add_dependency("b", "a")
    assert graph.as_dict() == {"c": ["a", "b"], "b": ["a"]}
    assert graph.has_dependencies("c")
    assert not graph.has_dependencies("a")
    assert graph.get_dependencies("a") == []
    assert sorted(graph.dependents_of("a")) == ["b", "c"]
    # Returned lists are copies.
    graph.get_dependencies("c").append("z")
    graph.as_dict()["c"].append("z")
    assert graph.get_dependencies("c") == ["a", "b"]


def test_validate_names_an_unknown_dependency() -> None:
    graph = DependencyGraph()
    graph.add_dependency("b", ["a", "ghost"])
    with pytest.raises(DependencyError) as info:
        graph.validate(["a", "b"])
    assert "'ghost'" in str(info.value)
    assert "'b'" in str(info.value)


def test_validate_names_an_unknown_dependent() -> None:
    graph = DependencyGraph()
    graph.add_dependency("phantom", "a")
    with pytest.raises(DependencyError, match="'phantom'"):
        graph.validate(["a"])


def test_validate_names_the_agents_of_a_cycle() -> None:
    graph = DependencyGraph()
    graph.add_dependency("alpha", "bravo")
    graph.add_dependency("bravo", "charlie")
    graph.add_dependency("charlie", "alpha")
    graph.add_dependency("delta", "alpha")  # depends on the cycle, not part of it
    with pytest.raises(DependencyError) as info:
        graph.validate(["alpha", "bravo", "charlie", "delta"])
    message = str(info.value)
    assert "cycle" in message
    for name in ("alpha", "bravo", "charlie"):
        assert name in message
    assert "delta" not in message


def test_a_self_dependency_is_a_cycle() -> None:
    graph = DependencyGraph()
    graph.add_dependency("a", "a")
    with pytest.raises(DependencyError, match="cycle"):
        graph.validate(["a"])


def test_dependency_error_is_a_value_error() -> None:
    graph = DependencyGraph()
    graph.add_dependency("a", "a")
    with pytest.raises(ValueError):
        graph.validate(["a"])


def test_sorting_before_validation_raises() -> None:
    graph = DependencyGraph()
    graph.add_dependency("b", "a")
    with pytest.raises(DependencyError):
        graph.topological_sort(["a", "b"])
    graph.validate(["a", "b"])
    assert graph.topological_sort(["a", "b"]) == ["a", "b"]
    # A change invalidates the earlier validation.
    graph.add_dependency("c", "b")
    with pytest.raises(DependencyError):
        graph.topological_sort(["a", "b", "c"])


def test_topological_order_puts_dependencies_first() -> None:
    graph = DependencyGraph()
    names = ["web", "cache", "db", "logger", "worker"]
    graph.add_dependency("web", ["cache", "db"])
    graph.add_dependency("cache", "db")
    graph.add_dependency("worker", ["web", "logger"])
    graph.validate(names)
    order = graph.topological_sort(names)
    assert sorted(order) == sorted(names)
    for name in names:
        for dep in graph.get_dependencies(name):
            assert order.index(dep) < order.index(name), (dep, name)


def test_independent_agents_keep_the_given_order() -> None:
    graph = DependencyGraph()
    graph.validate(["z", "a", "m"])
    assert graph.topological_sort(["z", "a", "m"]) == ["z", "a", "m"]


# ---------------------------------------------------------------- orchestrator


def test_a_cycle_fails_start_before_any_agent_starts(
    make_orchestrator: MakeOrchestrator, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    for name in ("alpha", "bravo", "charlie", "free"):
        orchestrator.register_agent(agent("quick", flavour), name)
    orchestrator.add_dependency("alpha", "bravo")
    orchestrator.add_dependency("bravo", "charlie")
    orchestrator.add_dependency("charlie", "alpha")
    with pytest.raises(DependencyError) as info:
        orchestrator.start()
    for name in ("alpha", "bravo", "charlie"):
        assert name in str(info.value)
    for entry in orchestrator.registry:
        assert entry.state is AgentState.REGISTERED
        assert entry.generation_id == 0
        assert not entry.is_initialized
    assert orchestrator.events(event_name="agent_started") == []
    assert not orchestrator.router.running


def test_an_unknown_dependency_fails_start_naming_it(
    make_orchestrator: MakeOrchestrator, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    orchestrator.register_agent(agent("quick", flavour), "base")
    orchestrator.register_agent(agent("quick", flavour), "web")
    orchestrator.add_dependency("web", ["base", "ghost"])  # accepted for now
    with pytest.raises(DependencyError) as info:
        orchestrator.start()
    assert "'ghost'" in str(info.value)
    assert "'web'" in str(info.value)
    assert all(e.state is AgentState.REGISTERED for e in orchestrator.registry)
    assert orchestrator.events(event_name="agent_started") == []


def test_unknown_agent_is_reported_by_validate_dependencies(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator()
    orchestrator.register_agent(agent("quick", "thread"), "a")
    orchestrator.add_dependency("nobody", "a")
    with pytest.raises(DependencyError, match="nobody"):
        orchestrator.validate_dependencies()


def test_agents_start_in_dependency_order(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    # 'a' cannot become READY until the gate opens, so its dependents must queue
    # (without it, a quick thread agent could be READY before start() reached 'b').
    gate = make_event(flavour)  # type: ignore[arg-type]
    # Registered in the reverse of the order they must start in.
    for name in ("c", "b", "a"):
        orchestrator.register_agent(
            agent("forever", flavour),
            name,
            control_events=ControlEvents(setup_event=gate) if name == "a" else None,
        )
    orchestrator.add_dependency("c", "b")
    orchestrator.add_dependency("b", "a")
    results = orchestrator.start()
    assert results[0].status is StartStatus.STARTED  # a, first in topological order
    assert [r.status for r in results[1:]] == [StartStatus.QUEUED] * 2
    gate.set()
    recorder.wait_for(OrchestratorEvent.AGENT_STARTED, "c")
    started = [r.agent for r in orchestrator.events(event_name="agent_started")]
    assert started == ["a", "b", "c"]
    orchestrator.stop()
    assert orchestrator.join() == []


def test_a_dependent_waits_until_its_dependency_reported_start(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    orchestrator.register_agent(agent("forever", flavour), "dep")
    orchestrator.register_agent(agent("forever", flavour), "dependent")
    orchestrator.add_dependency("dependent", "dep")
    result = orchestrator.start_agent("dependent")
    assert result.status is StartStatus.QUEUED
    assert "dep" in result.reason
    dependent = orchestrator.get_agent("dependent")
    assert dependent.state is AgentState.QUEUED
    assert dependent.generation_id == 0  # not launched
    assert orchestrator.agent_status("dependent")["in_queue"] is True

    orchestrator.start_agent("dep")
    started = recorder.wait_for(OrchestratorEvent.AGENT_STARTED, "dependent")
    dep_started = recorder.wait_for(OrchestratorEvent.AGENT_STARTED, "dep")
    assert dep_started["seq"] < started["seq"]
    orchestrator.stop()
    assert orchestrator.join() == []


def test_a_failed_dependency_fails_its_dependents(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    orchestrator.register_agent(agent("init_boom", flavour), "base")
    orchestrator.register_agent(agent("quick", flavour), "mid")
    orchestrator.register_agent(agent("quick", flavour), "top")
    orchestrator.register_agent(agent("quick", flavour), "free")
    orchestrator.add_dependency("mid", "base")
    orchestrator.add_dependency("top", "mid")
    orchestrator.start()
    assert orchestrator.join() == []

    base_error = recorder.wait_for(OrchestratorEvent.AGENT_ERROR, "base")
    assert base_error["reason"] == "start_failed"
    assert "constructor failed" in base_error["error_message"]
    for name, missing in (("mid", "base"), ("top", "mid")):
        error = recorder.wait_for(OrchestratorEvent.AGENT_ERROR, name)
        assert error["reason"] == "dependency_failed"
        assert missing in error["error_message"]
        assert orchestrator.get_agent(name).state is AgentState.FAILED
        assert recorder.of(OrchestratorEvent.AGENT_STARTED, name) == []
    assert orchestrator.get_agent("base").state is AgentState.FAILED
    # An agent without dependencies is not affected.
    recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "free")
    assert orchestrator.get_agent("free").state is AgentState.TERMINATED
    assert recorder.of(OrchestratorEvent.AGENT_ERROR, "free") == []


def test_a_dependency_failing_later_fails_the_whole_chain(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    """The dependency fails (start timeout) while its dependents wait: all fail.

    Registration order is the reverse of the chain (top -> mid -> base), so the
    failure has to propagate through more than one queued agent.
    """
    orchestrator = make_orchestrator(agent_start_timeout=0.3)
    recorder.attach(orchestrator)
    orchestrator.register_agent(agent("quick", flavour), "top")
    orchestrator.register_agent(agent("quick", flavour), "mid")
    orchestrator.register_agent(agent("never_starts", flavour), "base")
    orchestrator.add_dependency("top", "mid")
    orchestrator.add_dependency("mid", "base")
    orchestrator.start()
    timeout = recorder.wait_for(OrchestratorEvent.AGENT_ERROR, "base")
    assert timeout["reason"] == "start_timeout"
    mid = recorder.wait_for(OrchestratorEvent.AGENT_ERROR, "mid")
    assert mid["reason"] == "dependency_failed"
    assert wait_until(
        lambda: orchestrator.get_agent("top").state is AgentState.FAILED, 3
    ), orchestrator.get_agent("top").state
    top = recorder.wait_for(OrchestratorEvent.AGENT_ERROR, "top", timeout=1)
    assert top["reason"] == "dependency_failed"
    assert "mid" in top["error_message"]
    # Nothing is left waiting, so a STOP_ON_EMPTY join() can return.
    assert orchestrator.lifecycle.is_idle()
