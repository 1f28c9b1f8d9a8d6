"""Stopping agents: stop requests, restarts, reverse-order shutdown, escalation.

A mixin of :class:`~pyorchestrate.core.orchestrator.lifecycle.LifecycleManager`, kept
in its own module so each file has one job: lifecycle starts agents and reacts to
what they report; :mod:`.supervisor` applies deadlines and restart policies; this one
ends agents. User ``on_stop`` hooks run here, always outside the lifecycle lock and
never on the router thread.

A stop is: the cooperative stop event, then after the agent's ``stop_timeout`` SIGTERM
to its process group, then after ``kill_timeout`` SIGKILL to the group. A thread agent
cannot be killed: at its stop deadline it is QUARANTINED and reported as abandoned.
Stopping everything goes in reverse dependency order: an agent is asked to stop only
once every agent that depends on it has ended.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..agent.base import BaseAgent
from ..errors import LifecycleError
from .callbacks import EventBus
from .dependencies import DependencyGraph
from .registry import AgentEntry, AgentRegistry
from .states import ACTIVE_STATES, AgentState
from .workers import WorkerPool, WorkerStartResult

__all__ = ["OPERATOR_REASONS", "StoppingMixin", "call_stop"]

logger = logging.getLogger("pyorchestrate.lifecycle")

S = AgentState

OPERATOR_REASONS = frozenset({"operator", "shutdown", "restart"})
"""Stop reasons that are someone's decision: never a failure, never restarted."""

_RUNNING_STATES = frozenset({S.STARTING, S.RUNNING, S.READY, S.STOPPING})


