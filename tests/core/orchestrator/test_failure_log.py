"""An agent's unhandled exception is logged once, by the orchestrator, with the
traceback the agent sent: the same record for thread and process agents.

(The process-level side, stderr with and without the user's logging, is in
``tests/core/test_exit_codes.py``.)
"""

from __future__ import annotations

import logging

import pytest

from pyorchestrate import OrchestratorEvent
from pyorchestrate.testing import EventRecorder
from tests.agents import agent

from .conftest import MakeOrchestrator


def test_one_error_record_with_the_traceback(
    make_orchestrator: MakeOrchestrator,
    flavour: str,
    recorder: EventRecorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="pyorchestrate")
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator, [OrchestratorEvent.AGENT_ERROR])
    orchestrator.register_agent(agent("boom", flavour), "crasher")
    orchestrator.start()
    assert orchestrator.join() == []
    errors = [
        r
        for r in caplog.records
        if r.name.startswith("pyorchestrate") and r.levelno >= logging.WARNING
    ]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    [record] = errors
    assert record.name == "pyorchestrate.lifecycle"
    assert record.levelno == logging.ERROR
    assert getattr(record, "agent", None) == "crasher"
    lines = record.getMessage().splitlines()
    assert lines[0] == "agent 'crasher' failed: ValueError: boom"
    assert lines[1] == "Traceback (most recent call last):"
    assert any("tests/agents.py" in line and "in task" in line for line in lines)
    assert lines[-1] == "ValueError: boom"
    [event] = recorder.of(OrchestratorEvent.AGENT_ERROR, "crasher")
    assert event["reason"] == "exception"
    assert event["error_type"] == "ValueError"
    assert event["traceback"].rstrip().endswith("ValueError: boom")


def test_a_config_error_is_logged_once_without_a_traceback(
    make_orchestrator: MakeOrchestrator,
    flavour: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="pyorchestrate")
    orchestrator = make_orchestrator()
    orchestrator.register_agent(agent("bad_config", flavour), "misconfigured")
    orchestrator.start()
    assert orchestrator.join() == []
    [record] = [
        r
        for r in caplog.records
        if r.name.startswith("pyorchestrate") and r.levelno >= logging.WARNING
    ]
    assert record.name == "pyorchestrate.lifecycle"
    message = record.getMessage()
    assert message.startswith("agent 'misconfigured': invalid BadConfigThread.Config")
    assert "threshold: must be at most 3" in message
    assert "Traceback" not in message
