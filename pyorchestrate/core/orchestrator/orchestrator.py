"""The ``Orchestrator`` facade: register agents and callbacks, start, join, shut down.

It holds no logic of its own beyond wiring and run-mode waiting: the registry, the
dependency graph, the worker pool, the lifecycle manager (sole state writer), the
router thread, the event bus with its callback threads and the history each do one job.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import inspect
import logging
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from ..agent.base import AgentConfig, BaseAgent, build_agent_config, check_agent_kwargs
from ..agent.flags import ControlEvents, StateEvents
from ..agent.plugins import AgentPlugin
from ..agent.ray_backend import RayAgent, RayOptions, choose_backend
from ..control.execute import Caller, check_command, execute
from ..control.permissions import COMMANDS
from ..control.process_stats import ProcessStats
from ..control.reports import (
    build_agent_status,
    build_agent_summary,
    build_report,
)
from ..control.server import CommandServer
from ..control.target import (
    AgentDetails,
    AgentSnapshot,
    OrchestratorSnapshot,
    PoolCounts,
)
from ..errors import CommandFailed, LifecycleError
from ..schedule import Schedule
from ..supervision_config import SupervisionConfig
from ..utilities.event import EventCallback, EventRecord, OrchestratorEvent, Severity
from ..utilities.messaging import MessageChannel
from ..utilities.output import ReopenResult
from ..utilities.outputfiles import Stream, log_files
from .callbacks import CallbackExecutor, EventBus
from .config import OrchestratorConfig, RunMode, default_socket_path
from .dependencies import DependencyGraph
from .history import EventHistory
from .lifecycle import LifecycleManager
from .outcome import AgentFailure, ExitCode, RunOutcome
from .registry import (
    AgentEntry,
    AgentRegistry,
    AgentSpec,
    check_agent_name,
    check_agent_name_type,
)
from .router import MessageRouter
from .scheduler import check_schedule, default_state_file
from .states import ACTIVE_STATES, LIVE_STATES, AgentState
from .stopping import OPERATOR_REASONS
from .workers import StartStatus, WorkerPool, WorkerStartResult

__all__ = ["Orchestrator"]

_live: weakref.WeakSet[Orchestrator] = weakref.WeakSet()


@atexit.register
def _shutdown_forgotten() -> None:
    """At interpreter exit, shut down orchestrators nobody shut down (no orphans)."""
    for orchestrator in list(_live):
        orchestrator.shutdown(timeout=min(orchestrator.config.agent_stop_timeout, 5.0))


class Orchestrator:
    """Runs a fleet of agents and turns what happens to them into events.

    Args:
        name: the orchestrator's name (logs, events, default socket path).
        config: an :class:`OrchestratorConfig` (``Orchestrator.Config(...)``), a mapping,
            or ``None`` for the defaults.
        clock: the monotonic clock every deadline is measured on (backoff, watchdog,
            start/ready/stop timeouts); inject ``pyorchestrate.testing.FakeClock`` to
            test supervision policies without waiting.
        wall_clock: the wall clock scheduled runs are due on (seconds since the
            epoch; ``FakeClock.wall`` in tests).
        schedule_state: the file scheduled agents' last runs are kept in (default
            ``$XDG_STATE_HOME/pyorchestrate/schedules/<name>.json``; ``None``: none,
            so runs missed while down are not known).

    Example::

        orchestrator = Orchestrator("Orchestrator")
        orchestrator.register_agent(Publisher, "Publisher")
        orchestrator.start()
        orchestrator.join()
        sys.exit(orchestrator.exit_code)  # 0 ok, 1 an agent failed, 130/143 signal
    """

    Config = OrchestratorConfig

    def __init__(
        self,
        name: str | OrchestratorConfig = "Orchestrator",
        config: OrchestratorConfig | Mapping[str, Any] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        schedule_state: Path | Literal["auto"] | None = "auto",
    ) -> None:
        if isinstance(name, OrchestratorConfig) and config is None:
            # The original's stale examples pass the config first: accept it.
            config = name
            name = "Orchestrator"
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string, not {name!r}")
        if config is None:
            config = OrchestratorConfig()
        elif isinstance(config, Mapping):
            config = OrchestratorConfig(**dict(config))
        elif not isinstance(config, OrchestratorConfig):
            raise TypeError(
                f"config must be an Orchestrator.Config, not {type(config).__name__}"
            )
        self.name = name
        self.config = config
        self.logger = logging.getLogger(f"pyorchestrate.orchestrator.{name}")
        self._clock = clock
        self.start_time = time.time()
        self.history = EventHistory(
            config.history_max_events, config.history_payload_bytes
        )
        self.event_bus = EventBus(
            self.history,
            CallbackExecutor(
                config.callback_workers,
                config.callback_queue_size,
                name=f"pyorchestrate-{name}",
            ),
            orchestrator=name,
        )
        self.registry = AgentRegistry()
        self.dependency_graph = DependencyGraph()
        self.worker_pool = WorkerPool(config.max_workers)
        self.lifecycle = LifecycleManager(
            self.registry,
            self.dependency_graph,
            self.worker_pool,
            self.event_bus,
            start_timeout=config.agent_start_timeout,
            termination_grace=config.termination_grace,
            start_method=config.start_method,
            stop_timeout=config.agent_stop_timeout,
            clock=clock,
            wall_clock=wall_clock,
            schedule_state=(
                default_state_file(name)
                if schedule_state == "auto"
                else None
                if schedule_state is None
                else Path(schedule_state)
            ),
            name=name,
            output=config.output_settings(name),
            ray_address=config.ray_address,
            ray_namespace=config.ray_namespace,
            ray_num_cpus=config.ray_num_cpus,
        )
        self.router = MessageRouter(
            self.lifecycle,
            check_interval=config.check_interval,
            name=name,
            on_tick=self._on_router_tick,
        )
        self.lifecycle.wake = self.router.wake
        # A clock that can jump (pyorchestrate.testing.FakeClock) wakes the router so
        # what became due happens at once.
        on_advance = getattr(clock, "on_advance", None)
        if callable(on_advance):
            on_advance(self.router.wake)
        self._started = False
        self._shutdown_requested = False
        self._shutdown_done = False
        self._shutdown_lock = threading.Lock()
        self._signal_pending: int | None = None
        self._interrupted_by: int | None = None
        self._survivors: tuple[str, ...] = ()
        self._escalate = False
        self.allowed_commands: frozenset[str] = (
            config.allowed_commands if config.allowed_commands is not None else COMMANDS
        )
        self.process_stats = ProcessStats()
        self.command_server: CommandServer | None = None
        self.reloader: Callable[[], dict[str, Any]] | None = None
        """What the ``reload`` control command calls (``pyorchestrate run FILE`` sets
        it to re-read its file); ``None``: the command fails."""
        self._web: list[Any] = []  # serve_web's dashboards, stopped at shutdown
        self.history.record(
            "INIT",
            category="system",
            data={"orchestrator": name, "run_mode": config.run_mode.value},
        )

    # ---------------------------------------------------------------- setup
    @property
    def command_socket_path(self) -> str:
        """Where the command interface listens (the configured or the default path)."""
        return self.config.command_socket_path or default_socket_path(self.name)

    def register_agent(
        self,
        agent_class: type[BaseAgent],
        name: str | None = None,
        custom_config: AgentConfig | Mapping[str, Any] | None = None,
        custom_plugin: AgentPlugin | None = None,
        control_events: ControlEvents | None = None,
        state_events: StateEvents | None = None,
        msg_channel: MessageChannel | None = None,
        *,
        supervision: SupervisionConfig | Mapping[str, Any] | None = None,
        schedule: Schedule | Mapping[str, Any] | None = None,
        backend: Literal["local", "ray"] | None = None,
        ray_options: RayOptions | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> AgentEntry:
        """Register an agent to run; it starts with :meth:`start` (or :meth:`start_agent`).

        ``supervision`` (a :class:`SupervisionConfig` or a mapping) sets its restart
        policy, backoff, watchdog and deadlines; it replaces the ``supervision`` of
        ``custom_config``. Keyword arguments named in the class's ``config_keywords``
        set those fields of its config (``command=`` of a ``CommandAgent``); other
        keyword arguments become attributes of the agent.

        ``schedule`` (a :class:`~pyorchestrate.Schedule` or a mapping) runs it on a
        cron or ``every`` schedule instead of at :meth:`start`; only one-shot agents,
        commands and external jobs (:class:`~pyorchestrate.ExternalJob`, which needs
        one) can be scheduled. See :mod:`pyorchestrate.core.orchestrator.scheduler`.

        ``backend="ray"`` (default: the config's ``backend``) runs the class, unchanged,
        as a Ray actor, placed and sized by ``ray_options`` (a
        :class:`~pyorchestrate.core.agent.ray_backend.RayOptions` or a mapping:
        ``num_cpus``, ``num_gpus``, ``memory``, ``resources``, ``runtime_env``); see
        :mod:`pyorchestrate.core.agent.ray_backend`.

        ``name`` defaults to the class name (only when ``None``); it must be a
        non-empty string of printable characters without whitespace at either end.

        Raises:
            TypeError: ``agent_class`` is not a thread or process agent class, is
                abstract, a keyword would shadow an attribute of the agent, or
                ``name`` is not a string.
            ConfigError: ``custom_config`` is invalid (names the field).
            RegistrationError: the name is taken (a ``ValueError``; the first stays),
                empty, padded with whitespace or holds a control character; a
                schedule on an agent that cannot be scheduled (a looping agent), or
                an external job without one.
        """
        _check_agent_class(agent_class)
        agent_class = choose_backend(
            agent_class,
            backend,
            default=self.config.backend,
            ray_options=ray_options,
            kwargs=kwargs,
            control_events=control_events,
        )
        name = check_agent_name(agent_class.__name__ if name is None else name)
        settings = {
            k: kwargs.pop(k) for k in list(kwargs) if k in agent_class.config_keywords
        }
        config = build_agent_config(agent_class, _merged(custom_config, settings))
        if supervision is not None:
            if not isinstance(supervision, SupervisionConfig):
                supervision = SupervisionConfig(**dict(supervision))
            config = config.replace(supervision=supervision)
        flavour = agent_class.flavour
        assert flavour is not None
        for events in (control_events, state_events):
            if events is not None:
                events.check_flavour(flavour)
        check_agent_kwargs(agent_class, kwargs)
        schedule = check_schedule(agent_class, name, schedule)
        spec = AgentSpec(
            agent_class=agent_class,
            name=name,
            config=config,
            plugin=custom_plugin,
            control_events=control_events,
            state_events=state_events,
            msg_channel=msg_channel,
            kwargs=dict(kwargs),
            schedule=schedule,
        )
        with self.lifecycle.lock:
            entry = self.registry.add(spec)
            self.lifecycle.emit(OrchestratorEvent.AGENT_REGISTERED, entry)
        return entry

    def register_spec(self, spec: AgentSpec) -> AgentEntry:
        """Register an agent from an :class:`AgentSpec`."""
        return self.register_agent(
            spec.agent_class,
            spec.name,
            custom_config=spec.config,
            custom_plugin=spec.plugin,
            control_events=spec.control_events,
            state_events=spec.state_events,
            msg_channel=spec.msg_channel,
            schedule=spec.schedule,
            **dict(spec.kwargs),
        )

    def unregister_agent(self, name: str) -> None:
        """Forget agent ``name`` and the dependencies it declared.

        It must not be live: stop it first (:meth:`stop_agent`) and wait until it
        ended. Reloading a fleet file (:mod:`pyorchestrate.fleet`) uses this for the
        agents taken out of the file.

        Raises:
            TypeError: ``name`` is not a string. RegistrationError: unknown agent.
            LifecycleError: it is queued, starting, running, stopping or waiting to
                restart.
        """
        with self.lifecycle.lock:
            entry = self.registry.require(name)
            if entry.state in LIVE_STATES or entry.restart_pending:
                raise LifecycleError(
                    f"agent {name!r} is {entry.state.value}: stop it before "
                    "unregistering it"
                )
            self.registry.remove(name)
            self.dependency_graph.remove(name)
            if entry.reader is not None:
                entry.reader.close()
                entry.reader = None
        self.history.record("UNREGISTERED", agent=name, category="system")
        self.logger.info("agent %r unregistered", name)

    def reload(self) -> dict[str, Any]:
        """Re-read what this orchestrator was built from (the ``reload`` command).

        Raises:
            CommandFailed: nothing to reload (no :attr:`reloader`), or what the
                reloader raises (an invalid file: nothing changed).
        """
        reloader = self.reloader
        if reloader is None:
            raise CommandFailed(
                f"orchestrator {self.name!r} was not started from a file "
                "(pyorchestrate run FILE): nothing to reload"
            )
        return reloader()

    def register_event(self, event: OrchestratorEvent, callback: EventCallback) -> None:
        """Call ``callback`` whenever ``event`` happens, off the router thread.

        The callback gets only the keywords its signature names (``event_date``,
        ``event_time``, ``agent_name``, ``error_message``, …) or all with ``**kwargs``.

        Raises:
            TypeError: ``event`` is not an event, or ``callback`` requires an argument
                that events do not provide.
        """
        self.event_bus.register(event, callback)

    def unregister_event(
        self, event: OrchestratorEvent, callback: EventCallback
    ) -> bool:
        """Remove a callback; return whether it was registered."""
        return self.event_bus.unregister(event, callback)

    def add_dependency(self, name: str, dependencies: str | Iterable[str]) -> None:
        """``name`` starts only after each of ``dependencies`` has started.

        Unknown names and cycles are reported by :meth:`start` (or
        :meth:`validate_dependencies`), before any agent starts.

        Raises:
            TypeError: a name is not a string (nothing is recorded).
        """
        check_agent_name_type(name)
        if isinstance(dependencies, str):
            dependencies = [dependencies]
        elif isinstance(dependencies, Iterable):
            dependencies = list(dependencies)
        else:
            raise TypeError(
                "dependencies: must be an agent name or an iterable of names, not "
                f"{type(dependencies).__name__} ({dependencies!r})"
            )
        for dependency in dependencies:
            check_agent_name_type(dependency, "dependencies")
        with self.lifecycle.lock:
            self.dependency_graph.add_dependency(name, dependencies)

    def validate_dependencies(self) -> None:
        """Raise ``DependencyError`` naming unknown agents or a cycle."""
        self.dependency_graph.validate(self.registry.names())

    # ---------------------------------------------------------------- running
    def start(self) -> list[WorkerStartResult]:
        """Start every registered agent, dependencies first, up to ``max_workers``.

        Returns one result per agent (``started`` or ``queued``, or ``failed_clean``;
        ``scheduled`` for an agent with a schedule, which starts when due).

        Raises:
            LifecycleError: called twice, or after shutdown.
            DependencyError: an unknown dependency or a cycle (nothing is started).
        """
        with self.lifecycle.lock:
            if self._shutdown_requested:
                raise LifecycleError(f"orchestrator {self.name!r} is shut down")
            if self._started:
                raise LifecycleError(f"orchestrator {self.name!r} is already started")
            self.validate_dependencies()
            order = self.dependency_graph.topological_sort(self.registry.names())
            self._ensure_running()  # a taken socket raises here, before any agent starts
            self._started = True
        if any(issubclass(e.agent_class, RayAgent) for e in self.registry):
            # A local cluster takes seconds to start: here, not in an agent's start
            # deadline. A failure is each Ray agent's AGENT_ERROR (its watcher tries).
            try:
                self.lifecycle.ray.connect()
            except Exception:
                self.logger.exception("could not connect to Ray")
        # One start at a time under the lock, not all of them: between two launches
        # the router reads what the first agents already report (their START, READY,
        # or death), instead of waiting for the hundredth launch.
        results: list[WorkerStartResult] = []
        for name in order:
            entry = self.registry.require(name)
            if entry.spec.schedule is not None:
                results.append(self._scheduled_result(name))
                continue
            try:
                results.append(self.lifecycle.request_start(name))
            except LifecycleError as exc:  # shut down while starting
                results.append(WorkerStartResult(StartStatus.CANCELLED, str(exc)))
        return results

    def start_agent(self, name: str) -> WorkerStartResult:
        """Start (or queue) one agent, e.g. again after it terminated.

        Raises:
            TypeError: ``name`` is not a string.
            RegistrationError: unknown agent.
            LifecycleError: already active, or shutting down.
            DependencyError: its dependencies are invalid.
        """
        self.registry.require(name)  # before the router and the socket start
        with self.lifecycle.lock:
            if self._shutdown_requested:
                raise LifecycleError(
                    f"cannot accept new starts: orchestrator {self.name!r} is shutting down"
                )
            self.validate_dependencies()
            self._ensure_running()
            self._started = True
            return self.lifecycle.request_start(name)

    def restart_agent(self, name: str) -> str:
        """Stop ``name`` if it runs and start it again (generation + 1).

        Raises:
            TypeError: ``name`` is not a string. RegistrationError: unknown agent.
            LifecycleError: shutting down.
        """
        self.registry.require(name)  # before the router and the socket start
        with self.lifecycle.lock:
            self._ensure_running()
        return self.lifecycle.request_restart(name)

    def _ensure_running(self) -> None:
        """Start the router and, if enabled, the command interface (once)."""
        if self.config.enable_command_interface and self.command_server is None:
            server = CommandServer(
                self,
                self.command_socket_path,
                self.allowed_commands,
                timeout=self.config.command_timeout,
            )
            server.start()  # raises before any agent starts if the socket is taken
            self.command_server = server
        _live.add(self)
        self.lifecycle.scheduler.arm()
        self.router.start()

    def _scheduled_result(self, name: str) -> WorkerStartResult:
        due = self.lifecycle.scheduler.next_run(name)
        when = (
            ""
            if due is None
            else time.strftime("next run %Y-%m-%d %H:%M:%S %z", time.localtime(due))
        )
        return WorkerStartResult(StartStatus.SCHEDULED, when)

    def ping(self, name: str, *, failed: bool = False, message: str = "") -> str:
        """An external job (:class:`~pyorchestrate.ExternalJob`) reports a run:
        success, or a failure (AGENT_ERROR ``reason="ping_fail"``); what
        ``pyorchestrate ping NAME [--fail]`` sends. Return a reply.

        Raises:
            TypeError: ``name`` is not a string. RegistrationError: unknown agent.
            LifecycleError: ``name`` is not an external job.
        """
        check_agent_name_type(name)
        with self.lifecycle.lock:
            return self.lifecycle.scheduler.ping(name, failed=failed, message=message)

    def run_command(
        self,
        command: str,
        *args: Any,
        source: str = "api",
        actor: str | None = None,
        meta: Mapping[str, Any] | None = None,
        allowed: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """Run one control command in this process, as the command socket would
        (``run_command("restart", "etl", source="telegram", actor="@alice")``), and
        return the reply's ``data``. Blocks while it runs: call it off an event loop.

        The command must be in :attr:`allowed_commands`, and in ``allowed`` when
        given (a caller's own, narrower permissions). An action (``start``,
        ``stop``, ``restart``, ``shutdown``, ``reload``, ``reopen-logs``,
        ``record-action``) is recorded as an ``OPERATOR_ACTION`` event with
        ``source``, ``actor`` and ``meta`` (``{"chat": 42}``), failed ones too.
        ``subscribe`` and ``logs`` stream, so they are served by the socket only.

        Raises:
            ControlError: its subclass for the reply's error code (``CommandForbidden``
                403, ``AgentNotFound`` 404, ``Conflict`` 409, ``UnknownCommand`` 400,
                ``CommandFailed`` 500), with the message the socket would send.
        """
        permitted = self.allowed_commands
        if allowed is not None:
            permitted = permitted & frozenset(allowed)
        name = command.strip().lower() if isinstance(command, str) else ""
        found = check_command(name, list(args), permitted)
        return execute(self, found, list(args), Caller.of(source, actor, meta))

    def record_action(
        self,
        action: str,
        *,
        agent: str | None = None,
        source: str,
        actor: str | None = None,
        ok: bool = True,
        result: str = "ok",
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Record an ``OPERATOR_ACTION`` event: ``actor`` (from ``source``) did
        ``action`` to ``agent`` with ``result``. :meth:`run_command` and the socket
        record their actions themselves; this is for actions done elsewhere (a mute
        set from a chat, an alert acknowledged). An ``agent`` that is not registered
        (a glob: ``worker-*``) is kept as ``target``."""
        known = agent is not None and agent in self.registry
        context: dict[str, object] = {
            **(meta or {}),
            "action": action,
            "source": source,
            "actor": actor,
            "ok": ok,
            "result": result,
        }
        if agent is not None and not known:
            context["target"] = agent
        self.event_bus.emit(
            OrchestratorEvent.OPERATOR_ACTION,
            agent_name=agent if known else None,
            context=context,
        )

    def serve_web(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        token: str | None = None,
        permissions: Literal["read_only", "operator"] = "read_only",
        **settings: Any,
    ) -> Any:
        """Serve the web dashboard of this orchestrator from this process (the
        ``[web]`` extra), on a thread the orchestrator stops and joins at
        :meth:`shutdown`. It goes through the command socket, like ``pyorchestrate
        web``; ``settings`` are the other ``WebConfig`` fields and ``alerts`` (see
        :class:`pyorchestrate.web.EmbeddedWeb`). Returns the running
        ``EmbeddedWeb`` (its ``url``).

        Raises:
            ImportError: the ``[web]`` extra is not installed (the message says so).
            LifecycleError: after :meth:`shutdown`.
            ConfigError: a bad setting, or the command interface is off.
            OSError: the address cannot be bound.
        """
        if self._shutdown_done:
            raise LifecycleError(f"orchestrator {self.name!r} is shut down")
        # By name, when called: the core never imports the web package (an
        # optional extra, a layer above the core).
        try:
            embed = importlib.import_module("pyorchestrate.web._embed")
        except ImportError as exc:
            missing = (exc.name or "").partition(".")[0]
            if missing in ("", "pyorchestrate"):
                raise  # a bug, not a missing extra
            raise ImportError(
                f"serve_web needs the [web] extra ({missing} is missing): "
                "pip install 'pyorchestrate[web]'"
            ) from exc
        web = embed.serve_web(
            self, host=host, port=port, token=token, permissions=permissions, **settings
        )
        self._web.append(web)
        return web

    def stop_agent(self, name: str) -> str:
        """Ask one agent to stop (or take it off the queue); return what happened.

        Raises:
            TypeError: ``name`` is not a string. RegistrationError: unknown agent.
        """
        return self.lifecycle.stopper.request_stop(name)

    def stop(self) -> None:
        """Ask everything to stop and return at once; :meth:`join` then finishes."""
        with self.lifecycle.lock:
            self._shutdown_requested = True
            self.lifecycle.changed.notify_all()
        self.lifecycle.stopper.stop_all()  # runs on_stop hooks: never with the lock held

    def request_shutdown(self) -> None:
        """Make :meth:`join` return and shut down (what the CLI ``shutdown`` does)."""
        self.stop()

    @property
    def is_shutting_down(self) -> bool:
        """Whether a stop or shutdown has been requested."""
        return self._shutdown_requested

    def is_finished(self) -> bool:
        """Whether :meth:`join` would return now (per the run mode)."""
        with self.lifecycle.lock:
            if self._shutdown_requested:
                return True
            if self.config.run_mode is RunMode.DAEMON:
                return False
            return self.lifecycle.is_idle()

    def join(self) -> list[str]:
        """Wait until the run mode says done, then :meth:`shutdown`; return survivors.

        STOP_ON_EMPTY: until every agent is done. DAEMON: until :meth:`stop`,
        :meth:`shutdown`, the CLI ``shutdown``, SIGTERM or SIGINT. In the main thread,
        SIGINT and SIGTERM start a graceful shutdown; a second one skips the wait.
        """
        restore = self._install_signal_handlers()
        try:
            if not self._shutdown_requested:
                with self.lifecycle.lock:
                    self._ensure_running()
            with self.lifecycle.lock:
                while not self.is_finished():
                    self.lifecycle.changed.wait(self.config.check_interval)
            return self.shutdown()
        finally:
            restore()

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        wake_fd = self.router.wake_fd

        def handler(signum: int, frame: FrameType | None) -> None:
            if self._signal_pending is not None:
                self._escalate = True
            self._signal_pending = signum
            if self._interrupted_by is None:
                self._interrupted_by = signum
            with contextlib.suppress(OSError):
                os.write(wake_fd, b"s")

        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    def _on_router_tick(self) -> None:
        signum = self._signal_pending
        if signum is not None and not self._shutdown_requested:
            self.logger.warning(
                "received %s: shutting down", signal.Signals(signum).name
            )
            # Only the flag here (the router runs no user code): join() wakes and
            # shuts down on its own thread, running the agents' on_stop hooks there.
            with self.lifecycle.lock:
                self._shutdown_requested = True
                self.lifecycle.changed.notify_all()
        elif self.config.run_mode is RunMode.STOP_ON_EMPTY:
            with self.lifecycle.lock:
                self.lifecycle.changed.notify_all()

    def shutdown(self, timeout: float | None = None) -> list[str]:
        """Stop every agent and every thread of the orchestrator; return survivors.

        Agents get ``timeout`` seconds (default ``agent_stop_timeout``) between them to
        stop cooperatively; process agents still running get SIGTERM, then SIGKILL.
        Thread agents that will not end are returned by name. Runs once; later calls
        return ``[]``.
        """
        with self._shutdown_lock:
            if self._shutdown_done:
                return []
            self._shutdown_done = True
        _live.discard(self)
        with self.lifecycle.lock:
            self._shutdown_requested = True
            self.lifecycle.changed.notify_all()
        budget = self.config.agent_stop_timeout if timeout is None else timeout
        if self.router.running:
            survivors = self.lifecycle.stopper.shutdown_agents(
                budget, escalate_now=lambda: self._escalate
            )
        else:
            self.lifecycle.stopper.stop_all()
            survivors = [e.name for e in self.lifecycle.stopper.active_entries()]
        self.history.record(
            "SHUTDOWN",
            category="system",
            severity=Severity.WARNING if survivors else Severity.INFO,
            data={
                "total_agents": len(self.registry),
                "surviving_agents": len(survivors),
                "survivors": ",".join(survivors),
            },
        )
        self._survivors = tuple(survivors)
        # The agents' last output reaches their files before the command server
        # ends the `logs --follow` streams reading them.
        if not self.lifecycle.close_io(2.0):
            self.logger.error("agents' log and output threads did not stop within 2 s")
        for web in self._web:  # its pages follow the socket: before it closes
            try:
                web.stop()
            except RuntimeError as exc:  # its thread did not end
                self.logger.error("dashboard: %s", exc)
        if self.command_server is not None and not self.command_server.stop(2.0):
            self.logger.error("command server thread did not stop within 2 s")
        if not self.router.stop(2.0):
            self.logger.error("router thread did not stop within 2 s")
        self.event_bus.close(max(budget, 2.0))
        for entry in self.registry:
            if entry.reader is not None and entry.name not in survivors:
                entry.reader.close()
                entry.reader = None
        return survivors

    # ---------------------------------------------------------------- outcome
    @property
    def exit_code(self) -> int:
        """The process exit code of the run so far: ``sys.exit(orchestrator.exit_code)``.

        0 every agent succeeded, 1 some agent failed, 2 an agent's configuration was
        invalid, 130/143 :meth:`join` was interrupted by SIGINT/SIGTERM. See
        :meth:`outcome` for what counts as failed.
        """
        return int(self.outcome().exit_code)

    def outcome(self) -> RunOutcome:
        """How the run ended (call it after :meth:`join`), from the agents' final states.

        An agent failed when it is FATAL (its restart policy gave up), FAILED (refused
        to start, died before START, or a dependency failed), or ended by an error that
        was not retried and not followed by a successful run (an AGENT_ERROR followed
        by a restart that succeeded is a success). An agent stopped by the operator or
        by the shutdown did not fail, so a DAEMON run stopped with :meth:`stop` or the
        CLI ``shutdown`` ends 0 unless an agent was FATAL, FAILED or ended in error
        before; an agent that would not stop (a survivor of :meth:`shutdown`) failed.
        A SIGINT/SIGTERM during :meth:`join` wins: 130/143.
        """
        with self.lifecycle.lock:
            failed = tuple(
                failure
                for failure in map(self._failure_of, self.registry)
                if failure is not None
            )
        signum = self._interrupted_by
        signame = signal.Signals(signum).name if signum is not None else None
        if signum == signal.SIGINT:
            code = ExitCode.SIGINT
        elif signum == signal.SIGTERM:
            code = ExitCode.SIGTERM
        elif any(failure.reason == "config" for failure in failed):
            code = ExitCode.CONFIG
        elif failed or self._survivors:
            code = ExitCode.FAILED
        else:
            code = ExitCode.OK
        return RunOutcome(code, failed, self._survivors, signame)

    def _failure_of(self, entry: AgentEntry) -> AgentFailure | None:
        state = entry.state
        if state is AgentState.FATAL:
            reason = entry.fatal_reason or self._last_error_reason(entry)
        elif state is AgentState.FAILED:
            reason = self._last_error_reason(entry) or "did not start"
        elif (
            state is AgentState.TERMINATED
            and entry.starts > 0
            and entry.stop_reason not in OPERATOR_REASONS
            and self.lifecycle.supervisor.failed_end(entry, entry.exit_code)
        ):
            reason = self._last_error_reason(entry) or _describe_exit(entry)
        else:
            return None
        return AgentFailure(
            entry.name, state.value, reason or "failed", entry.last_error
        )

    def _last_error_reason(self, entry: AgentEntry) -> str | None:
        last = self.history.last(
            1, agent=entry.name, event_name=OrchestratorEvent.AGENT_ERROR.value
        )
        return last[-1].data.get("reason") if last else None

    def __enter__(self) -> Orchestrator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # ---------------------------------------------------------------- queries
    @property
    def agents(self) -> dict[str, AgentEntry]:
        """Registered agents by name."""
        return {entry.name: entry for entry in self.registry}

    def get_agent(self, name: str) -> AgentEntry:
        """The entry of ``name``; raise ``RegistrationError`` if unknown."""
        return self.registry.require(name)

    def events(
        self,
        n: int = 100,
        *,
        agent: str | None = None,
        event_name: str | None = None,
        after_seq: int | None = None,
    ) -> list[EventRecord]:
        """The history's newest matching records, oldest first.

        Raises:
            TypeError: ``agent`` is neither ``None`` nor a string.
        """
        if agent is not None:
            check_agent_name_type(agent, "agent")
        return self.history.last(
            n, agent=agent, event_name=event_name, after_seq=after_seq
        )

    def has_agent(self, name: str) -> bool:
        """Whether an agent ``name`` is registered."""
        return name in self.registry

    def output_tail(self, name: str) -> str | None:
        """The last lines process agent ``name`` wrote to stdout and stderr in its
        latest run (``None`` for a thread agent, or before its first start).

        Raises:
            RegistrationError: unknown agent.
        """
        return self.lifecycle.output_tail(name)

    @property
    def logs_dir(self) -> Path | None:
        """The directory of the process agents' output files (``None``: no files,
        their lines go to this process's stdout and stderr)."""
        return self.lifecycle.output.logs_dir

    def log_files(self, name: str, stream: Stream) -> list[Path]:
        """The output files of agent ``name``'s ``stream`` (``"stdout"`` or
        ``"stderr"``) that exist, oldest first, the current one last (empty with
        :attr:`logs_dir` off or before anything was written). Their format:
        :mod:`pyorchestrate.core.utilities.outputfiles`.

        Raises:
            RegistrationError: unknown agent.
            ValueError: ``stream`` is neither ``"stdout"`` nor ``"stderr"``.
        """
        self.registry.require(name)
        logs_dir = self.logs_dir
        return [] if logs_dir is None else log_files(logs_dir, name, stream)

    def reopen_logs(self) -> ReopenResult:
        """Close and open again every output file in use, at its path: after
        logrotate (or anyone) renamed or removed them, output goes to new files
        there. Safe from any thread; the output thread alone writes."""
        return self.lifecycle.output.reopen_logs()

    def snapshot(self) -> OrchestratorSnapshot:
        """The orchestrator now: run mode, pool counts, dependencies, command
        interface (what ``status`` shows)."""
        with self.lifecycle.lock:
            pool = self.worker_pool
            return OrchestratorSnapshot(
                name=self.name,
                run_mode=self.config.run_mode.value,
                started=self._started,
                shutdown_requested=self._shutdown_requested,
                uptime=time.time() - self.start_time,
                total_agents=len(self.registry),
                pool=PoolCounts(pool.running_count, pool.max_workers, pool.queue_size),
                dependencies=self.dependency_graph.as_dict(),
                command_interface_enabled=self.config.enable_command_interface,
                command_socket_path=self.command_socket_path,
            )

    def agent_snapshot(self, name: str) -> AgentSnapshot:
        """Agent ``name`` now.

        Raises:
            RegistrationError: unknown agent.
        """
        with self.lifecycle.lock:
            return self._snapshot_of(self.registry.require(name), self._clock())

    def agent_snapshots(self) -> list[AgentSnapshot]:
        """Every agent, in registration order, read under one hold of the lifecycle
        lock (one consistent picture)."""
        with self.lifecycle.lock:
            now = self._clock()
            return [self._snapshot_of(entry, now) for entry in self.registry]

    def agent_details(self, name: str) -> AgentDetails:
        """Agent ``name``'s whole state now (what ``status NAME`` shows).

        Raises:
            RegistrationError: unknown agent.
        """
        with self.lifecycle.lock:
            entry = self.registry.require(name)
            config = entry.config
            status = entry.termination_status
            return AgentDetails(
                agent=self._snapshot_of(entry, self._clock()),
                generation_id=entry.generation_id,
                restart_policy=entry.supervision.restart,
                restart_attempt=entry.restart_attempt,
                termination_status=status.value if status else None,
                dependencies=tuple(self.dependency_graph.get_dependencies(name)),
                config=config.to_dict() if config is not None else None,
                ray=entry.agent.ray_status()
                if isinstance(entry.agent, RayAgent)
                else None,
            )

    def _snapshot_of(self, entry: AgentEntry, now: float) -> AgentSnapshot:
        uptime = None
        if entry.started_mono is not None and entry.state in ACTIVE_STATES:
            uptime = now - entry.started_mono
        next_start_in = None
        if entry.restart_at is not None:
            next_start_in = max(entry.restart_at - now, 0.0)
        return AgentSnapshot(
            name=entry.name,
            class_name=entry.agent_class.__name__,
            state=entry.state.value,
            flavour=entry.flavour,
            alive=entry.is_alive(),
            started=entry.reached_running,
            in_queue=self.worker_pool.is_queued(entry.name),
            pid=entry.pid,
            uptime=uptime,
            starts=entry.starts,
            exit_code=entry.exit_code,
            signal=entry.last_signal,
            next_start_in=next_start_in,
            fatal_reason=entry.fatal_reason,
            last_error=entry.last_error,
            next_run=self.lifecycle.scheduler.next_run_iso(entry.name),
            last_result=self.lifecycle.scheduler.last_result(entry.name),
            node=entry.agent.node if isinstance(entry.agent, RayAgent) else None,
        )

    def agent_summary(self, name: str) -> dict[str, Any]:
        """What ``ps`` shows of one agent, as JSON-safe data: its name, class and
        state, whether it is alive, started or queued, pid, uptime, restarts, the last
        exit code or signal, the time to its next try, and its last error."""
        return build_agent_summary(self.agent_snapshot(name))

    def agent_summaries(self) -> list[dict[str, Any]]:
        """:meth:`agent_summary` of every agent, in registration order, read under
        one hold of the lifecycle lock (one consistent picture)."""
        return [build_agent_summary(agent) for agent in self.agent_snapshots()]

    def agent_status(self, name: str) -> dict[str, Any]:
        """One agent's whole state as JSON-safe data: :meth:`agent_summary` plus its
        flavour, generation, starts, restart policy and attempt, termination status,
        dependencies and config."""
        return build_agent_status(self.agent_details(name))

    def report(self) -> dict[str, Any]:
        """A JSON-safe summary of the orchestrator and every agent."""
        with self.lifecycle.lock:
            return build_report(
                self.snapshot(),
                [self.agent_details(name) for name in self.registry.names()],
                workers=self.worker_pool.stats(),
                history=self.history.capacity_info(),
                callbacks={
                    "dropped": self.event_bus.executor.dropped,
                    "failed": self.event_bus.executor.failed,
                },
            )

    def __repr__(self) -> str:
        return f"<Orchestrator {self.name!r} {len(self.registry)} agents>"