class StoppingMixin:
    """How the lifecycle manager ends agents (see the module docstring)."""

    registry: AgentRegistry
    graph: DependencyGraph
    pool: WorkerPool
    bus: EventBus
    lock: threading.RLock
    changed: threading.Condition
    clock: Callable[[], float]
    wake: Callable[[], None]
    stop_timeout: float
    termination_grace: float
    _pending_stops: dict[str, float | None]

    if TYPE_CHECKING:

        def change_state(
            self, entry: AgentEntry, target: AgentState, **context: Any
        ) -> None: ...

        def record_error(
            self, entry: AgentEntry, message: str, *, reason: str, **context: Any
        ) -> None: ...

        def request_start(self, name: str) -> WorkerStartResult: ...

    # ------------------------------------------------------------- signals
    def kill_timeout_of(self, entry: AgentEntry) -> float:
        """Seconds between SIGTERM and SIGKILL for ``entry``."""
        return entry.supervision.kill_timeout or self.termination_grace

    def stop_timeout_of(self, entry: AgentEntry) -> float:
        """Seconds ``entry`` has to stop cooperatively."""
        return entry.supervision.stop_timeout or self.stop_timeout

    def terminate(self, entry: AgentEntry) -> None:
        """SIGTERM a process agent's group now, SIGKILL it after ``kill_timeout``."""
        instance = entry.agent
        if instance is None or instance.flavour != "process":
            return
        instance.terminate()  # type: ignore[attr-defined]
        entry.kill_at = self.clock() + self.kill_timeout_of(entry)
        self.wake()

    def escalate(self, entry: AgentEntry, why: str) -> None:
        """The cooperative stop did not work: SIGTERM a process, abandon a thread."""
        with self.lock:
            entry.stop_deadline = None
            if entry.state not in ACTIVE_STATES or entry.agent is None:
                return
            if entry.flavour == "process":
                if entry.kill_at is None:
                    logger.warning(
                        "agent %r %s: SIGTERM to its process group",
                        entry.name,
                        why,
                        extra={"agent": entry.name},
                    )
                    self.terminate(entry)
                return
            if entry.state is not S.QUARANTINED:
                self.change_state(entry, S.QUARANTINED)
                self.record_error(
                    entry,
                    f"{why}: abandoned (a thread cannot be killed)",
                    reason="abandoned",
                )
                logger.critical(
                    "agent %r (thread) %s and is abandoned",
                    entry.name,
                    why,
                    extra={"agent": entry.name},
                )
                self.release_pending_stops()

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
            if entry.state is S.BACKOFF:
                entry.restart_at = None
                self.change_state(entry, S.TERMINATED)
                return f"agent {name!r}: pending restart cancelled"
            agent = self.mark_stopping(entry, "operator")
            if agent is None:
                if entry.state in ACTIVE_STATES:
                    return f"agent {name!r} is already stopping ({entry.state.value})"
                return f"agent {name!r} is not running ({entry.state.value})"
        # The user's on_stop runs in this (the caller's) thread, with no lock held: a
        # slow or stuck on_stop must not freeze the orchestrator.
        call_stop(agent)
        return f"agent {name!r} asked to stop"

    def mark_stopping(
        self, entry: AgentEntry, reason: str, timeout: float | None = None
    ) -> BaseAgent | None:
        """Under the lock: note the stop, move to STOPPING, set the stop deadline.

        Returns the agent whose ``stop()`` the caller must call (outside the lock), or
        ``None`` if there is nothing to stop or it was already asked (a second request
        only tightens the deadline and, if it is an operator's, the reason).
        """
        if entry.state not in ACTIVE_STATES or entry.agent is None:
            return None
        already = entry.state in (S.STOPPING, S.QUARANTINED)
        if entry.stop_reason is None or reason in OPERATOR_REASONS:
            entry.stop_reason = reason
        if reason in OPERATOR_REASONS:
            entry.stop_requested = True
        if entry.state in (S.STARTING, S.RUNNING, S.READY):
            self.change_state(entry, S.STOPPING)
        budget = self.stop_timeout_of(entry)
        if timeout is not None:
            budget = min(budget, timeout)
        deadline = self.clock() + budget
        if entry.stop_deadline is None or deadline < entry.stop_deadline:
            entry.stop_deadline = deadline
        entry.ready_deadline = entry.beat_deadline = None
        self.wake()
        return None if already else entry.agent

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
                agent = self.mark_stopping(entry, "restart")
            else:
                result = self.request_start(name)
                return f"agent {name!r}: {result.status.value}"
        if agent is not None:
            call_stop(agent)
        return f"agent {name!r} asked to stop; it starts again once it has ended"

    def stop_all(self, timeout: float | None = None) -> None:
        """Refuse new starts, empty the queue, cancel restarts, stop every agent.

        Dependents are asked first; an agent is asked once all its dependents ended.
        """
        with self.lock:
            self.pool.accepting = False
            for name in self.pool.clear_queue():
                entry = self.registry.require(name)
                if entry.state is S.QUEUED:
                    self.change_state(entry, S.TERMINATED)
            for entry in self.registry:
                if entry.state is S.BACKOFF:
                    entry.restart_at = None
                    self.change_state(entry, S.TERMINATED)
                elif entry.state in ACTIVE_STATES and entry.name not in (
                    self._pending_stops
                ):
                    self._pending_stops[entry.name] = timeout
            to_stop = self._take_releasable()
        self._stop_in_parallel(to_stop)

    def _stop_in_parallel(self, agents: list[BaseAgent]) -> None:
        """Run ``agent.stop()`` for many agents at once, on the callback workers.

        Setting a process agent's stop event waits until the agent's process has woken
        up (a ``multiprocessing.Event``), about 0.5 ms each: one by one, 100 agents
        would take 50 ms before the last is even asked. A lone agent is stopped here.
        """
        if len(agents) == 1:
            call_stop(agents[0])
            return
        for agent in agents:
            if not self.bus.executor.submit(agent.name, call_stop, agent):
                call_stop(agent)  # executor closed or full: do it here

    def release_pending_stops(self) -> None:
        """Ask the agents whose dependents have all ended to stop (from any thread).

        Their ``on_stop`` runs on the callback workers, never on the caller's thread,
        which may be the router.
        """
        with self.lock:
            agents = self._take_releasable()
        for agent in agents:
            if not self.bus.executor.submit(agent.name, call_stop, agent):
                logger.error("agent %r: could not queue its stop", agent.name)

    def _take_releasable(self) -> list[BaseAgent]:
        released: list[BaseAgent] = []
        for name, timeout in list(self._pending_stops.items()):
            if any(
                d in self._pending_stops
                or self.registry.require(d).state in _RUNNING_STATES
                for d in self.graph.dependents_of(name)
                if d in self.registry
            ):
                continue
            del self._pending_stops[name]
            agent = self.mark_stopping(self.registry.require(name), "shutdown", timeout)
            if agent is not None:
                released.append(agent)
        return released

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

        Each agent gets its own ``stop_timeout`` (at most ``timeout``) once its
        dependents have ended. At ``timeout`` (or at once if ``escalate_now()``),
        process agents still running get SIGTERM to their group, then SIGKILL after
        ``kill_timeout``. Thread agents that will not end are QUARANTINED, logged at
        CRITICAL and returned.
        """
        self.stop_all(timeout)
        deadline = self.clock() + timeout

        def settled() -> bool:
            return not self.active_entries() or escalate_now()

        self._wait_until(settled, deadline)
        with self.lock:
            self._pending_stops.clear()
            for entry in self.active_entries():
                if entry.agent is not None and entry.agent.is_alive():
                    if entry.state is not S.QUARANTINED:
                        self.mark_stopping(entry, "shutdown")
                    self.escalate(entry, f"did not stop within {timeout:.1f} s")
            grace = max(
                (self.kill_timeout_of(e) for e in self.active_entries()), default=0.0
            )

        def processes_gone() -> bool:
            return not any(e.flavour == "process" for e in self.active_entries())

        self._wait_until(processes_gone, self.clock() + 2 * grace + 1)
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


def call_stop(agent: BaseAgent) -> None:
    """``agent.stop()`` (its ``on_stop``, then the stop event), logging what it raises."""
    try:
        agent.stop()
    except Exception:
        logger.exception("agent %r: on_stop raised", agent.name)
        agent.stop_event.set()
