"""Supervision at run time: start, ready and watchdog deadlines, restart policies,
BACKOFF, FATAL.

:class:`Supervisor` is an object of its own, built and held by the
:class:`~pyorchestrate.core.orchestrator.lifecycle.LifecycleManager`, which calls it
under its lock: when an agent reports START, READY or a heartbeat, when an agent ends
(:meth:`Supervisor.failed_end`, :meth:`Supervisor.apply_restart_policy`), and from
:meth:`~pyorchestrate.core.orchestrator.lifecycle.LifecycleManager.check_deadlines`,
which the router calls after every wake-up before it sleeps until the earliest deadline
returned. So nothing here polls: a restart due in 100 ms happens 100 ms later, not at
the next tick of a 1-second loop.

Deadlines the supervisor owns, all on the injected monotonic clock:

* ``start_deadline``: START must come within ``agent_start_timeout``;
* ``ready_deadline``: READY within the agent's ``ready_timeout`` after START;
* ``beat_deadline``: once READY, a heartbeat within ``heartbeat_timeout`` (watchdog);
* ``restart_at``: the end of a BACKOFF.

A hung agent is handed to the :class:`~.stopping.Stopper` (which owns the stop and kill
deadlines). When an agent ends without being asked to (see
:data:`.stopping.OPERATOR_REASONS`), :meth:`Supervisor.apply_restart_policy` asks its
:class:`~pyorchestrate.core.supervision_config.RestartTracker` and moves it to BACKOFF
(AGENT_RESTARTING) or FATAL (AGENT_FATAL). Every transition goes through the
:class:`SupervisedStates` it is given, the lifecycle manager.
"""

from __future__ import annotations

import logging
import signal as _signal
from collections.abc import Callable
from typing import Any, Protocol

from ..agent.status import AgentTerminationStatus
from ..events import OrchestratorEvent
from .registry import AgentEntry, AgentRegistry
from .states import ACTIVE_STATES, AgentState
from .stopping import OPERATOR_REASONS, Stopper
from .workers import WorkerPool

__all__ = ["SupervisedStates", "Supervisor", "describe_end", "signal_name"]

logger = logging.getLogger("pyorchestrate.lifecycle")

S = AgentState

_FAILED_STATUSES = frozenset(
    {AgentTerminationStatus.ERROR, AgentTerminationStatus.CRITICAL, None}
)


class SupervisedStates(Protocol):
    """What the supervisor needs of the one state writer (the lifecycle manager)."""

    def change_state(
        self, entry: AgentEntry, target: AgentState, **context: Any
    ) -> None:
        """Move ``entry`` to ``target`` (checked against the transition table)."""

    def emit(self, event: OrchestratorEvent, entry: AgentEntry, **context: Any) -> None:
        """Emit ``event`` for ``entry``."""

    def record_error(
        self, entry: AgentEntry, message: str, *, reason: str, **context: Any
    ) -> None:
        """Remember ``message`` as the agent's last error and emit AGENT_ERROR."""

    def pump(self) -> None:
        """Launch the queued agents that can start now."""


