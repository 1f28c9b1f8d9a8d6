"""Scheduled runs: cron and ``every`` schedules, max runtime, late and missed runs.

:class:`Scheduler` is an object of its own, built and held by the
:class:`~pyorchestrate.core.orchestrator.lifecycle.LifecycleManager` beside the
supervisor and the stopper, and called under its lock. It owns one
:class:`ScheduleSlot` per scheduled agent (its next due time, the run waiting to
start, the run going, the last result) and acts from
:meth:`~pyorchestrate.core.orchestrator.lifecycle.LifecycleManager.check_deadlines`,
which the router calls after every wake-up: it returns its next deadline, and the
router sleeps until then (at most ``check_interval``, so a wall clock set forward is
seen within that). No thread of its own.

Two clocks. Due times are wall-clock times (seconds since the epoch; a cron
expression is read in the schedule's time zone, DST included); every timeout
(``grace`` once a run was asked for, ``warn_after``, ``max_runtime``) is measured on
the monotonic clock. Both are injected (``Orchestrator(clock=, wall_clock=)``).

A run, from its due time:

1. **due** (plus its ``jitter`` draw): if the agent is idle, it is started
   (``request_start``: it waits in the queue for its dependencies and a worker slot
   like any start). If the previous run still goes, ``overlap`` decides: ``skip``
   (logged), ``queue`` (at most one run waits, and starts when the previous ends)
   or ``replace`` (the running one is stopped and the new one starts once it has
   ended).
2. **missed**: a run that has not started ``grace`` seconds after its due time
   (dependencies blocked, no worker slot) emits AGENT_MISSED ``reason="not_started"``
   once, and still starts when it can. A due time found already ``grace`` late (the
   orchestrator was suspended, the wall clock jumped forward, or, at start, it was
   down) emits AGENT_MISSED ``reason="late"`` (or ``"down"``) and is not run, unless
   ``catch_up="last"``: then one run starts now for all of them.
3. **running**: ``warn_after`` after its start, AGENT_LATE (once); ``max_runtime``
   after it, AGENT_ERROR ``reason="max_runtime"`` and the run is stopped the usual
   way (stop event, SIGTERM, SIGKILL after the kill timeout).
4. **end**: TERMINATED as a success, or a failure (an error, a failed exit code,
   max_runtime) is its ``last_result``.

External jobs (:class:`~pyorchestrate.core.agent.external.ExternalJob`) never start:
each due time expects a ping (``pyorchestrate ping NAME``) by ``grace`` after it;
silence emits AGENT_MISSED ``reason="no_ping"``, ``--fail`` AGENT_ERROR
``reason="ping_fail"``.

The last due time and result of each agent are kept in a small JSON file
(``$XDG_STATE_HOME/pyorchestrate/schedules/<orchestrator>.json``), so a restarted
orchestrator knows what it missed while down, and an ``every`` schedule keeps its
cadence. The callback workers write it (atomically: a temporary file renamed), never
the router thread.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import heapq
import itertools
import json
import logging
import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..agent.base import BaseAgent
from ..agent.command import CommandAgent
from ..agent.external import ExternalJob
from ..agent.looping import LoopingAgent
from ..agent.oneshot import OneShotAgent
from ..errors import LifecycleError, RegistrationError
from ..events import OrchestratorEvent
from ..schedule import Schedule
from ..utilities.outputfiles import default_logs_dir
from .registry import AgentEntry, AgentRegistry, AgentSpec
from .states import ACTIVE_STATES, FINAL_STATES, AgentState
from .stopping import Stopper, call_stop
from .workers import WorkerPool

__all__ = [
    "ScheduleSlot",
    "ScheduledStates",
    "Scheduler",
    "check_schedule",
    "default_state_file",
]

logger = logging.getLogger("pyorchestrate.scheduler")

_STATE_WRITER = "pyorchestrate-schedule-state"
"""The callback-worker key the state file is written under."""

S = AgentState


def check_schedule(
    agent_class: type[BaseAgent],
    name: str,
    schedule: Schedule | dict[str, Any] | Any,
) -> Schedule | None:
    """The validated schedule of agent ``name`` (``register_agent``'s check).

    Raises:
        ConfigError: an invalid schedule (names the field).
        TypeError: ``schedule`` is neither a ``Schedule`` nor a mapping.
        RegistrationError: a schedule on an agent that cannot be scheduled (a
            looping agent), or an external job without one.
    """
    if schedule is None:
        if issubclass(agent_class, ExternalJob):
            raise RegistrationError(
                f"agent {name!r}: schedule: an ExternalJob needs a schedule (when "
                "its pings are due)"
            )
        return None
    if not isinstance(schedule, Schedule):
        if not isinstance(schedule, dict) and not hasattr(schedule, "keys"):
            raise TypeError(
                f"schedule: must be a Schedule or a mapping, not "
                f"{type(schedule).__name__}"
            )
        schedule = Schedule(**dict(schedule))
    if not issubclass(agent_class, OneShotAgent | CommandAgent | ExternalJob):
        kind = (
            "a looping agent (it runs until stopped)"
            if issubclass(agent_class, LoopingAgent)
            else "not a one-shot agent"
        )
        raise RegistrationError(
            f"agent {name!r}: schedule: {agent_class.__name__} is {kind}; only "
            "one-shot agents (OneShotThreadAgent, OneShotProcessAgent), "
            "CommandAgent and ExternalJob can be scheduled"
        )
    return schedule


def default_state_file(orchestrator: str) -> Path:
    """``$XDG_STATE_HOME/pyorchestrate/schedules/<orchestrator>.json``."""
    logs = default_logs_dir(orchestrator)  # .../pyorchestrate/logs/<safe name>
    return logs.parent.parent / "schedules" / f"{logs.name}.json"


class ScheduledStates(Protocol):
    """What the scheduler needs of the one state writer (the lifecycle manager)."""

    def emit(self, event: OrchestratorEvent, entry: AgentEntry, **context: Any) -> None:
        """Emit ``event`` for ``entry``."""

    def record_error(
        self, entry: AgentEntry, message: str, *, reason: str, **context: Any
    ) -> None:
        """Remember ``message`` as the agent's last error and emit AGENT_ERROR."""

    def request_start(self, name: str) -> object:
        """Queue ``name`` for a start and launch what can start now."""

    def waiting_reason(self, entry: AgentEntry) -> str:
        """Why a queued agent has not started."""

    def failed_end(self, entry: AgentEntry) -> bool:
        """Whether the end of ``entry``'s generation counts as a failure."""


@dataclass(slots=True)
class _Waiting:
    """A due run asked for, not launched yet."""

    due: float
    starts_before: int
    miss_at: float
    """Monotonic: AGENT_MISSED if it has not started by then."""
    missed: bool = False


@dataclass(slots=True)
class ScheduleSlot:
    """One scheduled agent's schedule state (the scheduler's, under the lock)."""

    name: str
    schedule: Schedule
    external: bool
    spec: AgentSpec
    """The definition this slot was armed for (a reload may replace it)."""
    anchor: float = 0.0
    """Wall time ``every`` counts from."""
    due: float | None = None
    """The next due time (wall), before jitter."""
    start_at: float | None = None
    """The next due time plus its jitter draw (wall)."""
    waiting: _Waiting | None = None
    queued: float | None = None
    """overlap=queue: the due time of the run waiting for the running one."""
    run_generation: int | None = None
    run_due: float | None = None
    late_sent: bool = False
    last_due: float | None = None
    last_result: str | None = None
    last_error: str | None = None
    pings: int = 0
    ping_mark: int = 0
    ping_deadline: float | None = None
    """External jobs: the wall time the ping for ``ping_due`` must come by."""
    ping_due: float | None = None


def _iso(wall: float, schedule: Schedule) -> str:
    return _dt.datetime.fromtimestamp(wall, schedule.zone).isoformat()


class Scheduler:
    """Due runs, overlap, grace, max runtime (see the module docstring).

    Every method expects the caller to hold the lifecycle lock.

    Args:
        registry: the agents.
        pool: worker slots (whether starts are accepted).
        states: the state writer.
        stopper: stops runs past ``max_runtime`` and replaced ones.
        submit: runs a function off the router thread (an agent's ``on_stop``, the
            state file's writes).
        clock: monotonic clock (every timeout).
        wall_clock: wall clock (due times).
        wake: called when the router must re-read its deadlines.
        state_file: where last runs are kept (``None``: nowhere).
        jitter: draws a jitter in ``[0, 1)`` (``random.random``).
    """

    def __init__(
        self,
        registry: AgentRegistry,
        pool: WorkerPool,
        states: ScheduledStates,
        stopper: Stopper,
        *,
        submit: Callable[[str | None, Callable[[Any], object], Any], bool],
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        wake: Callable[[], None],
        state_file: Path | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._registry = registry
        self._pool = pool
        self._states = states
        self._stopper = stopper
        self._submit = submit
        self._clock = clock
        self.wall_clock = wall_clock
        self._wake = wake
        self.state_file = state_file
        self._jitter = jitter
        self.slots: dict[str, ScheduleSlot] = {}
        self._armed = False
        self._saved: dict[str, dict[str, Any]] = {}
        self._registry_version = -1
        # Wall times to act at, earliest first: (when, seq, "due" | "ping", slot).
        # Superseded items stay until popped, and are then skipped: a check costs
        # what is due, not one look at every scheduled agent.
        self._timeline: list[tuple[float, int, str, ScheduleSlot]] = []
        self._seq = itertools.count()
        self._save_lock = threading.Lock()
        self._pending_save: dict[str, Any] | None = None
        self._writing = False
        self._active: set[str] = set()
        """Agents with a run waiting to start, going, or queued (timed on the
        monotonic clock)."""

    # ------------------------------------------------------------- arming
    def arm(self) -> None:
        """Compute every scheduled agent's first due time; once (agents registered
        later, or whose definition changed, are armed as the router next looks).
        What was missed while the orchestrator was down (from the state file) is
        reported now, and run once with ``catch_up="last"``."""
        if self._armed:
            return
        self._armed = True
        self._saved = self._load()
        self._sync()
        self._wake()

    def _sync(self) -> None:
        """One slot per scheduled agent registered now, for its current spec."""
        if self._registry.version == self._registry_version:
            return
        self._registry_version = self._registry.version
        entries = {e.name: e for e in self._registry if e.spec.schedule is not None}
        for name, slot in list(self.slots.items()):
            found = entries.get(name)
            if found is None or found.spec is not slot.spec:
                del self.slots[name]
        for name, entry in entries.items():
            if name not in self.slots:
                self._arm_one(entry)

    def _arm_one(self, entry: AgentEntry) -> None:
        schedule = entry.spec.schedule
        assert schedule is not None
        now = self.wall_clock()
        mono = self._clock()
        slot = ScheduleSlot(
            entry.name,
            schedule,
            issubclass(entry.agent_class, ExternalJob),
            entry.spec,
        )
        self.slots[entry.name] = slot
        record = self._saved.get(entry.name, {})
        last_due = record.get("last_due")
        result = record.get("last_result")
        slot.last_result = result if isinstance(result, str) else None
        slot.anchor = now
        if isinstance(last_due, int | float):
            slot.last_due = float(last_due)
            if schedule.every is not None:
                slot.anchor = float(last_due)  # keep the cadence
            missed = schedule.previous_due(now, anchor=slot.anchor)
            if (
                missed is not None
                and missed > slot.last_due
                and not slot.external  # its pings went elsewhere meanwhile
            ):
                self._missed_while_down(entry, slot, missed, now, mono)
        self._plan_next(slot, now)
        logger.info(
            "agent %r scheduled (%s): next run %s",
            entry.name,
            schedule.describe(),
            _iso(slot.start_at or now, schedule),
            extra={"agent": entry.name},
        )

    def _missed_while_down(
        self, entry: AgentEntry, slot: ScheduleSlot, due: float, now: float, mono: float
    ) -> None:
        self._emit_missed(
            entry,
            slot,
            due,
            reason="down",
            text=f"the run due at {_iso(due, slot.schedule)} was missed while the "
            "orchestrator was not running",
        )
        if slot.schedule.catch_up == "last":
            self._begin(entry, slot, due, now, mono)

    def _plan_next(self, slot: ScheduleSlot, after: float) -> None:
        due = slot.schedule.next_due(after, anchor=slot.anchor)
        slot.due = due
        slot.start_at = due + slot.schedule.jitter * self._jitter()
        heapq.heappush(self._timeline, (slot.start_at, next(self._seq), "due", slot))

    # ------------------------------------------------------------- deadlines
    def check_deadlines(self, now: float) -> float | None:
        """Act on due runs, grace, warn_after and max_runtime; return the next
        deadline on the monotonic clock (or ``None``)."""
        if not self._armed or not self._pool.accepting:
            return None
        self._sync()
        wall = self.wall_clock()
        upcoming: list[float] = []
        timeline = self._timeline
        while timeline and timeline[0][0] <= wall:
            at, _, kind, slot = heapq.heappop(timeline)
            entry = self._registry.get(slot.name)
            if entry is None or self.slots.get(slot.name) is not slot:
                continue  # unregistered, or its definition changed
            if kind == "due" and slot.start_at == at:
                self._check_due(entry, slot, now, wall)
            elif kind == "ping" and slot.ping_deadline == at:
                self._settle_ping(entry, slot)
        if timeline:
            upcoming.append(now + max(timeline[0][0] - wall, 0.0))
        for name in list(self._active):
            slot_ = self.slots.get(name)
            entry = self._registry.get(name)
            if slot_ is None or entry is None:
                self._active.discard(name)
                continue
            for deadline in (
                self._check_run(entry, slot_, now),
                self._check_waiting(entry, slot_, now),
            ):
                if deadline is not None:
                    upcoming.append(deadline)
            if (
                slot_.waiting is None
                and slot_.run_generation is None
                and slot_.queued is None
            ):
                self._active.discard(name)
        return min(upcoming) if upcoming else None

    def _check_due(
        self, entry: AgentEntry, slot: ScheduleSlot, now: float, wall: float
    ) -> None:
        """``slot``'s due time (plus jitter) has come: begin the run, or report
        it missed, and plan the next one."""
        start_at, due = slot.start_at, slot.due
        if start_at is None or due is None:
            return
        grace = slot.schedule.grace
        if slot.external:  # a ping is expected, however late we look
            self._begin(entry, slot, due, wall, now)
            self._plan_next(slot, max(due, wall))
        elif wall - start_at > grace:
            # Found late: suspended, the wall clock jumped, or the router was held.
            self._emit_missed(
                entry,
                slot,
                due,
                reason="late",
                text=f"the run due at {_iso(due, slot.schedule)} did not start within "
                f"{grace:g} s (the orchestrator was suspended or the clock jumped)",
            )
            if slot.schedule.catch_up == "last":
                self._begin(entry, slot, due, wall, now)
            self._plan_next(slot, wall)
        else:
            self._begin(entry, slot, due, wall, now)
            self._plan_next(slot, due)

    def _begin(
        self, entry: AgentEntry, slot: ScheduleSlot, due: float, wall: float, now: float
    ) -> None:
        """Run ``due`` now, or as ``overlap`` says if the previous run still goes."""
        slot.last_due = due
        if slot.external:
            if slot.ping_due is not None:
                self._settle_ping(entry, slot)
            slot.ping_due = due
            slot.ping_deadline = deadline = due + slot.schedule.grace
            heapq.heappush(self._timeline, (deadline, next(self._seq), "ping", slot))
            self._save()
            return
        self._active.add(slot.name)
        miss_at = now + max(slot.schedule.grace - (wall - due), 0.0)
        if slot.waiting is not None or entry.state is S.QUEUED:
            logger.warning(
                "agent %r: run due at %s skipped: the previous run has not started yet",
                entry.name,
                _iso(due, slot.schedule),
                extra={"agent": entry.name},
            )
            return
        busy = entry.state in ACTIVE_STATES or entry.state is S.BACKOFF
        overlap = slot.schedule.overlap
        if busy and (overlap == "skip" or entry.state is S.STOPPING):
            logger.warning(
                "agent %r: run due at %s skipped: the previous run is still going",
                entry.name,
                _iso(due, slot.schedule),
                extra={"agent": entry.name},
            )
            return
        if busy and overlap == "queue" and entry.state is not S.BACKOFF:
            slot.queued = due
            logger.info(
                "agent %r: run due at %s queued behind the running one",
                entry.name,
                _iso(due, slot.schedule),
                extra={"agent": entry.name},
            )
            return
        slot.waiting = _Waiting(due, entry.starts, miss_at)
        if busy and entry.state is not S.BACKOFF:  # replace
            logger.info(
                "agent %r: run due at %s replaces the running one",
                entry.name,
                _iso(due, slot.schedule),
                extra={"agent": entry.name},
            )
            entry.restart_pending = True  # on_exit starts it again
            agent = self._stopper.mark_stopping(entry, "restart")
            if agent is not None:
                self._submit(entry.name, call_stop, agent)
                if entry.flavour == "process":
                    self._stopper.terminate(entry)
        else:
            self._start(entry, slot)
        self._save()

    def _start(self, entry: AgentEntry, slot: ScheduleSlot) -> None:
        try:
            self._states.request_start(entry.name)
        except LifecycleError as exc:
            logger.warning(
                "agent %r: scheduled run not started: %s",
                entry.name,
                exc,
                extra={"agent": entry.name},
            )
            slot.waiting = None
            return
        self._check_waiting(entry, slot, self._clock())

    def on_launched(self, entry: AgentEntry) -> None:
        """``entry`` was launched: if it is scheduled, this generation is a run,
        timed by ``warn_after`` and ``max_runtime`` and ending in a last result,
        whoever started it (its due time, an operator, a restart)."""
        slot = self.slots.get(entry.name)
        if slot is None or slot.external:
            return
        slot.run_generation = entry.generation_id
        slot.late_sent = False
        self._active.add(entry.name)

    def _check_waiting(
        self, entry: AgentEntry, slot: ScheduleSlot, now: float
    ) -> float | None:
        waiting = slot.waiting
        if waiting is None:
            return None
        if entry.starts > waiting.starts_before:  # launched (see on_launched)
            slot.waiting = None
            slot.run_due = waiting.due
            return self._check_run(entry, slot, now)
        if waiting.missed:
            return None
        if now < waiting.miss_at:
            return waiting.miss_at
        waiting.missed = True
        self._emit_missed(
            entry,
            slot,
            waiting.due,
            reason="not_started",
            text=f"the run due at {_iso(waiting.due, slot.schedule)} has not started "
            f"within {slot.schedule.grace:g} s: {self._states.waiting_reason(entry)}",
        )
        return None

    def _check_run(
        self, entry: AgentEntry, slot: ScheduleSlot, now: float
    ) -> float | None:
        if slot.run_generation is None or entry.generation_id != slot.run_generation:
            return None
        if entry.state in FINAL_STATES or entry.state is S.BACKOFF:
            self._finish(entry, slot)
            return None
        started = entry.started_mono
        if started is None or entry.state not in ACTIVE_STATES:
            return None
        schedule = slot.schedule
        upcoming: list[float] = []
        if schedule.warn_after is not None and not slot.late_sent:
            at = started + schedule.warn_after
            if now >= at:
                slot.late_sent = True
                logger.warning(
                    "agent %r: still running after %g s (warn_after)",
                    entry.name,
                    schedule.warn_after,
                    extra={"agent": entry.name},
                )
                self._states.emit(
                    OrchestratorEvent.AGENT_LATE,
                    entry,
                    reason="warn_after",
                    runtime=round(now - started, 3),
                    timeout=schedule.warn_after,
                    error_message=f"still running after {schedule.warn_after:g} s"
                    + (
                        f" (stopped at max_runtime {schedule.max_runtime:g} s)"
                        if schedule.max_runtime is not None
                        else ""
                    ),
                )
            else:
                upcoming.append(at)
        if (
            schedule.max_runtime is not None
            and entry.failure is None
            and entry.state in (S.STARTING, S.RUNNING, S.READY)
        ):
            at = started + schedule.max_runtime
            if now >= at:
                self._states.record_error(
                    entry,
                    f"ran longer than max_runtime ({schedule.max_runtime:g} s): stopped",
                    reason="max_runtime",
                    timeout=schedule.max_runtime,
                )
                self._stopper.force_stop(entry, "max_runtime")
            else:
                upcoming.append(at)
        return min(upcoming) if upcoming else None

    def _finish(self, entry: AgentEntry, slot: ScheduleSlot) -> None:
        """The run ended: keep its result, start the queued run if there is one."""
        slot.run_generation = None
        if entry.failure == "max_runtime":
            result = "max_runtime"
        elif self._states.failed_end(entry):
            result = "failed"
        else:
            result = "success"
        slot.last_result = result
        slot.last_error = entry.last_error if result != "success" else None
        self._save()
        queued, slot.queued = slot.queued, None
        if queued is not None and entry.state is not S.BACKOFF:
            now, wall = self._clock(), self.wall_clock()
            slot.waiting = _Waiting(
                queued,
                entry.starts,
                now + max(slot.schedule.grace - (wall - queued), 0.0),
            )
            self._start(entry, slot)

    # ------------------------------------------------------------- external jobs
    def _settle_ping(self, entry: AgentEntry, slot: ScheduleSlot) -> None:
        due = slot.ping_due
        slot.ping_deadline = slot.ping_due = None
        if slot.pings > slot.ping_mark:
            slot.ping_mark = slot.pings
            return
        if due is not None:
            self._emit_missed(
                entry,
                slot,
                due,
                reason="no_ping",
                text=f"no ping for the run due at {_iso(due, slot.schedule)} within "
                f"{slot.schedule.grace:g} s",
            )

    def ping(self, name: str, *, failed: bool = False, message: str = "") -> str:
        """An external job reported a run (``pyorchestrate ping``); return a reply.

        Raises:
            RegistrationError: no agent ``name``.
            LifecycleError: ``name`` is not an external job.
        """
        entry = self._registry.require(name)
        if not self._armed:
            raise LifecycleError(
                f"cannot ping {name!r}: the orchestrator is not started"
            )
        self._sync()
        slot = self.slots.get(name)
        if slot is None or not slot.external:
            raise LifecycleError(
                f"agent {name!r} is not an external job: only an ExternalJob takes pings"
            )
        # Counted against the run due now, or, between runs, the next one.
        slot.pings += 1
        if failed:
            slot.last_result = "failed"
            slot.last_error = message or "the job reported a failure"
            self._states.record_error(entry, slot.last_error, reason="ping_fail")
        else:
            slot.last_result = "success"
            slot.last_error = None
            self._states.emit(OrchestratorEvent.AGENT_HEARTBEAT, entry, reason="ping")
        self._save()
        return f"agent {name!r}: {'failure' if failed else 'success'} recorded"

    # ------------------------------------------------------------- shared
    def _emit_missed(
        self,
        entry: AgentEntry,
        slot: ScheduleSlot,
        due: float,
        *,
        reason: str,
        text: str,
    ) -> None:
        slot.last_result = "missed"
        slot.last_error = text
        logger.error("agent %r: %s", entry.name, text, extra={"agent": entry.name})
        self._states.emit(
            OrchestratorEvent.AGENT_MISSED,
            entry,
            reason=reason,
            error_message=text,
            due=_iso(due, slot.schedule),
        )
        self._save()

    def next_run(self, name: str) -> float | None:
        """The wall time agent ``name``'s next run is due (with its jitter)."""
        slot = self.slots.get(name)
        return None if slot is None else slot.start_at

    def next_run_iso(self, name: str) -> str | None:
        """:meth:`next_run` as ISO 8601 in the schedule's time zone."""
        slot = self.slots.get(name)
        if slot is None or slot.start_at is None:
            return None
        return _iso(slot.start_at, slot.schedule)

    def last_result(self, name: str) -> str | None:
        """``success``, ``failed``, ``max_runtime`` or ``missed`` (``None``: none
        yet)."""
        slot = self.slots.get(name)
        return None if slot is None else slot.last_result

    # ------------------------------------------------------------- state file
    def _load(self) -> dict[str, dict[str, Any]]:
        path = self.state_file
        if path is None:
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.error(
                "schedule state %s unreadable (%s): starting afresh", path, exc
            )
            return {}
        agents = data.get("agents") if isinstance(data, dict) else None
        if not isinstance(agents, dict):
            return {}
        return {k: v for k, v in agents.items() if isinstance(v, dict)}

    def _save(self) -> None:
        """Write the last runs to the state file, off the router thread: the write
        goes to the callback workers (one key, so writes stay in order), and one
        write takes whatever changed while the previous one ran."""
        if self.state_file is None:
            return
        data: dict[str, Any] = {
            "version": 1,
            "agents": {
                slot.name: {"last_due": slot.last_due, "last_result": slot.last_result}
                for slot in self.slots.values()
            },
        }
        with self._save_lock:
            self._pending_save = data
            if self._writing:
                return
            self._writing = True
        if not self._submit(_STATE_WRITER, self._write_pending, None):
            self._write_pending(None)  # shutting down: the workers are gone

    def _write_pending(self, _: object) -> None:
        while True:
            with self._save_lock:
                data, self._pending_save = self._pending_save, None
                if data is None:
                    self._writing = False
                    return
            self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        path = self.state_file
        assert path is not None
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data), encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:
            logger.error("schedule state %s not saved: %s", path, exc)
            with contextlib.suppress(OSError):
                tmp.unlink()
