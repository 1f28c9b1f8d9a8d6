"""Fixtures for the orchestrator tests: fast orchestrators that are always shut down."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pyorchestrate import AgentState, Orchestrator
from pyorchestrate.testing import FakeClock

FAST: dict[str, Any] = {
    "enable_command_interface": False,
    "check_interval": 0.05,
    "agent_start_timeout": 5.0,
    "agent_stop_timeout": 1.0,
    "termination_grace": 0.5,
}
"""Small timeouts so a test never waits long for a stop or an escalation."""

MakeOrchestrator = Callable[..., Orchestrator]

TINY = 2.0**-10
"""A step of fake time that adds up exactly (a power of two)."""


def exact_policy(**overrides: Any) -> dict[str, Any]:
    """A restart policy with exact delays on a fake clock: 1 s, then 2 s, 4 s, ...
    (no jitter, no immediate restart)."""
    return {
        "restart": "on-failure",
        "backoff_initial": 1.0,
        "backoff_multiplier": 2.0,
        "backoff_jitter": 0.0,
        "immediate_restarts": 0,
        **overrides,
    }


def state_of(orchestrator: Orchestrator, name: str) -> AgentState:
    """The agent's state once whatever the router is doing with it is finished."""
    with orchestrator.lifecycle.lock:
        return orchestrator.get_agent(name).state


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


@contextlib.contextmanager
def clock_running(
    clock: FakeClock, step: float = 0.25, every: float = 0.02
) -> Iterator[None]:
    """Move ``clock`` on by ``step`` every ``every`` real seconds while the block runs."""
    done = threading.Event()

    def tick() -> None:
        while not done.wait(every):
            clock.advance(step)

    thread = threading.Thread(target=tick, name="test-fake-clock", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@pytest.fixture
def clock() -> FakeClock:
    """The fake monotonic clock of the orchestrators ``make_clocked`` builds."""
    return FakeClock()


@pytest.fixture
def make_clocked(clock: FakeClock) -> Iterator[MakeOrchestrator]:
    """Like ``make_orchestrator``, but every deadline is measured on the fake ``clock``.

    Nothing times out, backs off or fires until the test moves the clock (the start
    timeout is 60 s of it). At teardown the clock runs by itself while the
    orchestrators shut down, so an agent that will not stop is escalated rather than
    waited for forever.
    """
    made: list[Orchestrator] = []

    def make(name: str = "orch", **overrides: Any) -> Orchestrator:
        settings = {**FAST, "agent_start_timeout": 60.0, **overrides}
        orchestrator = Orchestrator(name, Orchestrator.Config(**settings), clock=clock)
        made.append(orchestrator)
        return orchestrator

    yield make
    with clock_running(clock):
        for orchestrator in made:
            orchestrator.shutdown(timeout=2.0)
