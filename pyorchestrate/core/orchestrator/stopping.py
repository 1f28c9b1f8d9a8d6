"""Stopping agents: stop requests, restarts, shutdown with escalation, deadlines.

A mixin of :class:`~pyorchestrate.core.orchestrator.lifecycle.LifecycleManager`, kept
in its own module so each file has one job: lifecycle starts agents and reacts to
what they report; this one ends them. User ``on_stop`` hooks run here, always
outside the lifecycle lock and never on the router thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..agent.base import BaseAgent
from ..errors import LifecycleError
from .callbacks import EventBus
from .registry import AgentEntry, AgentRegistry
from .states import ACTIVE_STATES, AgentState
from .workers import WorkerPool, WorkerStartResult

__all__ = ["StoppingMixin"]

logger = logging.getLogger("pyorchestrate.lifecycle")

S = AgentState


class StoppingMixin:
    """How the lifecycle manager ends agents (see the module docstring)."""

    registry: AgentRegistry
    pool: WorkerPool
    bus: EventBus
    lock: threading.RLock
    changed: threading.Condition
    clock: Callable[[], float]
    wake: Callable[[], None]
    start_timeout: float
    termination_grace: float

    if TYPE_CHECKING:

        def change_state(
            self, entry: AgentEntry, target: AgentState, **context: Any
        ) -> None: ...

        def record_error(
            self, entry: AgentEntry, message: str, *, reason: str, **context: Any
        ) -> None: ...

        def request_start(self, name: str) -> WorkerStartResult: ...

    # ------------------------------------------------------------- deadlines
    def check_deadlines(self) -> float | None:
        """Act on start timeouts and kill deadlines; return the next deadline."""
        with self.lock:
            now = self.clock()
            upcoming: list[float] = []
            for entry in self.registry:
                if entry.state not in ACTIVE_STATES or entry.agent is None:
                    continue
                if entry.start_deadline is not None:
                    if now >= entry.start_deadline:
                        entry.start_deadline = None
                        self._start_timed_out(entry)
                    else:
                        upcoming.append(entry.start_deadline)
                if entry.kill_at is not None:
                    if now >= entry.kill_at:
                        entry.kill_at = None
                        logger.warning(
                            "agent %r ignored SIGTERM: sending SIGKILL", entry.name
                        )
                        entry.agent.kill()  # type: ignore[attr-defined]
                    else:
                        upcoming.append(entry.kill_at)
            return min(upcoming) if upcoming else None

    def _start_timed_out(self, entry: AgentEntry) -> None:
        self.record_error(
            entry,
            f"did not report START within {self.start_timeout:g} s",
            reason="start_timeout",
        )
        instance = entry.require_instance()
        # This runs on the router thread, which never runs user code: on_stop goes to
        # the callback workers.
        self.bus.executor.submit(entry.name, _call_stop, instance)
        if instance.flavour == "process":
            self.terminate(entry)
        if entry.state is not S.QUARANTINED:
            self.change_state(entry, S.QUARANTINED)

    def terminate(self, entry: AgentEntry) -> None:
        """SIGTERM a process agent now, SIGKILL it after the grace period."""
        instance = entry.agent
        if instance is None or instance.flavour != "process":
            return
        instance.terminate()  # type: ignore[attr-defined]
        entry.kill_at = self.clock() + self.termination_grace
        self.wake()

    # ------------------------------------------------------------- stopping
    def request_stop(self, name: str) -> str:
        """Ask ``name`` to stop (or take it out of the queue); return what happened.

        Raises:
            RegistrationError: ``name`` is not registered.
        """
        with self.lock:
            entry = self.registry.require(name)
            if entry.state is S.QUEUED:
                self.pool.dequeue(name)
                self.change_state(entry, S.TERMINATED)
                return f"agent {name!r} removed from the queue"
            agent = self._mark_stopping(entry)
            if agent is None:
                return f"agent {name!r} is not running ({entry.state.value})"
        # The user's on_stop runs in this (the caller's) thread, with no lock held: a
        # slow or stuck on_stop must not freeze the orchestrator.
        _call_stop(agent)
        return f"agent {name!r} asked to stop"

    def _mark_stopping(self, entry: AgentEntry) -> BaseAgent | None:
        """Under the lock: note the stop and move to STOPPING; return what to stop."""
        if entry.state not in ACTIVE_STATES or entry.agent is None:
            return None
        entry.stop_requested = True
        if entry.state in (S.STARTING, S.RUNNING, S.READY):
            self.change_state(entry, S.STOPPING)
        return entry.agent

    def request_restart(self, name: str) -> str:
        """Stop ``name`` if it runs, then start it again; return what happened.

        Raises:
            RegistrationError: ``name`` is not registered.
            LifecycleError: the orchestrator is shutting down.
        """
        with self.lock:
            entry = self.registry.require(name)
            if not self.pool.accepting:
                raise LifecycleError(f"cannot restart {name!r}: shutting down")
            agent = None
            if entry.state in ACTIVE_STATES and entry.agent is not None:
                entry.restart_pending = True
                agent = self._mark_stopping(entry)
            else:
                result = self.request_start(name)
                return f"agent {name!r}: {result.status.value}"
        if agent is not None:
            _call_stop(agent)
        return f"agent {name!r} asked to stop; it starts again once it has ended"

    def stop_all(self) -> None:
        """Refuse new starts, empty the queue and ask every active agent to stop."""
        with self.lock:
            self.pool.accepting = False
            for name in self.pool.clear_queue():
                entry = self.registry.require(name)
                if entry.state is S.QUEUED:
                    self.change_state(entry, S.TERMINATED)
            to_stop = [
                agent
                for agent in (self._mark_stopping(e) for e in self.registry)
                if agent is not None
            ]
        for agent in to_stop:
            _call_stop(agent)

    def active_entries(self) -> list[AgentEntry]:
        """Entries that hold a slot."""
        with self.lock:
            return [e for e in self.registry if e.state in ACTIVE_STATES]

    def _wait_until(self, predicate: Callable[[], bool], deadline: float) -> bool:
        with self.lock:
            while not predicate():
                remaining = deadline - self.clock()
                if remaining <= 0:
                    return False
                self.changed.wait(min(remaining, 0.1))
            return True

    def shutdown_agents(
        self, timeout: float, *, escalate_now: Callable[[], bool]
    ) -> list[str]:
        """Stop every agent within ``timeout``; escalate; return the survivors' names.

        Process agents still running at the deadline get SIGTERM, then SIGKILL after
        the grace period. Thread agents that will not end are QUARANTINED, logged at
        CRITICAL and returned.
        """
        self.stop_all()
        deadline = self.clock() + timeout

        def settled() -> bool:
            return not self.active_entries() or escalate_now()

        self._wait_until(settled, deadline)
        with self.lock:
            stubborn = [e for e in self.active_entries() if e.flavour == "process"]
            for entry in stubborn:
                if entry.agent is not None and entry.agent.is_alive():
                    logger.warning(
                        "agent %r did not stop within %.1f s: sending SIGTERM",
                        entry.name,
                        timeout,
                    )
                    self.terminate(entry)
        if stubborn:

            def processes_gone() -> bool:
                return not any(e.flavour == "process" for e in self.active_entries())

            self._wait_until(
                processes_gone, self.clock() + 2 * self.termination_grace + 1
            )
        survivors: list[str] = []
        with self.lock:
            for entry in self.active_entries():
                survivors.append(entry.name)
                if entry.state is not S.QUARANTINED:
                    self.change_state(entry, S.QUARANTINED)
                logger.critical(
                    "agent %r (%s) did not stop and is abandoned",
                    entry.name,
                    entry.flavour,
                    extra={"agent": entry.name},
                )
        return survivors


def _call_stop(agent: BaseAgent) -> None:
    """``agent.stop()`` (its ``on_stop``, then the stop event), logging what it raises."""
    try:
        agent.stop()
    except Exception:
        logger.exception("agent %r: on_stop raised", agent.name)
        agent.stop_event.set()
