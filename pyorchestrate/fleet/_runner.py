"""Run a fleet file under one orchestrator, and reload it (SIGHUP, ``reload``).

A reload works like ``supervisorctl update``: the file is read and validated again;
an invalid file changes nothing (its errors are logged and returned). Otherwise the
agents added to the file start, those taken out stop, those whose table changed stop
and start again with the new definition, and the others are not touched (a job that
is running keeps running, with its pid).

Reloads run one at a time on the runner's thread ``pyorchestrate-fleet-reload``: the
SIGHUP handler only queues a request, and the ``reload`` control command waits for
the plan (validation, the lists, the stop requests sent), not for the stops to end.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from ..core.agent.external import ExternalJob
from ..core.errors import CommandFailed, DependencyError, LifecycleError
from ..core.orchestrator.orchestrator import Orchestrator
from ..core.orchestrator.states import LIVE_STATES, AgentState
from ._load import AgentDefinition, Fleet, FleetError, load_fleet
from ._notify import Detachable, attach_notify

__all__ = ["FleetRunner", "ReloadPlan"]

logger = logging.getLogger("pyorchestrate.fleet")

_POLL = 0.02
"""Seconds between two looks at agents a reload waits for (stopping)."""


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """What one reload changes (agent names in file order)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def touched(self) -> tuple[str, ...]:
        """The agents the reload starts, stops or restarts."""
        return (*self.added, *self.removed, *self.changed)

    def describe(self) -> str:
        """``added a; removed b; changed c; 3 unchanged`` (what the log says)."""
        parts = [
            f"{what} {', '.join(names)}"
            for what, names in (
                ("added", self.added),
                ("removed", self.removed),
                ("changed", self.changed),
            )
            if names
        ]
        parts.append(f"{len(self.unchanged)} unchanged")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The ``reload`` command's reply data."""
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": list(self.changed),
            "unchanged": list(self.unchanged),
            "warnings": list(self.warnings),
            "message": "reloaded: " + self.describe(),
        }


@dataclass(slots=True)
class _Request:
    planned: Future[ReloadPlan] = field(default_factory=Future)
    applied: Future[ReloadPlan] = field(default_factory=Future)


