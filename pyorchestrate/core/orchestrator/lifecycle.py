"""The lifecycle manager: the one writer of agent state.

Everything that changes an agent's state goes through :meth:`LifecycleManager.change_state`,
which checks the edge against :mod:`.states`, logs it, emits the matching event and
wakes whoever waits on the condition. The router thread feeds it messages and exits;
API calls (start, stop, shutdown) come from user threads. All of it runs under one
re-entrant lock, held only for bookkeeping.

The manager launches agents and reacts to what they report. It holds two objects, each
with its own job and state, which change state only through it:

* :attr:`LifecycleManager.supervisor`, a :class:`~.supervisor.Supervisor`: the start,
  ready and watchdog deadlines, and the restart policy (BACKOFF, FATAL);
* :attr:`LifecycleManager.stopper`, a :class:`~.stopping.Stopper`: stop requests, the
  reverse-order stop of everything, the stop and kill deadlines (SIGTERM, SIGKILL). Its
  :meth:`~.stopping.Stopper.shutdown_agents` is the one wait on agents, on the
  condition (which releases the lock);
* :attr:`LifecycleManager.scheduler`, a :class:`~.scheduler.Scheduler`: scheduled
  runs (cron, ``every``), their grace, ``warn_after`` and ``max_runtime``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..agent.command import CommandAgent, CommandSpawnError, ProcessGroupGuard
from ..agent.external import ExternalJob
from ..agent.flavours import StartMethod, expected_exit_code
from ..agent.ray_backend import RayAgent, RayBackend
from ..agent.status import AgentTerminationStatus
from ..errors import LifecycleError
from ..events import AgentEvent, OrchestratorEvent
from ..utilities.agentlog import LogRelay
from ..utilities.messaging import AgentLink, MessageType, ServiceMessage
from ..utilities.output import OutputCapture, OutputSettings
from .callbacks import EventBus
from .dependencies import DependencyGraph
from .registry import AgentEntry, AgentRegistry
from .scheduler import Scheduler
from .states import ACTIVE_STATES, FINAL_STATES, LIVE_STATES, AgentState, can_transition
from .stopping import Stopper, call_stop
from .supervisor import Supervisor, describe_end, signal_name
from .workers import StartStatus, WorkerPool, WorkerStartResult

__all__ = ["LifecycleManager"]

logger = logging.getLogger("pyorchestrate.lifecycle")

S = AgentState

OUTPUT_WAIT = 2.0
"""Seconds an ended process agent's exit (its AGENT_ERROR and AGENT_TERMINATED) waits
for the end of its output pipes, so the ``output_tail`` has its last lines. The pipes
end at once unless something the agent started, outside its process group, holds them."""

ERROR_HOLD = 5.0
"""Seconds a process agent's reported error (AGENT_ERROR) waits for the process to end,
to carry its last output lines; an agent still running then has its error sent as is."""

_REMOTE = ("process", "ray")
"""Flavours whose agents run in a process of their own: their pid and log records
come in their messages."""

_STATE_EVENTS: dict[AgentState, OrchestratorEvent] = {
    S.RUNNING: OrchestratorEvent.AGENT_STARTED,
    S.READY: OrchestratorEvent.AGENT_READY,
}


class LifecycleManager:
    """Starts, watches and stops agents; owns their state.

    Args:
        registry: the agents.
        graph: their dependencies.
        pool: worker slots and queue.
        bus: where events go.
        start_timeout: seconds a started agent has to report START.
        termination_grace: default seconds between SIGTERM and SIGKILL.
        stop_timeout: default seconds an agent has to stop cooperatively.
        start_method: how process agents start.
        wake: called when the router must re-read what it watches.
        clock: monotonic clock.
        wall_clock: wall clock (seconds since the epoch): when scheduled runs are due.
        schedule_state: where scheduled agents' last runs are kept (``None``:
            nowhere).
        name: the orchestrator's name, for the names of its threads.
        output: where process agents' stdout and stderr go (default: passed on to
            ours, prefixed with the agent's name).
    """

    def __init__(
        self,
        registry: AgentRegistry,
        graph: DependencyGraph,
        pool: WorkerPool,
        bus: EventBus,
        *,
        start_timeout: float,
        termination_grace: float,
        start_method: StartMethod,
        stop_timeout: float = 10.0,
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        schedule_state: Path | None = None,
        name: str = "orchestrator",
        output: OutputSettings | None = None,
        ray_address: str | None = None,
        ray_namespace: str | None = None,
        ray_num_cpus: int | None = None,
    ) -> None:
        self.registry = registry
        self.graph = graph
        self.pool = pool
        self.bus = bus
        self.start_method = start_method
        self.wake = wake
        self.clock = clock
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.watch_version = 0
        self.log_relay = LogRelay(name)
        """Logs process agents' records again here, off the router thread."""
        self.output = OutputCapture(name, settings=output, on_end=lambda: self.wake())
        """Reads process agents' stdout and stderr, stores it, keeps the last lines."""
        self.command_guard = ProcessGroupGuard(name)
        """Ends the command agents' process groups if this process dies."""
        self.ray = RayBackend(
            address=ray_address,
            namespace=ray_namespace
            or f"pyorchestrate-{name}-{os.getpid()}-{id(self):x}",
            num_cpus=ray_num_cpus,
        )
        """The Ray cluster that Ray agents run on (connected on first use)."""

        def wake_router() -> None:
            self.wake()  # late-bound: the orchestrator sets wake once its router exists

        self.stopper = Stopper(
            registry,
            graph,
            pool,
            self,
            changed=self.changed,
            submit=bus.executor.submit,
            stop_timeout=stop_timeout,
            termination_grace=termination_grace,
            clock=clock,
            wake=wake_router,
        )
        """Ends agents: stop requests, shutdown order, stop and kill deadlines."""
        self.supervisor = Supervisor(
            registry,
            pool,
            self,
            self.stopper,
            start_timeout=start_timeout,
            clock=clock,
            wake=wake_router,
        )
        """Start, ready and watchdog deadlines; restart policies."""
        self.scheduler = Scheduler(
            registry,
            pool,
            self,
            self.stopper,
            submit=bus.executor.submit,
            clock=clock,
            wall_clock=wall_clock,
            wake=wake_router,
            state_file=schedule_state,
        )
        """Scheduled runs: due times, overlap, grace, warn_after, max_runtime."""

    # ------------------------------------------------------------- the writer
    def change_state(
        self, entry: AgentEntry, target: AgentState, **context: Any
    ) -> None:
        """Move ``entry`` to ``target``, emit the mapped event, wake waiters.

        Raises:
            LifecycleError: the edge is not in the transition table.
        """
        with self.lock:
            current = entry.state
            if not can_transition(current, target):
                raise LifecycleError(
                    f"agent {entry.name!r}: illegal transition {current} -> {target}"
                )
            entry.state = target
            if target in ACTIVE_STATES:
                self.pool.occupy(entry.name)
            else:
                self.pool.release(entry.name)
            logger.info(
                "agent %r %s%s",
                entry.name,
                target.value,
                f" pid {entry.pid}" if entry.pid and target is S.RUNNING else "",
                extra={"agent": entry.name},
            )
            event = _STATE_EVENTS.get(target)
            if target in FINAL_STATES and current in ACTIVE_STATES and entry.launched:
                event = OrchestratorEvent.AGENT_TERMINATED
            if event is not None:
                self.emit(event, entry, **context)
            self.changed.notify_all()

    def emit(self, event: OrchestratorEvent, entry: AgentEntry, **context: Any) -> None:
        """Emit ``event`` for ``entry`` with its generation and pid added."""
        ctx: dict[str, Any] = {"generation_id": entry.generation_id, "pid": entry.pid}
        if isinstance(entry.agent, RayAgent):
            ctx["node"] = entry.agent.node  # alerts' {node}
        ctx.update(context)
        self.bus.emit(event, agent_name=entry.name, context=ctx)

    def record_error(
        self,
        entry: AgentEntry,
        message: str,
        *,
        reason: str,
        hold: bool = False,
        **context: Any,
    ) -> None:
        """Remember ``message`` as the agent's last error and emit AGENT_ERROR.

        Logged at ERROR on ``pyorchestrate.lifecycle`` as one block, with the agent's
        traceback (``context["traceback"]``, sent by either flavour) when there is one.
        With no logging configured, Python's last-resort handler prints it on stderr;
        a user's handlers get it instead.

        A process agent's event carries ``output_tail``: the last lines it wrote to
        stdout and stderr. With ``hold`` (an error the agent itself reported, while
        running), the event waits for the process to end and its pipes with it (up to
        :data:`ERROR_HOLD` seconds), so the tail has the lines written last.
        """
        entry.last_error = message
        trace = context.get("traceback")
        if isinstance(trace, str) and trace.strip():
            logger.error(
                "agent %r failed: %s\n%s",
                entry.name,
                message,
                trace.rstrip(),
                extra={"agent": entry.name},
            )
        else:
            context.pop("traceback", None)
            logger.error(
                "agent %r: %s", entry.name, message, extra={"agent": entry.name}
            )
        context = {"error_message": message, "reason": reason, **context}
        if entry.flavour != "process":
            self.emit(OrchestratorEvent.AGENT_ERROR, entry, **context)
        elif entry.output is None:  # not started, or its output is not captured
            self.emit(OrchestratorEvent.AGENT_ERROR, entry, **context, output_tail="")
        elif hold and not entry.exit_seen and entry.launched:
            entry.held_errors.append(context)
            if entry.error_hold_until is None:
                entry.error_hold_until = self.clock() + ERROR_HOLD
        else:
            self.release_errors(entry)  # in the order they came
            self.emit(
                OrchestratorEvent.AGENT_ERROR,
                entry,
                **context,
                output_tail=entry.output.tail.text(),
            )

    def release_errors(self, entry: AgentEntry) -> None:
        """Emit the AGENT_ERROR events held for ``entry`` (see :meth:`record_error`)."""
        held, entry.held_errors = entry.held_errors, []
        entry.error_hold_until = None
        tail = entry.output.tail.text() if entry.output is not None else ""
        # After the process's end, the error says how it ended.
        end = (
            {"exit_code": entry.exit_code, "signal": entry.last_signal}
            if entry.exit_seen
            else {}
        )
        for context in held:
            known = {k: v for k, v in context.items() if v is not None or k not in end}
            context = {**end, **known}
            self.emit(OrchestratorEvent.AGENT_ERROR, entry, **context, output_tail=tail)

    # ------------------------------------------------------------- starting
    def request_start(self, name: str) -> WorkerStartResult:
        """Queue ``name`` for a start and launch what can start now.

        Raises:
            RegistrationError: ``name`` is not registered.
            LifecycleError: the orchestrator is shutting down, or the agent is active.
        """
        with self.lock:
            if not self.pool.accepting:
                raise LifecycleError(
                    f"cannot accept new starts: shutting down (agent {name!r})"
                )
            entry = self.registry.require(name)
            if issubclass(entry.agent_class, ExternalJob):
                raise LifecycleError(
                    f"agent {name!r} is an external job: it runs elsewhere and "
                    f"reports with `pyorchestrate ping {name}`"
                )
            if entry.state in ACTIVE_STATES:
                raise LifecycleError(f"agent {name!r} is already {entry.state.value}")
            if entry.state is S.QUEUED:
                return WorkerStartResult(
                    StartStatus.QUEUED, self._waiting_reason(entry)
                )
            # Someone asked for this start: a fresh restart budget, no pending restart.
            entry.tracker.reset()
            entry.restart_at = None
            entry.fatal_reason = None
            self.change_state(entry, S.QUEUED)
            self.pool.enqueue(name)
            self.pump()
            state: AgentState = entry.state
            if state in ACTIVE_STATES:
                return WorkerStartResult(StartStatus.STARTED, f"pid {entry.pid}")
            if state is S.QUEUED:
                return WorkerStartResult(
                    StartStatus.QUEUED, self._waiting_reason(entry)
                )
            return WorkerStartResult(StartStatus.FAILED_CLEAN, entry.last_error or "")

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
            if entry.state not in ACTIVE_STATES or entry.agent is None:
                result = self.request_start(name)
                return f"agent {name!r}: {result.status.value}"
            # on_exit starts it again once it has ended.
            entry.restart_pending = True
            agent = self.stopper.mark_stopping(entry, "restart")
        if agent is not None:
            call_stop(agent)  # the user's on_stop: in the caller's thread, unlocked
        return f"agent {name!r} asked to stop; it starts again once it has ended"

    def waiting_reason(self, entry: AgentEntry) -> str:
        """Why the queued agent ``entry`` has not started (for the scheduler)."""
        return self._waiting_reason(entry)

    def failed_end(self, entry: AgentEntry) -> bool:
        """Whether ``entry``'s last generation ended in failure (for the scheduler)."""
        return self.supervisor.failed_end(entry, entry.exit_code)

    def _waiting_reason(self, entry: AgentEntry) -> str:
        pending = [
            d for d in self.graph.get_dependencies(entry.name) if not self._dep_ok(d)
        ]
        if pending:
            return "waiting for dependencies: " + ", ".join(pending)
        return "waiting for a free worker slot"

    def _dep_ok(self, name: str) -> bool:
        """A dependency is satisfied once READY (and while it has not failed since)."""
        dep = self.registry.get(name)
        return (
            dep is not None
            and dep.reached_ready
            and dep.state not in (S.FAILED, S.FATAL, S.BACKOFF, S.QUEUED)
        )

    def _dep_failed(self, name: str) -> bool:
        dep = self.registry.get(name)
        if dep is None:
            return True
        if dep.state in (S.FAILED, S.FATAL):
            return True
        return dep.state is S.TERMINATED and not dep.reached_ready

    def pump(self) -> None:
        """Launch queued agents that have a slot and whose dependencies have started.

        Agents whose dependencies failed are failed first, until none is left: a
        failure travels down a whole chain of dependents.
        """
        with self.lock:
            if not self.pool.accepting:
                return
            while self._fail_orphans():
                pass

            def eligible(name: str) -> bool:
                return all(self._dep_ok(d) for d in self.graph.get_dependencies(name))

            for name in self.pool.take_launchable(eligible):
                self._launch(self.registry.require(name))
            while self._fail_orphans():  # a launch may have failed just now
                pass

    def _fail_orphans(self) -> bool:
        """Fail queued agents whose dependencies failed; return whether any was.

        Only the queue is read (every QUEUED agent is in it), not every agent: this
        runs on each pump, and a fleet of 1,000 spent a third of its router time here.
        """
        changed = False
        for name in self.pool.queued():
            entry = self.registry.require(name)
            if entry.state is not S.QUEUED:
                continue
            deps = self.graph.get_dependencies(entry.name)
            failed = [d for d in deps if self._dep_failed(d)]
            if failed:
                self.pool.dequeue(entry.name)
                self.record_error(
                    entry,
                    "dependency did not start: " + ", ".join(failed),
                    reason="dependency_failed",
                )
                self.change_state(entry, S.FAILED)
                changed = True
        return changed

    def _launch(self, entry: AgentEntry) -> None:
        spec = entry.spec
        entry.generation_id += 1
        entry.starts += 1
        entry.agent = None
        entry.exit_seen = False
        entry.pid = None
        entry.launched = False
        entry.reached_running = False
        entry.close_seen = False
        entry.reader_eof = False
        entry.kill_at = None
        entry.stop_requested = False
        entry.stop_reason = None
        entry.failure = None
        entry.reached_ready = False
        entry.ready_mono = None
        entry.ready_deadline = entry.beat_deadline = entry.stop_deadline = None
        entry.restart_at = None
        entry.exit_code = None
        entry.last_signal = None
        entry.termination_status = None
        entry.started_mono = self.clock()
        entry.ended_mono = None
        entry.output = None
        entry.output_deadline = entry.error_hold_until = None
        entry.held_errors = []
        for events in (spec.control_events, spec.state_events):
            if events is not None:
                for name in ("start_event", "ready_event", "close_event", "stop_event"):
                    event = getattr(events, name, None)
                    if event is not None:
                        event.clear()
        self.change_state(entry, S.STARTING)
        reader: Connection | None = None
        link: AgentLink | None = None
        try:
            instance = spec.agent_class(
                name=spec.name,
                config=spec.config,
                plugin=spec.plugin,
                control_events=spec.control_events,
                state_events=spec.state_events,
                msg_channel=spec.msg_channel,
                generation_id=entry.generation_id,
                **dict(spec.kwargs),
            )
            if instance.flavour == "process":
                instance.start_method = self.start_method  # type: ignore[attr-defined]
            reader, link = AgentLink.open_pair()
            instance.attach_link(link)
            entry.agent = instance
            entry.reader = reader
            entry.link = link
            on_line = None
            if isinstance(instance, CommandAgent):
                instance.use_guard(self.command_guard)
                on_line = instance.on_output_line  # ready_pattern, heartbeats
            if isinstance(instance, RayAgent):
                instance.use_backend(self.ray)
            if instance.flavour == "process":
                # OSError: names the file
                output = self.output.open(entry.name, on_line=on_line)
                if output is not None:
                    entry.output = output
                    instance.capture_output(  # type: ignore[attr-defined]
                        output.stdout_fd, output.stderr_fd
                    )
            try:
                instance.start()
            finally:
                if entry.output is not None:
                    entry.output.close_writers()  # the child has its copies
        except Exception as exc:
            for closable in (reader, link):
                if closable is not None:
                    closable.close()
            entry.reader = entry.link = None
            reason = (
                exc.reason if isinstance(exc, CommandSpawnError) else "start_failed"
            )
            self.record_error(entry, _launch_error(entry, exc), reason=reason)
            self.change_state(entry, S.FAILED)
            return
        if instance.flavour == "process" and not isinstance(instance, CommandAgent):
            link.close()  # the child has its own copy; ours would hide its EOF
        entry.launched = True
        entry.pid = getattr(instance, "pid", None)
        self.supervisor.on_launched(entry)
        self.scheduler.on_launched(entry)
        self.watch_version += 1
        self.wake()

    # ------------------------------------------------------------- messages
    def on_message(self, entry: AgentEntry, message: object) -> None:
        """Handle one message read from ``entry``'s link."""
        if not isinstance(message, ServiceMessage):
            logger.warning(
                "agent %r sent a %s, not a message", entry.name, type(message).__name__
            )
            return
        if message.type is MessageType.LOG:
            if entry.flavour in _REMOTE:
                self.log_relay.submit(entry.name, message.payload)
            return
        if message.type is not MessageType.STATUS:
            logger.debug("agent %r: %s message", entry.name, message.type.value)
            return
        payload = message.payload
        generation = payload.get("generation_id")
        if generation is not None and generation != entry.generation_id:
            logger.debug(
                "agent %r: dropped a message of generation %s (current %s)",
                entry.name,
                generation,
                entry.generation_id,
            )
            return
        event = payload.get("event")
        if isinstance(payload.get("pid"), int) and entry.flavour in _REMOTE:
            entry.pid = payload["pid"]
        if event == AgentEvent.START.value:
            entry.reached_running = True
            entry.start_deadline = None
            if entry.state is S.STARTING:
                self.change_state(entry, S.RUNNING)
            else:
                self.emit(OrchestratorEvent.AGENT_STARTED, entry)
            self.supervisor.on_started(entry)
        elif event == AgentEvent.READY.value:
            if entry.state is S.RUNNING:
                self.change_state(entry, S.READY)
            else:
                self.emit(OrchestratorEvent.AGENT_READY, entry)
            self.supervisor.on_ready(entry)
            self.pump()  # dependents wait for READY
        elif event in (AgentEvent.ERROR.value, "ERROR"):
            text = payload.get("message") or payload.get("error") or "Unknown error"
            if payload.get("reason") == "killed" and entry.failure is not None:
                # A Ray agent's kill after a failure already reported (start or
                # ready timeout, the watchdog): ours, not a second error (as for a
                # process agent's SIGKILL in on_exit).
                logger.info(
                    "agent %r: %s, after %s",
                    entry.name,
                    text,
                    entry.failure,
                    extra={"agent": entry.name},
                )
                return
            # A command's agent reports its program's exit code with the error.
            code = payload.get("exit_code")
            self.record_error(
                entry,
                str(text),
                hold=True,
                reason=str(payload.get("reason", "exception")),
                error_type=payload.get("error_type"),
                traceback=payload.get("traceback"),
                **({} if code is None else {"exit_code": code}),
            )
        elif event == AgentEvent.HEARTBEAT.value:
            if not entry.close_seen:
                self.supervisor.on_heartbeat(entry)
                self.emit(OrchestratorEvent.AGENT_HEARTBEAT, entry)
        elif event == AgentEvent.CLOSE.value:
            entry.close_seen = True
            status = payload.get("termination_status")
            try:
                entry.termination_status = AgentTerminationStatus(str(status))
            except ValueError:
                entry.termination_status = None
        else:
            logger.warning("agent %r sent an unknown event %r", entry.name, event)

    # ------------------------------------------------------------- exits
    def on_exit(self, entry: AgentEntry) -> None:
        """``entry``'s thread or process has ended: report it and free its slot."""
        with self.lock:
            instance = entry.agent
            if instance is None or entry.exit_seen or entry.state not in ACTIVE_STATES:
                return
            stream = entry.output
            if (
                entry.flavour == "process"
                and stream is not None
                and not stream.done
                and entry.output_deadline is None
            ):
                # Its last output lines may still be in the pipes: wait for their
                # end (the reader thread wakes us; check_deadlines goes on) rather than
                # block this thread. What is left of its group is killed now.
                instance.kill_leftovers()  # type: ignore[attr-defined]
                entry.output_deadline = self.clock() + OUTPUT_WAIT
                entry.start_deadline = entry.ready_deadline = None
                entry.beat_deadline = entry.stop_deadline = entry.kill_at = None
                self.watch_version += 1  # stop watching its sentinel meanwhile
                return
            entry.output_deadline = None
            # Stop watching first: whatever fails below must not make the router spin.
            entry.exit_seen = True
            self.watch_version += 1
            if entry.flavour == "process":
                # Right away: while a member of its group lives, the group id cannot be
                # reused (with forkserver the agent itself is already reaped here).
                instance.kill_leftovers()  # type: ignore[attr-defined]
            instance.join(1.0)
            code = getattr(instance, "exitcode", None)
            lost = bool(getattr(instance, "exit_status_lost", False))
            if lost:
                # The forkserver died first and took the exit status with it: an
                # agent that closed exits as it reported; one that did not is lost.
                code = expected_exit_code(entry.termination_status)
                lost = not entry.close_seen
            entry.exit_code = code
            entry.ended_mono = self.clock()
            signame = signal_name(code)
            entry.last_signal = signame
            self.release_errors(entry)
            if entry.failure is not None:
                # Stopped for a reason already reported (watchdog, ready or start
                # timeout): the signal that ended it is ours, not a second error.
                logger.info(
                    "agent %r ended (%s) after %s",
                    entry.name,
                    signame or f"exit code {code}",
                    entry.failure,
                    extra={"agent": entry.name},
                )
            elif lost:
                self.record_error(
                    entry,
                    "lost: it ended without closing after the forkserver that started "
                    "it died, so its exit status is unknown",
                    reason="process_lost",
                    exit_code=None,
                    signal=None,
                )
            elif not entry.close_seen:
                if signame:
                    text = f"killed by {signame}"
                else:
                    text = f"exited with code {code} without closing"
                self.record_error(
                    entry,
                    text,
                    reason="killed" if signame else "exited",
                    exit_code=code,
                    signal=signame,
                )
            # A command closes after a signal only when that was its stop_signal, sent
            # by a stop: it ended as asked.
            elif signame and not isinstance(instance, CommandAgent):
                self.record_error(
                    entry,
                    f"terminated by {signame}",
                    reason="killed",
                    exit_code=code,
                    signal=signame,
                )
            target = S.TERMINATED if entry.reached_running else S.FAILED
            status = entry.termination_status
            failed = self.supervisor.failed_end(entry, code)
            tail = (
                {}
                if entry.output is None
                else {"output_tail": entry.output.tail.text()}
            )
            if entry.flavour == "process":
                tail.setdefault("output_tail", "")
            self.change_state(
                entry,
                target,
                exit_code=code,
                signal=signame,
                termination_status=status.value if status else None,
                **tail,
            )
            self._close_reader(entry)
            if entry.restart_pending:
                entry.restart_pending = False
                if self.pool.accepting:
                    self.request_start(entry.name)
            else:
                why = describe_end(entry, code)
                self.supervisor.apply_restart_policy(entry, why, failed)
            self.pump()
            self.stopper.release_pending_stops()

    def report_exit(self, entry: AgentEntry) -> None:
        """``entry``'s sentinel fired, before its link is drained: a command agent,
        which speaks for its program from this side, sends the end a Python agent
        sends itself (ERROR for a failed exit code, CLOSE) now, so :meth:`on_exit`
        finds it as it finds a Python agent's."""
        instance = entry.agent
        if isinstance(instance, CommandAgent):
            instance.report_exit()

    def _close_reader(self, entry: AgentEntry) -> None:
        if entry.reader is not None:
            entry.reader.close()
            entry.reader = None
        entry.link = None
        entry.start_deadline = entry.ready_deadline = entry.beat_deadline = None
        entry.stop_deadline = entry.kill_at = None
        self.watch_version += 1

    def watched(self) -> dict[Connection | int, tuple[AgentEntry, str]]:
        """What the router waits on: ``{handle: (entry, "reader"|"sentinel")}``."""
        with self.lock:
            found: dict[Connection | int, tuple[AgentEntry, str]] = {}
            for entry in self.registry:
                if (
                    entry.state not in ACTIVE_STATES
                    or entry.agent is None
                    or entry.exit_seen
                ):
                    continue
                if entry.reader is not None and not entry.reader_eof:
                    found[entry.reader] = (entry, "reader")
                sentinel = getattr(entry.agent, "sentinel", None)
                if sentinel is not None and entry.output_deadline is None:
                    found[sentinel] = (entry, "sentinel")
            return found

    def check_deadlines(self) -> float | None:
        """Finish the exits that waited for their output pipes, send the errors held
        too long, then act on the supervisor's and the stopper's deadlines; return the
        next deadline (or ``None``)."""
        with self.lock:
            now = self.clock()
            upcoming: list[float] = []
            for entry in self.registry:
                deadline = entry.output_deadline
                if deadline is not None:
                    stream = entry.output
                    if stream is None or stream.done or now >= deadline:
                        self.on_exit(entry)
                    else:
                        upcoming.append(deadline)
                if (
                    isinstance(entry.agent, CommandAgent)
                    and entry.state in ACTIVE_STATES
                    and not entry.exit_seen
                    and entry.started_mono is not None
                ):
                    timer = entry.agent.check_timers(now, entry.started_mono)
                    if timer is not None:
                        upcoming.append(timer)
                hold = entry.error_hold_until
                if hold is not None and entry.held_errors:
                    if now >= hold:
                        self.release_errors(entry)
                    else:
                        upcoming.append(hold)
            for later in (
                self.supervisor.check_deadlines(now),
                self.stopper.check_deadlines(now),
                self.scheduler.check_deadlines(now),
            ):
                if later is not None:
                    upcoming.append(later)
            return min(upcoming) if upcoming else None

    def output_tail(self, name: str) -> str | None:
        """The last lines the process agent ``name`` wrote to stdout and stderr in its
        latest run (``None`` for a thread agent, or before its first start)."""
        with self.lock:
            stream = self.registry.require(name).output
        return stream.tail.text() if stream is not None else None

    def close_io(self, timeout: float = 2.0) -> bool:
        """Stop the threads that carry agents' logs and output; return whether all
        ended."""
        relayed = self.log_relay.close(timeout)
        guarded = self.command_guard.close(timeout)
        # A local Ray cluster takes about 1.5 s to shut down: its own budget.
        try:
            rayed = self.ray.close(max(timeout, 5.0))
        except Exception:
            logger.exception("the Ray backend did not close cleanly")
            rayed = False
        return self.output.close(timeout) and relayed and guarded and rayed

    # ------------------------------------------------------------- queries
    def is_idle(self) -> bool:
        """Whether no agent is queued, starting, running or stopping."""
        with self.lock:
            return not any(e.state in LIVE_STATES for e in self.registry)


def _launch_error(entry: AgentEntry, exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if entry.flavour == "process" and (
        "pickle" in text.lower() or "attribute lookup" in text
    ):
        text += (
            " (a process agent's class, config and arguments must be picklable: define "
            "the class at module level, in an importable module)"
        )
    return f"could not start: {text}"
