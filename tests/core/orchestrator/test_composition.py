"""The lifecycle manager is composed, not assembled from partial classes.

The ``LifecycleManager`` holds a ``Supervisor`` (start, ready and watchdog deadlines,
restart policies) and a ``Stopper`` (stop requests, shutdown order, stop and kill
deadlines). Each gets what it needs explicitly and changes state only through the
state writer it is given: here a recording one, so each part is seen working alone.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path
from typing import Any

import pyorchestrate.core.orchestrator as orchestrator_package
from pyorchestrate import AgentState, OrchestratorEvent
from pyorchestrate.core.orchestrator.registry import AgentEntry
from pyorchestrate.core.orchestrator.stopping import Stopper
from pyorchestrate.core.orchestrator.supervisor import Supervisor
from pyorchestrate.testing import FakeClock
from tests.agents import agent

from .conftest import MakeOrchestrator, exact_policy

S = AgentState
_PROJECT = ("pyorchestrate", "notifiers")


def _package_modules() -> list[Any]:
    modules = [orchestrator_package]
    for info in pkgutil.walk_packages(
        orchestrator_package.__path__, orchestrator_package.__name__ + "."
    ):
        modules.append(importlib.import_module(info.name))
    return modules


def test_no_class_has_more_than_two_project_classes_in_its_mro() -> None:
    crowded: dict[str, list[str]] = {}
    seen = 0
    for module in _package_modules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            seen += 1
            ours = [
                f"{c.__module__}.{c.__qualname__}"
                for c in cls.__mro__
                if c.__module__.split(".")[0] in _PROJECT
            ]
            if len(ours) > 2:
                crowded[f"{module.__name__}.{cls.__qualname__}"] = ours
    assert seen > 10  # the walk found the package's classes
    assert crowded == {}


def test_no_type_checking_stubs_in_the_orchestrator_package() -> None:
    """A part that needs ``if TYPE_CHECKING: def ...`` stubs is a partial class."""
    stubbed: list[str] = []
    for module in _package_modules():
        path = Path(module.__file__ or "")
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.If)
                and isinstance(node.test, ast.Name)
                and node.test.id == "TYPE_CHECKING"
                and any(
                    isinstance(n, ast.FunctionDef | ast.AnnAssign)
                    for n in ast.walk(node)
                )
            ):
                stubbed.append(f"{path.name}:{node.lineno}")
    assert stubbed == []


class RecordingWriter:
    """A state writer that applies and records what it is asked (no table check)."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, AgentState]] = []
        self.events: list[tuple[OrchestratorEvent, str, dict[str, Any]]] = []
        self.errors: list[tuple[str, str, str]] = []
        self.pumps = 0

    def change_state(self, entry: AgentEntry, target: AgentState, **_: Any) -> None:
        entry.state = target
        self.changes.append((entry.name, target))

    def emit(self, event: OrchestratorEvent, entry: AgentEntry, **context: Any) -> None:
        self.events.append((event, entry.name, context))

    def record_error(
        self, entry: AgentEntry, message: str, *, reason: str, **_: Any
    ) -> None:
        self.errors.append((entry.name, message, reason))

    def pump(self) -> None:
        self.pumps += 1


def test_the_supervisor_backs_off_and_requeues_through_its_writer(
    make_orchestrator: MakeOrchestrator,
) -> None:
    clock = FakeClock()
    orchestrator = make_orchestrator()
    entry = orchestrator.register_agent(
        agent("boom", "thread"), "b", supervision=exact_policy(max_restarts=1)
    )
    writer = RecordingWriter()
    pool = orchestrator.worker_pool
    woken: list[None] = []
    supervisor = Supervisor(
        orchestrator.registry,
        pool,
        writer,
        orchestrator.lifecycle.stopper,
        start_timeout=5.0,
        clock=clock,
        wake=lambda: woken.append(None),
    )
    # A generation that ran and failed on its own.
    entry.state = S.TERMINATED
    entry.reached_running = True
    entry.started_mono = clock()
    assert supervisor.failed_end(entry, 1) is True
    supervisor.apply_restart_policy(entry, "ended (critical)", True)
    assert writer.changes == [("b", S.BACKOFF)]
    assert [(e, n) for e, n, _ in writer.events] == [
        (OrchestratorEvent.AGENT_RESTARTING, "b")
    ]
    assert writer.events[0][2]["delay"] == 1.0
    assert entry.restart_at == clock() + 1.0
    assert woken

    assert supervisor.check_deadlines(clock()) == clock() + 1.0
    assert writer.changes == [("b", S.BACKOFF)]
    assert supervisor.check_deadlines(clock.advance(1.0)) is None
    assert writer.changes == [("b", S.BACKOFF), ("b", S.QUEUED)]
    assert writer.pumps == 1
    assert pool.is_queued("b")
    assert entry.restart_at is None

    # Its one restart is spent: the next failure is FATAL.
    entry.state = S.TERMINATED
    supervisor.apply_restart_policy(entry, "ended (critical)", True)
    assert writer.changes[-1] == ("b", S.FATAL)
    assert writer.events[-1][0] is OrchestratorEvent.AGENT_FATAL
    assert entry.fatal_reason == "gave up after 1 restart (max_restarts)"


def test_the_stopper_ends_queued_and_backing_off_agents_through_its_writer(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator()
    queued = orchestrator.register_agent(agent("quick", "thread"), "q")
    waiting = orchestrator.register_agent(agent("quick", "thread"), "w")
    writer = RecordingWriter()
    pool = orchestrator.worker_pool
    stopper = Stopper(
        orchestrator.registry,
        orchestrator.dependency_graph,
        pool,
        writer,
        changed=orchestrator.lifecycle.changed,
        submit=lambda *_: False,
        stop_timeout=3.0,
        termination_grace=0.5,
        clock=FakeClock(),
        wake=lambda: None,
    )
    queued.state = S.QUEUED
    pool.enqueue("q")
    waiting.state = S.BACKOFF
    waiting.restart_at = 1.0
    assert stopper.request_stop("q") == "agent 'q' removed from the queue"
    assert not pool.is_queued("q")
    assert stopper.request_stop("w") == "agent 'w': pending restart cancelled"
    assert waiting.restart_at is None
    assert writer.changes == [("q", S.TERMINATED), ("w", S.TERMINATED)]
    assert stopper.kill_timeout_of(queued) == 0.5
    assert stopper.stop_timeout_of(queued) == 3.0
    assert "not running" in stopper.request_stop("q")
    assert writer.changes == [("q", S.TERMINATED), ("w", S.TERMINATED)]
