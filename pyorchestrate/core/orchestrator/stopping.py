"""Stopping agents: stop requests, reverse-order shutdown, stop and kill escalation.

:class:`Stopper` is an object of its own, built and held by the
:class:`~pyorchestrate.core.orchestrator.lifecycle.LifecycleManager`. It owns the
queue of stops that wait for their dependents (:attr:`Stopper.pending`), the default
stop and kill timeouts, and the stop deadlines: ``stop_deadline`` (the cooperative
stop's end) and ``kill_at`` (SIGKILL after SIGTERM). It changes no state itself: every
transition goes through the :class:`StateWriter` it is given, the lifecycle manager.
User ``on_stop`` hooks run here, always outside the lifecycle lock and never on the
router thread.

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
from typing import Any, Protocol

from ..agent.base import BaseAgent
from .dependencies import DependencyGraph
from .registry import AgentEntry, AgentRegistry
from .states import ACTIVE_STATES, AgentState
from .workers import WorkerPool

__all__ = [
    "KILLABLE",
    "OPERATOR_REASONS",
    "StateWriter",
    "Stopper",
    "SubmitStop",
    "call_stop",
]

logger = logging.getLogger("pyorchestrate.lifecycle")

S = AgentState

OPERATOR_REASONS = frozenset({"operator", "shutdown", "restart"})
"""Stop reasons that are someone's decision: never a failure, never restarted."""

_RUNNING_STATES = frozenset({S.STARTING, S.RUNNING, S.READY, S.STOPPING})


class StateWriter(Protocol):
    """What the stopper needs of the one state writer (the lifecycle manager)."""

    def change_state(
        self, entry: AgentEntry, target: AgentState, **context: Any
    ) -> None:
        """Move ``entry`` to ``target`` (checked against the transition table)."""

    def record_error(
        self, entry: AgentEntry, message: str, *, reason: str, **context: Any
    ) -> None:
        """Remember ``message`` as the agent's last error and emit AGENT_ERROR."""


SubmitStop = Callable[[str, Callable[[BaseAgent], None], BaseAgent], bool]
"""Queues ``fn(agent)`` on the callback worker for a key; ``False`` if it could not."""


KILLABLE = ("process", "ray")
"""Flavours that can be made to end: a process (SIGTERM, SIGKILL) and a Ray actor
(its ``stop()`` again, ``ray.kill``); a thread can only be abandoned."""


