"""Supervision at run time: deadlines, the watchdog, restart policies, BACKOFF, FATAL.

A mixin of :class:`~pyorchestrate.core.orchestrator.lifecycle.LifecycleManager`. The
router calls :meth:`SupervisorMixin.check_deadlines` after every wake-up and sleeps
until the earliest deadline it returns, so nothing here polls: a restart due in 100 ms
happens 100 ms later, not at the next tick of a 1-second loop.

Deadlines, all on the injected monotonic clock:

* ``start_deadline``: START must come within ``agent_start_timeout``;
* ``ready_deadline``: READY within the agent's ``ready_timeout`` after START;
* ``beat_deadline``: once READY, a heartbeat within ``heartbeat_timeout`` (watchdog);
* ``stop_deadline`` / ``kill_at``: the stop escalation (see :mod:`.stopping`);
* ``restart_at``: the end of a BACKOFF.

When an agent ends without being asked to (see :data:`.stopping.OPERATOR_REASONS`),
:meth:`SupervisorMixin.apply_restart_policy` asks its
:class:`~pyorchestrate.core.supervision.RestartTracker` and moves it to BACKOFF
(AGENT_RESTARTING) or FATAL (AGENT_FATAL).
"""

from __future__ import annotations

import logging
import signal as _signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..agent.status import AgentTerminationStatus
from ..events import OrchestratorEvent
from .callbacks import EventBus
from .registry import AgentEntry, AgentRegistry
from .states import ACTIVE_STATES, AgentState
from .stopping import OPERATOR_REASONS, call_stop
from .workers import WorkerPool

__all__ = ["SupervisorMixin", "describe_end", "signal_name"]

logger = logging.getLogger("pyorchestrate.lifecycle")

S = AgentState

_FAILED_STATUSES = frozenset(
    {AgentTerminationStatus.ERROR, AgentTerminationStatus.CRITICAL, None}
)