class Supervisor:
    """Deadlines and restart policies (see the module docstring).

    Every method expects the caller to hold the lifecycle lock.

    Args:
        registry: the agents.
        pool: worker slots and queue (a BACKOFF that ends queues the agent again).
        states: the state writer.
        stopper: ends hung agents.
        start_timeout: seconds a started agent has to report START.
        clock: monotonic clock.
        wake: called when the router must re-read its deadlines.
    """

    def __init__(
        self,
        registry: AgentRegistry,
        pool: WorkerPool,
        states: SupervisedStates,
        stopper: Stopper,
        *,
        start_timeout: float,
        clock: Callable[[], float],
        wake: Callable[[], None],
    ) -> None:
        self._registry = registry
        self._pool = pool
        self._states = states
        self._stopper = stopper
        self.start_timeout = start_timeout
        self._clock = clock
        self._wake = wake

    # ------------------------------------------------------------- deadlines
    def check_deadlines(self, now: float) -> float | None:
        """Act on every start, ready, watchdog and BACKOFF deadline that has passed;
        return the next one (or ``None``)."""
        upcoming: list[float] = []
        for entry in self._registry:
            if entry.state is S.BACKOFF:
                if entry.restart_at is not None:
                    if now >= entry.restart_at:
                        self._restart_now(entry)
                    else:
                        upcoming.append(entry.restart_at)
                continue
            if entry.state not in ACTIVE_STATES or entry.agent is None:
                continue
            for attr, action in (
                ("start_deadline", self._start_timed_out),
                ("ready_deadline", self._ready_timed_out),
                ("beat_deadline", self._watchdog_fired),
            ):
                deadline: float | None = getattr(entry, attr)
                if deadline is None:
                    continue
                if now >= deadline:
                    setattr(entry, attr, None)
                    action(entry)
                else:
                    upcoming.append(deadline)
        return min(upcoming) if upcoming else None

    def _start_timed_out(self, entry: AgentEntry) -> None:
        self._states.record_error(
            entry,
            f"did not report START within {self.start_timeout:g} s",
            reason="start_timeout",
        )
        self._stopper.quarantine_unstarted(entry)

    def _ready_timed_out(self, entry: AgentEntry) -> None:
        timeout = entry.supervision.ready_timeout
        self._states.record_error(
            entry,
            f"did not report READY within {timeout:g} s of START",
            reason="ready_timeout",
        )
        self._stopper.force_stop(entry, "ready_timeout")

    def _watchdog_fired(self, entry: AgentEntry) -> None:
        timeout = entry.supervision.heartbeat_timeout
        self._states.emit(
            OrchestratorEvent.AGENT_WATCHDOG_TIMEOUT, entry, timeout=timeout
        )
        self._states.record_error(
            entry,
            f"no heartbeat for {timeout:g} s (watchdog)",
            reason="watchdog",
        )
        self._stopper.force_stop(entry, "watchdog")

    # ------------------------------------------------------------- heartbeats
    def on_ready(self, entry: AgentEntry) -> None:
        """The agent reported READY: stop its readiness clock, start its watchdog."""
        now = self._clock()
        entry.reached_ready = True
        entry.ready_mono = now
        entry.ready_deadline = None
        timeout = entry.supervision.heartbeat_timeout
        if timeout is not None and entry.state is S.READY:
            entry.beat_deadline = now + timeout
            self._wake()

    def on_heartbeat(self, entry: AgentEntry) -> None:
        """The agent beat: push its watchdog deadline on."""
        timeout = entry.supervision.heartbeat_timeout
        if timeout is not None and entry.beat_deadline is not None:
            entry.beat_deadline = self._clock() + timeout

    def on_launched(self, entry: AgentEntry) -> None:
        """The agent was launched: its start clock starts."""
        entry.start_deadline = self._clock() + self.start_timeout

    def on_started(self, entry: AgentEntry) -> None:
        """The agent reported START: its readiness clock starts."""
        timeout = entry.supervision.ready_timeout
        if timeout is not None and entry.state is S.RUNNING:
            entry.ready_deadline = self._clock() + timeout
            self._wake()

    # ------------------------------------------------------------- restarts
    def failed_end(self, entry: AgentEntry, exit_code: int | None) -> bool:
        """Whether the end of ``entry``'s generation counts as a failure."""
        if entry.failure is not None or not entry.reached_running:
            return True
        if entry.flavour == "process":
            code = exit_code
        else:
            code = 1 if entry.termination_status in _FAILED_STATUSES else 0
        return code not in entry.supervision.success_exit_codes

    def apply_restart_policy(self, entry: AgentEntry, why: str, failed: bool) -> None:
        """After an end nobody asked for: BACKOFF then restart, FATAL, or nothing."""
        if entry.stop_reason in OPERATOR_REASONS or not self._pool.accepting:
            return
        policy = entry.supervision
        if not policy.restarts_enabled:
            return
        now = self._clock()
        since = entry.ready_mono or entry.started_mono
        uptime = None if since is None or not entry.reached_running else now - since
        decision = entry.tracker.decide(policy, now=now, failed=failed, uptime=uptime)
        if decision.action == "restart":
            entry.restart_at = now + decision.delay
            entry.restart_attempt = decision.attempt
            self._states.change_state(entry, S.BACKOFF)
            logger.warning(
                "agent %r %s: restart %d in %.2f s",
                entry.name,
                why,
                decision.attempt,
                decision.delay,
                extra={"agent": entry.name},
            )
            self._states.emit(
                OrchestratorEvent.AGENT_RESTARTING,
                entry,
                attempt=decision.attempt,
                delay=round(decision.delay, 3),
                reason=why,
                exit_code=entry.exit_code,
                signal=entry.last_signal,
            )
            self._wake()
        elif decision.action == "fatal":
            if decision.reason == "flapping":
                text = (
                    f"flapping: {decision.restarts_in_window} restarts within "
                    f"{policy.flap_window:g} s"
                )
            else:
                plural = "" if decision.attempt == 1 else "s"
                text = (
                    f"gave up after {decision.attempt} restart{plural} (max_restarts)"
                )
            entry.fatal_reason = text
            self._states.change_state(entry, S.FATAL)
            logger.critical(
                "agent %r is FATAL: %s; last end: %s",
                entry.name,
                text,
                why,
                extra={"agent": entry.name},
            )
            self._states.emit(
                OrchestratorEvent.AGENT_FATAL,
                entry,
                reason=decision.reason,
                attempt=decision.attempt,
                restarts=decision.restarts_in_window,
                error_message=f"{text}; last end: {why}",
                exit_code=entry.exit_code,
                signal=entry.last_signal,
            )

    def _restart_now(self, entry: AgentEntry) -> None:
        """BACKOFF is over: queue the agent again."""
        entry.restart_at = None
        self._states.change_state(entry, S.QUEUED)
        self._pool.enqueue(entry.name)
        self._states.pump()


def signal_name(code: int | None) -> str | None:
    """The name of the signal that ended a process (exit code -9 -> ``SIGKILL``)."""
    if code is None or code >= 0:
        return None
    try:
        return _signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def describe_end(entry: AgentEntry, code: int | None) -> str:
    """How a generation ended, for AGENT_RESTARTING's ``reason`` and the logs."""
    if entry.failure == "watchdog":
        return "stopped by the watchdog"
    if entry.failure is not None:
        return f"stopped after {entry.failure.replace('_', ' ')}"
    signame = signal_name(code)
    if signame:
        return f"killed by {signame}"
    if code is not None:
        return f"exited with code {code}"
    status = entry.termination_status
    return f"ended ({status.value})" if status else "ended without closing"
