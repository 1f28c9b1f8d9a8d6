"""Fixtures for the orchestrator tests: fast orchestrators that are always shut down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pyorchestrate import Orchestrator

FAST: dict[str, Any] = {
    "enable_command_interface": False,
    "check_interval": 0.05,
    "agent_start_timeout": 5.0,
    "agent_stop_timeout": 1.0,
    "termination_grace": 0.5,
}
"""Small timeouts so a test never waits long for a stop or an escalation."""

MakeOrchestrator = Callable[..., Orchestrator]


@pytest.fixture
def make_orchestrator() -> Iterator[MakeOrchestrator]:
    """Build orchestrators with :data:`FAST` settings (overridable); shut them all down."""
    made: list[Orchestrator] = []

    def make(name: str = "orch", **overrides: Any) -> Orchestrator:
        orchestrator = Orchestrator(name, Orchestrator.Config(**{**FAST, **overrides}))
        made.append(orchestrator)
        return orchestrator

    yield make
    for orchestrator in made:
        orchestrator.shutdown(timeout=2.0)