class FleetRunner:
    """One orchestrator running the agents of one fleet file.

    Args:
        fleet: the validated file (:func:`~pyorchestrate.fleet.load_fleet`).
        once: run every agent once, now (scheduled ones too: their schedules are
            not applied), and end when all are done (STOP_ON_EMPTY).
        environ: the environment ``${VAR}`` reads at each reload (default
            ``os.environ``).
        clock: the orchestrator's monotonic clock.
    """

    def __init__(
        self,
        fleet: Fleet,
        *,
        once: bool = False,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path: Path = fleet.path
        self._once = once
        self._environ = environ
        config = fleet.config.replace(run_mode=fleet.run_mode(once=once))
        self.orchestrator = Orchestrator(fleet.name, config, clock=clock)
        self.orchestrator.reloader = self._reload_command
        self._fleet = fleet
        self._attachment: Detachable | None = None
        self._requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def fleet(self) -> Fleet:
        """The file as last loaded (the running definitions)."""
        return self._fleet

    # ------------------------------------------------------------ running
    def start(self) -> None:
        """Register every agent, attach the ``[notify]`` alerts, start.

        Raises:
            LifecycleError, DependencyError: the orchestrator refused to start (e.g.
                its socket is taken); nothing runs.
            LookupError, ValueError: the ``[notify]`` alerts could not be attached.
        """
        for definition in self._fleet.agents.values():
            self._register(definition)
        if self._fleet.notify is not None:
            self._attachment = attach_notify(self.orchestrator, self._fleet.notify)
        for where, reason in self._fleet.warnings:
            logger.warning("%s: %s", where, self._fleet.redact(reason))
        self.orchestrator.start()
        self._thread = threading.Thread(
            target=self._serve, name="pyorchestrate-fleet-reload"
        )
        self._thread.start()

    def run(self) -> int:
        """:meth:`start`, wait until the orchestrator is done (SIGINT/SIGTERM, the
        ``shutdown`` command, or every agent done with ``once``), close; return the
        exit code. In the main thread, SIGHUP reloads the file."""
        restore = self._handle_sighup()
        try:
            self.start()
            self.orchestrator.join()
        finally:
            self.close()
            restore()
        return self.orchestrator.exit_code

    def close(self, timeout: float = 10.0) -> None:
        """Shut the orchestrator down, end the reload thread, detach the alerts
        (after the last events were handed to them). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._requests.put(None)
        self.orchestrator.shutdown()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.error(
                    "the fleet reload thread did not stop within %g s", timeout
                )
        if self._attachment is not None:
            self._attachment.detach(timeout)
            self._attachment = None

    # ------------------------------------------------------------ reloading
    def request_reload(self) -> Future[ReloadPlan]:
        """Queue a reload (safe in a signal handler); the future is its plan (or the
        :class:`~pyorchestrate.fleet.FleetError` of an invalid file)."""
        request = _Request()
        self._requests.put(request)
        return request.planned

    def reload(self, timeout: float | None = None) -> ReloadPlan:
        """Reload the file and wait until the plan is applied; return it.

        Raises:
            FleetError: the file is invalid (nothing changed).
            TimeoutError: not applied within ``timeout``.
            LifecycleError: not started, or closed.
        """
        if self._thread is None or self._closed:
            raise LifecycleError("the fleet is not running: start() it first")
        request = _Request()
        self._requests.put(request)
        return request.applied.result(timeout)

    def _reload_command(self) -> dict[str, Any]:
        """The ``reload`` control command: the plan, once its stops are sent."""
        wait = max(self.orchestrator.config.command_timeout - 0.5, 0.1)
        try:
            plan = self.request_reload().result(wait)
        except FleetError as exc:
            raise CommandFailed(
                str(exc),
                data={"errors": [{"path": p, "reason": r} for p, r in exc.errors]},
            ) from None
        except TimeoutError:
            raise CommandFailed(
                "the reload is still being prepared; see the orchestrator's log"
            ) from None
        return plan.to_dict()

    def _handle_sighup(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, frame: FrameType | None) -> None:
            self.request_reload()

        previous = signal.signal(signal.SIGHUP, handler)

        def restore() -> None:
            signal.signal(signal.SIGHUP, previous)

        return restore

    def _serve(self) -> None:
        while True:
            request = self._requests.get()
            if request is None or self._closing.is_set():
                if request is not None:
                    _cancel(request, "the orchestrator is shutting down")
                break
            try:
                self._reload(request)
            except BaseException as exc:  # every failure is logged and answered
                logger.exception("reload of %s failed", self.path)
                _fail(request, exc)
        while True:  # answer what is left, so nobody waits for ever
            try:
                left = self._requests.get_nowait()
            except queue.Empty:
                return
            if left is not None:
                _cancel(left, "the orchestrator is shutting down")

    def _reload(self, request: _Request) -> None:
        logger.info("reloading %s", self.path)
        try:
            new = load_fleet(self.path, environ=self._environ)
        except FleetError as exc:
            logger.error("reload refused, nothing changed: %s", exc)
            _fail(request, exc)
            return
        old = self._fleet
        plan = _plan(old, new)
        orchestrator = self.orchestrator
        for name in (*plan.removed, *plan.changed):
            if _is_live(orchestrator, name):
                orchestrator.stop_agent(name)
        logger.info("reload: %s", plan.describe())
        for warning in plan.warnings:
            logger.warning("reload: %s", warning)
        request.planned.set_result(plan)

        kept: list[str] = []
        for name in (*plan.removed, *plan.changed):
            if not self._wait_stopped(name):
                logger.error(
                    "reload: agent %r did not stop; it keeps its old definition", name
                )
                kept.append(name)
                continue
            orchestrator.unregister_agent(name)
        definitions = dict(new.agents)
        for name in kept:  # still running the old definition: the file says old
            if name in old.agents:
                definitions[name] = old.agents[name]
            else:
                definitions.pop(name, None)
        self._fleet = _replace_agents(new, definitions)
        for name in (*plan.changed, *plan.added):
            if name not in kept:
                self._register(new.agents[name])
        if new.notify_table != old.notify_table:
            self._reattach(new)
        for name in new.agents:
            if name in kept or name not in (*plan.changed, *plan.added):
                continue
            definition = new.agents[name]
            if definition.schedule is not None and not self._once:
                continue  # its schedule starts it
            try:
                orchestrator.start_agent(name)
            except (LifecycleError, DependencyError) as exc:
                logger.error("reload: agent %r not started: %s", name, exc)
        request.applied.set_result(plan)

    def _register(self, definition: AgentDefinition) -> None:
        schedule = definition.schedule
        if self._once and not issubclass(definition.agent_class, ExternalJob):
            schedule = None  # --once: every agent runs once, now
        self.orchestrator.register_agent(
            definition.agent_class,
            definition.name,
            custom_config=definition.config,
            schedule=schedule,
            backend=definition.table.backend,
            ray_options=definition.table.ray_options or None,
        )
        if definition.depends_on:
            self.orchestrator.add_dependency(definition.name, definition.depends_on)

    def _reattach(self, new: Fleet) -> None:
        if self._attachment is not None:
            self._attachment.detach()
            self._attachment = None
        if new.notify is not None:
            self._attachment = attach_notify(self.orchestrator, new.notify)
        logger.info("reload: alerts re-attached from [notify]")

    def _wait_stopped(self, name: str) -> bool:
        """Wait until ``name`` is no longer live (its stop deadline, the SIGKILL after
        it, and some slack); ``False`` if it still is."""
        orchestrator = self.orchestrator
        entry = orchestrator.get_agent(name)
        config = orchestrator.config
        budget = (
            (entry.supervision.stop_timeout or config.agent_stop_timeout)
            + config.termination_grace
            + 5.0
        )
        deadline = time.monotonic() + budget
        while _is_live(orchestrator, name):
            if time.monotonic() >= deadline or self._closing.wait(_POLL):
                return not _is_live(orchestrator, name)
        return True


def _is_live(orchestrator: Orchestrator, name: str) -> bool:
    entry = orchestrator.get_agent(name)
    return AgentState(entry.state) in LIVE_STATES or entry.restart_pending


def _plan(old: Fleet, new: Fleet) -> ReloadPlan:
    added = tuple(n for n in new.agents if n not in old.agents)
    removed = tuple(n for n in old.agents if n not in new.agents)
    changed = tuple(
        n
        for n in new.agents
        if n in old.agents and not new.agents[n].same_as(old.agents[n])
    )
    unchanged = tuple(n for n in new.agents if n in old.agents and n not in changed)
    warnings: list[str] = []
    if dict(new.orchestrator_table) != dict(old.orchestrator_table):
        warnings.append(
            "[orchestrator] changed: restart the orchestrator to apply it (a reload "
            "only adds, removes and changes agents)"
        )
    return ReloadPlan(added, removed, changed, unchanged, tuple(warnings))


def _replace_agents(fleet: Fleet, agents: Mapping[str, AgentDefinition]) -> Fleet:
    from dataclasses import replace

    return replace(fleet, agents=dict(agents))


def _fail(request: _Request, exc: BaseException) -> None:
    for future in (request.planned, request.applied):
        if not future.done():
            future.set_exception(exc)


def _cancel(request: _Request, why: str) -> None:
    _fail(request, LifecycleError(why))
