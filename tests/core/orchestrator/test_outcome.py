"""``Orchestrator.outcome()`` / ``exit_code``: how a run ended, from the agents' states.

The process-level side (a script that ends with ``sys.exit(orchestrator.exit_code)``)
is in ``tests/core/test_exit_codes.py``; here the rules, in process.
"""

from __future__ import annotations

from typing import Any

from pyorchestrate import ExitCode, RunMode
from pyorchestrate.core.agent import OneShotProcessAgent, OneShotThreadAgent
from tests.agents import agent

from .conftest import MakeOrchestrator


class _FailsFirstTime:
    """Raises in its first generation, succeeds in the next."""

    def task(self) -> Any:
        if self.generation_id == 1:  # type: ignore[attr-defined]
            raise ValueError("first run fails")
        return "ok"


class FailsFirstTimeThread(_FailsFirstTime, OneShotThreadAgent):
    pass


class FailsFirstTimeProcess(_FailsFirstTime, OneShotProcessAgent):
    pass


def test_all_succeeded_is_0(make_orchestrator: MakeOrchestrator, flavour: str) -> None:
    orchestrator = make_orchestrator()
    orchestrator.register_agent(agent("quick", flavour), "a")
    orchestrator.register_agent(agent("quick", flavour), "b")
    orchestrator.start()
    assert orchestrator.join() == []
    outcome = orchestrator.outcome()
    assert outcome.ok
    assert outcome.exit_code is ExitCode.OK
    assert outcome.failed == ()
    assert orchestrator.exit_code == 0


def test_an_agent_that_raised_is_1(
    make_orchestrator: MakeOrchestrator, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    orchestrator.register_agent(agent("quick", flavour), "fine")
    orchestrator.register_agent(agent("boom", flavour), "crasher")
    orchestrator.start()
    assert orchestrator.join() == []
    outcome = orchestrator.outcome()
    assert not outcome.ok
    assert orchestrator.exit_code == 1
    [failure] = outcome.failed
    assert failure.name == "crasher"
    assert failure.state == "TERMINATED"
    assert failure.reason == "exception"
    assert failure.error is not None and "ValueError: boom" in failure.error
    assert "crasher" in str(outcome)


def test_a_dependent_that_never_started_is_failed(
    make_orchestrator: MakeOrchestrator, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    orchestrator.register_agent(agent("setup_boom", flavour), "base")
    orchestrator.register_agent(agent("quick", flavour), "dependent")
    orchestrator.add_dependency("dependent", "base")
    orchestrator.start()
    assert orchestrator.join() == []
    failed = {f.name: f for f in orchestrator.outcome().failed}
    assert failed["dependent"].state == "FAILED"
    assert failed["dependent"].reason == "dependency_failed"
    assert "base" in failed
    assert orchestrator.exit_code == 1


def test_a_fatal_agent_is_1(make_orchestrator: MakeOrchestrator, flavour: str) -> None:
    orchestrator = make_orchestrator()
    orchestrator.register_agent(
        agent("boom", flavour),
        "crasher",
        supervision={
            "restart": "on-failure",
            "max_restarts": 1,
            "immediate_restarts": 5,
        },
    )
    orchestrator.start()
    assert orchestrator.join() == []
    [failure] = orchestrator.outcome().failed
    assert failure.state == "FATAL"
    assert orchestrator.exit_code == 1


def test_an_error_followed_by_a_successful_restart_is_0(
    make_orchestrator: MakeOrchestrator, flavour: str
) -> None:
    cls = FailsFirstTimeThread if flavour == "thread" else FailsFirstTimeProcess
    orchestrator = make_orchestrator()
    orchestrator.register_agent(
        cls, "flaky", supervision={"restart": "on-failure", "immediate_restarts": 1}
    )
    orchestrator.start()
    assert orchestrator.join() == []
    entry = orchestrator.get_agent("flaky")
    assert entry.starts == 2
    assert entry.last_error is not None  # the first run did fail
    assert orchestrator.outcome().ok
    assert orchestrator.exit_code == 0


def test_a_bad_configuration_is_2(
    make_orchestrator: MakeOrchestrator, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    orchestrator.register_agent(agent("bad_config", flavour), "misconfigured")
    orchestrator.start()
    assert orchestrator.join() == []
    [failure] = orchestrator.outcome().failed
    assert failure.reason == "config"
    assert orchestrator.exit_code == 2


def test_a_daemon_stopped_by_the_operator_is_0(
    make_orchestrator: MakeOrchestrator, flavour: str
) -> None:
    orchestrator = make_orchestrator(run_mode=RunMode.DAEMON)
    orchestrator.register_agent(agent("forever", flavour), "server")
    orchestrator.start()
    orchestrator.stop()
    assert orchestrator.join() == []
    assert orchestrator.outcome().ok


def test_a_daemon_whose_agent_crashed_is_1(
    make_orchestrator: MakeOrchestrator, flavour: str
) -> None:
    orchestrator = make_orchestrator(run_mode=RunMode.DAEMON)
    orchestrator.register_agent(agent("forever", flavour), "server")
    orchestrator.register_agent(agent("boom", flavour), "crasher")
    orchestrator.start()
    with orchestrator.lifecycle.lock:
        while orchestrator.get_agent("crasher").state.value != "TERMINATED":
            orchestrator.lifecycle.changed.wait(0.05)
    orchestrator.stop()
    assert orchestrator.join() == []
    assert [f.name for f in orchestrator.outcome().failed] == ["crasher"]
    assert orchestrator.exit_code == 1