class Stopper:
    """Ends agents (see the module docstring).

    Every public method takes the lifecycle lock (through ``changed``, the lifecycle
    manager's condition) or expects its caller to hold it, as said on each.

    Args:
        registry: the agents.
        graph: their dependencies (for the reverse-order stop).
        pool: worker slots and queue (stopping everything refuses new starts).
        states: the state writer.
        changed: the lifecycle's condition; its lock is the lifecycle lock.
        submit: queues an agent's ``on_stop`` on the callback workers.
        stop_timeout: default seconds an agent has to stop cooperatively.
        termination_grace: default seconds between SIGTERM and SIGKILL.
        clock: monotonic clock.
        wake: called when the router must re-read its deadlines.
    """

    def __init__(
        self,
        registry: AgentRegistry,
        graph: DependencyGraph,
        pool: WorkerPool,
        states: StateWriter,
        *,
        changed: threading.Condition,
        submit: SubmitStop,
        stop_timeout: float,
        termination_grace: float,
        clock: Callable[[], float],
        wake: Callable[[], None],
    ) -> None:
        self._registry = registry
        self._graph = graph
        self._pool = pool
        self._states = states
        self._changed = changed
        self._submit = submit
        self.stop_timeout = stop_timeout
        self.termination_grace = termination_grace
        self._clock = clock
        self._wake = wake
        self.pending: dict[str, float | None] = {}
        """Agents to stop once their dependents have ended: ``{name: timeout}``."""

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
        if instance is None or instance.flavour not in KILLABLE:
            return
        instance.terminate()  # type: ignore[attr-defined]
        entry.kill_at = self._clock() + self.kill_timeout_of(entry)
        self._wake()

    def escalate(self, entry: AgentEntry, why: str) -> None:
        """The cooperative stop did not work: SIGTERM a process, abandon a thread."""
        with self._changed:
            entry.stop_deadline = None
            if entry.state not in ACTIVE_STATES or entry.agent is None:
                return
            if entry.flavour in KILLABLE:
                if entry.kill_at is None and getattr(
                    entry.agent, "stops_by_signal", False
                ):
                    # Its stop was its stop signal already (a command): SIGKILL now.
                    logger.warning(
                        "agent %r %s: SIGKILL to its process group",
                        entry.name,
                        why,
                        extra={"agent": entry.name},
                    )
                    entry.agent.kill()  # type: ignore[attr-defined]
                    return
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
                self._states.change_state(entry, S.QUARANTINED)
                self._states.record_error(
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

    def check_deadlines(self, now: float) -> float | None:
        """Under the lock: act on the stop and kill deadlines that have passed; return
        the next one (or ``None``)."""
        upcoming: list[float] = []
        for entry in self._registry:
            if entry.state not in ACTIVE_STATES or entry.agent is None:
                continue
            deadline = entry.stop_deadline
            if deadline is not None:
                if now >= deadline:
                    entry.stop_deadline = None
                    self.escalate(
                        entry, f"did not stop within {self.stop_timeout_of(entry):g} s"
                    )
                else:
                    upcoming.append(deadline)
            deadline = entry.kill_at
            if deadline is not None:
                if now >= deadline:
                    entry.kill_at = None
                    logger.warning(
                        "agent %r ignored SIGTERM: SIGKILL to its process group",
                        entry.name,
                        extra={"agent": entry.name},
                    )
                    entry.require_instance().kill()  # type: ignore[attr-defined]
                else:
                    upcoming.append(deadline)
        return min(upcoming) if upcoming else None

    # ------------------------------------------------------------- hung agents
    def force_stop(self, entry: AgentEntry, reason: str) -> None:
        """Under the lock: end a hung agent (``reason``: ``watchdog``,
        ``ready_timeout``): stop event now and, for a process, SIGTERM at once.

        Runs on the router thread, which never runs user code: ``on_stop`` goes to
        the callback workers.
        """
        entry.failure = reason
        agent = self.mark_stopping(entry, reason)
        if agent is None:
            return
        self._submit(entry.name, call_stop, agent)
        if entry.flavour in KILLABLE:
            entry.stop_deadline = None
            self.terminate(entry)

    def quarantine_unstarted(self, entry: AgentEntry) -> None:
        """Under the lock: an agent that did not report START in time is asked to
        stop (a process gets SIGTERM at once) and QUARANTINED, holding its slot."""
        entry.failure = "start_timeout"
        instance = entry.require_instance()
        entry.stop_reason = entry.stop_reason or "start_timeout"
        self._submit(entry.name, call_stop, instance)
        if instance.flavour in KILLABLE:
            self.terminate(entry)
        if entry.state is not S.QUARANTINED:
            self._states.change_state(entry, S.QUARANTINED)

    # ------------------------------------------------------------- stopping
    def request_stop(self, name: str) -> str:
        """Ask ``name`` to stop (or take it out of the queue); return what happened.

        Raises:
            RegistrationError: ``name`` is not registered.
        """
        with self._changed:
            entry = self._registry.require(name)
            if entry.state is S.QUEUED:
                self._pool.dequeue(name)
                self._states.change_state(entry, S.TERMINATED)
                return f"agent {name!r} removed from the queue"
            if entry.state is S.BACKOFF:
                entry.restart_at = None
                self._states.change_state(entry, S.TERMINATED)
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
            self._states.change_state(entry, S.STOPPING)
        budget = self.stop_timeout_of(entry)
        if timeout is not None:
            budget = min(budget, timeout)
        deadline = self._clock() + budget
        if entry.stop_deadline is None or deadline < entry.stop_deadline:
            entry.stop_deadline = deadline
        entry.ready_deadline = entry.beat_deadline = None
        self._wake()
        return None if already else entry.agent

    def stop_all(self, timeout: float | None = None) -> None:
        """Refuse new starts, empty the queue, cancel restarts, stop every agent.

        Dependents are asked first; an agent is asked once all its dependents ended.
        """
        with self._changed:
            self._pool.accepting = False
            for name in self._pool.clear_queue():
                entry = self._registry.require(name)
                if entry.state is S.QUEUED:
                    self._states.change_state(entry, S.TERMINATED)
            for entry in self._registry:
                if entry.state is S.BACKOFF:
                    entry.restart_at = None
                    self._states.change_state(entry, S.TERMINATED)
                elif entry.state in ACTIVE_STATES and entry.name not in self.pending:
                    self.pending[entry.name] = timeout
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
            if not self._submit(agent.name, call_stop, agent):
                call_stop(agent)  # executor closed or full: do it here

    def release_pending_stops(self) -> None:
        """Ask the agents whose dependents have all ended to stop (from any thread).

        Their ``on_stop`` runs on the callback workers, never on the caller's thread,
        which may be the router.
        """
        with self._changed:
            agents = self._take_releasable()
        for agent in agents:
            if not self._submit(agent.name, call_stop, agent):
                logger.error("agent %r: could not queue its stop", agent.name)

    def _take_releasable(self) -> list[BaseAgent]:
        released: list[BaseAgent] = []
        for name, timeout in list(self.pending.items()):
            if any(
                d in self.pending or self._registry.require(d).state in _RUNNING_STATES
                for d in self._graph.dependents_of(name)
                if d in self._registry
            ):
                continue
            del self.pending[name]
            agent = self.mark_stopping(
                self._registry.require(name), "shutdown", timeout
            )
            if agent is not None:
                released.append(agent)
        return released

    def active_entries(self) -> list[AgentEntry]:
        """Entries that hold a slot."""
        with self._changed:
            return [e for e in self._registry if e.state in ACTIVE_STATES]

    def _wait_until(self, predicate: Callable[[], bool], deadline: float) -> bool:
        with self._changed:
            while not predicate():
                remaining = deadline - self._clock()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 0.1))
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
        deadline = self._clock() + timeout

        def settled() -> bool:
            return not self.active_entries() or escalate_now()

        self._wait_until(settled, deadline)
        with self._changed:
            self.pending.clear()
            for entry in self.active_entries():
                if entry.agent is not None and entry.agent.is_alive():
                    if entry.state is not S.QUARANTINED:
                        self.mark_stopping(entry, "shutdown")
                    self.escalate(entry, f"did not stop within {timeout:.1f} s")
            grace = max(
                (self.kill_timeout_of(e) for e in self.active_entries()), default=0.0
            )

        def processes_gone() -> bool:
            return not any(e.flavour in KILLABLE for e in self.active_entries())

        self._wait_until(processes_gone, self._clock() + 2 * grace + 1)
        survivors: list[str] = []
        with self._changed:
            for entry in self.active_entries():
                survivors.append(entry.name)
                if entry.state is not S.QUARANTINED:
                    self._states.change_state(entry, S.QUARANTINED)
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