def _describe_exit(entry: AgentEntry) -> str:
    """``exit code N`` or the signal's name, for an agent that ended in error."""
    if entry.last_signal:
        return f"killed by {entry.last_signal}"
    if entry.exit_code is not None:
        return f"exit code {entry.exit_code}"
    return f"ended {entry.termination_status.value if entry.termination_status else 'in error'}"


def _merged(
    config: AgentConfig | Mapping[str, Any] | None, settings: Mapping[str, Any]
) -> AgentConfig | Mapping[str, Any] | None:
    """``config`` with the config fields given as keyword arguments set over it."""
    if not settings:
        return config
    if isinstance(config, AgentConfig):
        return {**config.model_dump(exclude_unset=True), **settings}
    return {**(config or {}), **settings}


def _check_agent_class(agent_class: object) -> None:
    if not (inspect.isclass(agent_class) and issubclass(agent_class, BaseAgent)):
        raise TypeError(
            f"agent_class must be an agent class (a …ThreadAgent or …ProcessAgent), "
            f"not {agent_class!r}"
        )
    if agent_class.flavour not in ("thread", "process", "ray"):
        raise TypeError(
            f"{agent_class.__name__} is neither a thread nor a process agent: subclass "
            "e.g. LoopingThreadAgent or LoopingProcessAgent"
        )
    if inspect.isabstract(agent_class):
        missing = ", ".join(sorted(getattr(agent_class, "__abstractmethods__", ())))
        raise TypeError(f"{agent_class.__name__} is abstract: implement {missing}")