class SupervisorMixin:
    """Deadlines and restart policies (see the module docstring)."""

    registry: AgentRegistry
    pool: WorkerPool
    bus: EventBus
    lock: threading.RLock
    clock: Callable[[], float]
    wake: Callable[[], None]
    start_timeout: float

    if TYPE_CHECKING:

        def change_state(
            self, entry: AgentEntry, target: AgentState, **context: Any
        ) -> None: ...

        def emit(
            self, event: OrchestratorEvent, entry: AgentEntry, **context: Any
        ) -> None: ...

        def record_error(
            self, entry: AgentEntry, message: str, *, reason: str, **context: Any
        ) -> None: ...

        def pump(self) -> None: ...

        def terminate(self, entry: AgentEntry) -> None: ...

        def escalate(self, entry: AgentEntry, why: str) -> None: ...

        def stop_timeout_of(self, entry: AgentEntry) -> float: ...

        def mark_stopping(
            self, entry: AgentEntry, reason: str, timeout: float | None = None
        ) -> Any: ...

    # ------------------------------------------------------------- deadlines
    def check_deadlines(self) -> float | None:
        """Act on every deadline that has passed; return the next one (or ``None``)."""
        with self.lock:
            now = self.clock()
            upcoming: list[float] = []
            for entry in self.registry:
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
                    ("stop_deadline", self._stop_timed_out),
                    ("kill_at", self._kill_now),
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
        self.record_error(
            entry,
            f"did not report START within {self.start_timeout:g} s",
            reason="start_timeout",
        )
        entry.failure = "start_timeout"
        instance = entry.require_instance()
        entry.stop_reason = entry.stop_reason or "start_timeout"
        # This runs on the router thread, which never runs user code: on_stop goes to
        # the callback workers.
        self.bus.executor.submit(entry.name, call_stop, instance)
        if instance.flavour == "process":
            self.terminate(entry)
        if entry.state is not S.QUARANTINED:
            self.change_state(entry, S.QUARANTINED)

    def _ready_timed_out(self, entry: AgentEntry) -> None:
        timeout = entry.supervision.ready_timeout
        self.record_error(
            entry,
            f"did not report READY within {timeout:g} s of START",
            reason="ready_timeout",
        )
        self._force_stop(entry, "ready_timeout")

    def _watchdog_fired(self, entry: AgentEntry) -> None:
        timeout = entry.supervision.heartbeat_timeout
        self.emit(OrchestratorEvent.AGENT_WATCHDOG_TIMEOUT, entry, timeout=timeout)
        self.record_error(
            entry,
            f"no heartbeat for {timeout:g} s (watchdog)",
            reason="watchdog",
        )
        self._force_stop(entry, "watchdog")

    def _force_stop(self, entry: AgentEntry, reason: str) -> None:
        """End a hung agent: stop event now and, for a process, SIGTERM at once."""
        entry.failure = reason
        agent = self.mark_stopping(entry, reason)
        if agent is None:
            return
        self.bus.executor.submit(entry.name, call_stop, agent)
        if entry.flavour == "process":
            entry.stop_deadline = None
            self.terminate(entry)

    def _stop_timed_out(self, entry: AgentEntry) -> None:
        self.escalate(entry, f"did not stop within {self.stop_timeout_of(entry):g} s")

    def _kill_now(self, entry: AgentEntry) -> None:
        logger.warning(
            "agent %r ignored SIGTERM: SIGKILL to its process group",
            entry.name,
            extra={"agent": entry.name},
        )
        entry.require_instance().kill()  # type: ignore[attr-defined]

    # ------------------------------------------------------------- heartbeats
    def on_ready(self, entry: AgentEntry) -> None:
        """The agent reported READY: stop its readiness clock, start its watchdog."""
        now = self.clock()
        entry.reached_ready = True
        entry.ready_mono = now
        entry.ready_deadline = None
        timeout = entry.supervision.heartbeat_timeout
        if timeout is not None and entry.state is S.READY:
            entry.beat_deadline = now + timeout
            self.wake()

    def on_heartbeat(self, entry: AgentEntry) -> None:
        """The agent beat: push its watchdog deadline on."""
        timeout = entry.supervision.heartbeat_timeout
        if timeout is not None and entry.beat_deadline is not None:
            entry.beat_deadline = self.clock() + timeout

    def on_started(self, entry: AgentEntry) -> None:
        """The agent reported START: its readiness clock starts."""
        timeout = entry.supervision.ready_timeout
        if timeout is not None and entry.state is S.RUNNING:
            entry.ready_deadline = self.clock() + timeout
            self.wake()

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
        if entry.stop_reason in OPERATOR_REASONS or not self.pool.accepting:
            return
        policy = entry.supervision
        if not policy.restarts_enabled:
            return
        now = self.clock()
        since = entry.ready_mono or entry.started_mono
        uptime = None if since is None or not entry.reached_running else now - since
        decision = entry.tracker.decide(policy, now=now, failed=failed, uptime=uptime)
        if decision.action == "restart":
            entry.restart_at = now + decision.delay
            entry.restart_attempt = decision.attempt
            self.change_state(entry, S.BACKOFF)
            logger.warning(
                "agent %r %s: restart %d in %.2f s",
                entry.name,
                why,
                decision.attempt,
                decision.delay,
                extra={"agent": entry.name},
            )
            self.emit(
                OrchestratorEvent.AGENT_RESTARTING,
                entry,
                attempt=decision.attempt,
                delay=round(decision.delay, 3),
                reason=why,
                exit_code=entry.exit_code,
                signal=entry.last_signal,
            )
            self.wake()
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
            self.change_state(entry, S.FATAL)
            logger.critical(
                "agent %r is FATAL: %s; last end: %s",
                entry.name,
                text,
                why,
                extra={"agent": entry.name},
            )
            self.emit(
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
        self.change_state(entry, S.QUEUED)
        self.pool.enqueue(entry.name)
        self.pump()


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
