"""The event contract in pyorchestrate.core.events: one Severity, one severity decision,
AgentEvent tied to OrchestratorEvent, and the seed's import path."""

from __future__ import annotations

import json

import pytest

import notifiers
import pyorchestrate
from pyorchestrate.core import events
from pyorchestrate.core.utilities import event as seed_path

Severity = events.Severity


def test_the_seeds_import_path_names_the_same_objects() -> None:
    from pyorchestrate.core.utilities.event import OrchestratorEvent

    assert OrchestratorEvent is events.OrchestratorEvent
    for name in seed_path.__all__:
        assert getattr(seed_path, name) is getattr(events, name)
    for name in ("AgentEvent", "EventRecord", "OrchestratorEvent", "Severity"):
        assert getattr(pyorchestrate, name) is getattr(events, name)
    assert pyorchestrate.severity_of is events.severity_of


def test_there_is_one_severity() -> None:
    assert notifiers.Severity is pyorchestrate.Severity is Severity


def test_severity_reads_as_its_name_and_orders_like_logging() -> None:
    assert str(Severity.ERROR) == "ERROR"
    assert f"{Severity.WARNING}" == "WARNING"
    assert f"{Severity.INFO:>6}" == "  INFO"
    assert json.dumps({"s": Severity.ERROR.name}) == '{"s": "ERROR"}'
    assert Severity.DEBUG < Severity.INFO < Severity.WARNING < Severity.ERROR
    assert max(Severity.INFO, Severity.CRITICAL) is Severity.CRITICAL
    assert int(Severity.ERROR) == 40


@pytest.mark.parametrize("value", ["ERROR", "error", 40, Severity.ERROR])
def test_severity_from_a_name_or_a_level(value: str | int | Severity) -> None:
    assert Severity(value) is Severity.ERROR
    assert Severity.parse(value) is Severity.ERROR


@pytest.mark.parametrize("value", ["fatal", 41, ""])
def test_an_unknown_severity_names_the_choices(value: str | int) -> None:
    with pytest.raises(ValueError, match="use one of debug, info, warning"):
        Severity.parse(value)


def test_agent_events_are_the_orchestrator_events_they_lead_to() -> None:
    AgentEvent, OrchestratorEvent = events.AgentEvent, events.OrchestratorEvent
    for report in AgentEvent:
        emitted = report.orchestrator_event
        assert isinstance(emitted, OrchestratorEvent)
        if report is not AgentEvent.CLOSE:
            assert report.value == emitted.value  # one value on the wire
    assert AgentEvent.CLOSE.orchestrator_event is OrchestratorEvent.AGENT_TERMINATED
    assert AgentEvent.START.orchestrator_event is OrchestratorEvent.AGENT_STARTED


def test_severity_still_equals_its_name_as_text() -> None:
    """Severity was a StrEnum: user code comparing with text keeps working."""
    assert Severity.ERROR == "ERROR"
    assert Severity.ERROR == "error"
    assert Severity.ERROR != "WARNING"
    assert "CRITICAL" == Severity.CRITICAL  # noqa: SIM300 - the reflected form
    assert Severity.ERROR == 40 and Severity.ERROR == Severity.ERROR
    assert len({Severity.ERROR, Severity.ERROR, Severity.INFO}) == 2
    assert {Severity.ERROR: 1}[Severity(40)] == 1
