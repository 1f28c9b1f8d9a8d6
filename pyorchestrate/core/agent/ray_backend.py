"""Agents as Ray actors: the one module of pyorchestrate that imports ``ray``.

``register_agent(Cls, name, backend="ray", ray_options={...})`` runs any agent class,
unchanged, in one named Ray actor (an :class:`AgentHost`), on whatever node of the
cluster Ray picks. The orchestrator keeps a :class:`RayAgent` for it, which speaks
for the actor as a :class:`~.command.CommandAgent` speaks for its program: it forwards
what the agent reports (START, READY, heartbeats, errors, CLOSE, its ``send_message``
messages and its ``logging`` records) over the agent's link, and its :attr:`sentinel`
(an eventfd) becomes readable when the actor's ``run()`` has ended, so the router
sees a Ray agent exactly as it sees any other. The router never makes a Ray call.

``ray`` is imported the first time a Ray agent starts (or :meth:`RayBackend.connect`
is called), never by ``import pyorchestrate``.

The life of one run (one generation):

* **start** (:meth:`RayAgent.start`, any thread): starts the agent's *watcher*
  thread and returns. The watcher connects to the cluster if this process is not
  connected yet (:class:`RayBackend`), creates the actor (``max_restarts=0``: the
  orchestrator's supervision decides; ``max_concurrency`` at least 3, so ``stop()``
  and the message batches run beside ``run()``), and calls its ``run()``, which runs
  the agent's final ``run()``: START and READY come from the actor.
* **messages**: the actor keeps what the agent sends in a buffer; the watcher
  long-polls it (:meth:`AgentHost.drain`, one call in flight at a time) and writes
  each batch to the link in order. One reader per agent keeps the order per agent;
  no extra actor (each costs about 70 MB) and no extra hop.
* **end**: the watcher waits on the ``run()`` ObjectRef (``ray.wait`` with a
  timeout, in a loop). A normal return: the last batch, then the end. A
  ``RayTaskError`` (something outside the agent's own ``run()`` raised, such as its
  constructor): AGENT_ERROR with the remote traceback. ``ActorDiedError`` /
  ``ActorUnavailableError``: AGENT_ERROR ``reason="process_lost"`` (its worker
  process died) or ``reason="node_lost"`` (its node died or cannot be reached).
  Then the actor is killed (a finished actor would hold its worker), and the
  sentinel fires.
* **stop**: ``on_stop`` calls the actor's ``stop()``; if the agent has not ended after
  ``supervision.stop_timeout``, ``stop()`` again, and ``ray.kill`` after
  ``supervision.kill_timeout`` (as SIGTERM and SIGKILL for a process agent). These
  calls go through the backend's own thread pool: never on the router thread.

Every blocking Ray call has a timeout (:data:`CALL_TIMEOUT`, :data:`WAIT_SLICE`).
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, StrictFloat, StrictInt, field_validator

from ..config import ConfigModel
from ..errors import ConfigError, PyOrchestrateError
from ..events import AgentEvent
from ..utilities.agentlog import forward_logging, logging_levels
from ..utilities.fdwait import readable
from ..utilities.messaging import MessageChannel, MessageType, ServiceMessage
from .base import AgentConfig, BaseAgent, check_agent_kwargs
from .command import CommandAgent
from .external import ExternalJob
from .flags import ControlEvents, Flavour, StateEvents
from .plugins import AgentPlugin
from .status import AgentTerminationStatus

__all__ = [
    "BACKENDS",
    "CALL_TIMEOUT",
    "LOCAL_ENV",
    "AgentHost",
    "RayAgent",
    "RayBackend",
    "RayOptions",
    "RayUnavailableError",
    "choose_backend",
    "describe_death",
    "is_loopback",
    "ray_agent_class",
]

logger = logging.getLogger("pyorchestrate.ray")

CALL_TIMEOUT = 10.0
"""Seconds any single blocking Ray call may take (a ``ray.get`` of a small result)."""

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a ``host:port`` cluster's GCS to accept a connection."""

WAIT_SLICE = 1.0
"""Seconds one ``ray.wait`` of the watcher blocks before it looks again."""

DRAIN_WAIT = 0.5
"""Seconds one :meth:`AgentHost.drain` call waits for a first message."""

BATCH = 1000
"""The most messages one batch carries."""

LOCAL_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
}
"""Set (unless already set) before this process starts a local cluster: with
``node_ip_address="127.0.0.1"``, the first keeps every Ray process on the loopback
interface; no usage stats; no token auth on a cluster nobody else can reach."""


class RayUnavailableError(PyOrchestrateError, ImportError):
    """``ray`` is not installed: ``pip install 'pyorchestrate[ray]'``."""


def _ray() -> Any:
    """The ``ray`` module, imported on first use."""
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailableError(
            "a Ray agent needs ray: pip install 'pyorchestrate[ray]'"
        ) from exc
    return ray


# ---------------------------------------------------------------------- options


class RayOptions(ConfigModel):
    """Where and how a Ray agent's actor runs: ``register_agent(..., ray_options=...)``.

    Unknown keys are refused (``ConfigError`` naming the key, with ``did you mean``).
    """

    model_config = ConfigDict(extra="forbid")

    num_cpus: StrictFloat | StrictInt | None = Field(
        default=None, ge=0, description="CPUs the actor holds (None: Ray's default)"
    )
    num_gpus: StrictFloat | StrictInt | None = Field(
        default=None, ge=0, description="GPUs the actor holds"
    )
    memory: StrictInt | None = Field(
        default=None, gt=0, description="memory the actor reserves (bytes)"
    )
    resources: dict[str, StrictFloat | StrictInt] = Field(
        default_factory=dict, description="custom resources, e.g. {'gpu_box': 1}"
    )
    runtime_env: dict[str, Any] | None = Field(
        default=None, description="Ray runtime_env (env_vars, pip, working_dir, ...)"
    )
    max_concurrency: StrictInt = Field(
        default=3,
        ge=3,
        description="threads of the actor: run(), stop() and the message batches",
    )
    lifetime: Literal["detached"] | None = Field(
        default=None, description="detached actors are not supported yet"
    )

    @field_validator("resources")
    @classmethod
    def _resources(cls, value: dict[str, float]) -> dict[str, float]:
        for key, amount in value.items():
            if not key:
                raise ValueError("a resource name must not be empty")
            if amount < 0:
                raise ValueError(f"{key}: must be 0 or more, not {amount}")
        return value

    @field_validator("lifetime")
    @classmethod
    def _lifetime(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError(
                "detached Ray agents are not supported yet: an agent's actor lives "
                "and dies with its orchestrator"
            )
        return value

    def actor_options(self) -> dict[str, Any]:
        """The keyword arguments of ``ActorClass.options`` these options give."""
        options: dict[str, Any] = {"max_concurrency": self.max_concurrency}
        for key in ("num_cpus", "num_gpus", "memory", "runtime_env"):
            value = getattr(self, key)
            if value is not None:
                options[key] = value
        if self.resources:
            options["resources"] = dict(self.resources)
        return options


# ---------------------------------------------------------------------- the actor


class _BufferLink:
    """In the actor: the agent's link, a buffer that :meth:`AgentHost.drain` empties."""

    def __init__(self, host: AgentHost) -> None:
        self._host = host

    def send(self, message: ServiceMessage) -> bool:
        return self._host.put(message)

    def close(self) -> None:
        """Nothing to close: the watcher reads the buffer until ``run()`` ends."""


class AgentHost:
    """The body of a Ray agent's actor: one agent, unchanged, and its outbox.

    Created by the watcher with ``ray.remote(AgentHost).options(...)``; every method
    is a remote call. The agent is built inside :meth:`run`, so whatever its
    constructor raises comes back as a ``RayTaskError`` with its traceback.
    """

    def __init__(
        self,
        agent_class: type[BaseAgent],
        name: str,
        config: AgentConfig | None,
        kwargs: Mapping[str, Any],
        generation_id: int | None,
        log_levels: dict[str, int] | None,
    ) -> None:
        self._args = (agent_class, name, config, dict(kwargs), generation_id)
        self._levels = log_levels
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._outbox: collections.deque[ServiceMessage] = collections.deque()
        self._agent: BaseAgent | None = None
        self._stop_asked = False
        self._done = False

    def put(self, message: ServiceMessage) -> bool:
        """The agent sent ``message`` (any of its threads)."""
        with self._arrived:
            self._outbox.append(message)
            self._arrived.notify_all()
        return True

    def info(self) -> dict[str, Any]:
        """Where the actor runs: its id, node, pid and the resources it holds."""
        ray = _ray()
        context = ray.get_runtime_context()
        return {
            "actor_id": context.get_actor_id(),
            "node_id": context.get_node_id(),
            "node_ip": ray.util.get_node_ip_address(),
            "pid": os.getpid(),
            "resources": dict(context.get_assigned_resources()),
        }

    def run(self) -> None:
        """Build the agent and run its whole life (its final ``run()``)."""
        agent_class, name, config, kwargs, generation_id = self._args
        agent = agent_class(
            name=name, config=config, generation_id=generation_id, **kwargs
        )
        link = _BufferLink(self)
        agent.attach_link(link)  # type: ignore[arg-type]
        # The worker is this actor's alone: its records go to the orchestrator.
        forward_logging(name, link, self._levels)
        with self._lock:
            self._agent = agent
            stop = self._stop_asked
        if stop:
            agent.stop_event.set()
        try:
            agent.run()
        finally:
            with self._arrived:
                self._done = True  # a drain waits no more: nothing else will come
                self._arrived.notify_all()

    def stop(self) -> None:
        """Ask the agent to stop: its ``on_stop`` runs here, then its stop event."""
        with self._lock:
            self._stop_asked = True
            agent = self._agent
        if agent is not None:
            try:
                agent.stop()
            except Exception:
                logging.getLogger("pyorchestrate.ray").exception(
                    "agent %r: on_stop raised", agent.name
                )
                agent.stop_event.set()

    def drain(self, wait: float) -> list[ServiceMessage]:
        """What the agent sent since the last call (up to :data:`BATCH` messages),
        waiting up to ``wait`` seconds for a first one."""
        with self._arrived:
            if not self._outbox and wait > 0 and not self._done:
                self._arrived.wait(wait)
            count = min(len(self._outbox), BATCH)
            return [self._outbox.popleft() for _ in range(count)]


# ---------------------------------------------------------------------- the cluster


class RayBackend:
    """One orchestrator's use of Ray: the connection, a namespace, control calls.

    Args:
        address: ``None`` to start a local cluster that this backend owns and shuts
            down in :meth:`close` (every Ray process bound to 127.0.0.1), or an address
            to connect to (``"auto"``, ``"127.0.0.1:6379"``, ``"ray://host:10001"``),
            which is left running.
        namespace: where this orchestrator's actors are named.
        num_cpus: CPUs of a local cluster (``None``: Ray's count).
    If this process is already connected to Ray (``ray.is_initialized()``), that
    connection is used as it is, and left open.
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        namespace: str,
        num_cpus: int | None = None,
    ) -> None:
        self.address = address
        self.namespace = namespace
        self.num_cpus = num_cpus
        self._lock = threading.Lock()
        self._connected = False
        self._owned = False
        self._closed = False
        self._actor_class: Any = None
        self._executor = ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="pyorchestrate-ray-call"
        )

    @property
    def connected(self) -> bool:
        """Whether this backend is connected to Ray now."""
        return self._connected and not self._closed

    @property
    def owned(self) -> bool:
        """Whether this backend made the Ray connection (and ends it at close)."""
        return self._owned

    @property
    def owned_cluster(self) -> bool:
        """Whether this backend started the cluster itself (no ``address``)."""
        return self._owned and self.address is None

    def connect(self) -> None:
        """Connect to Ray (start the local cluster) once; later calls return at once.

        Raises:
            RayUnavailableError: ray is not installed.
            RuntimeError: the backend is closed, or ``ray`` was imported before a
                cluster on this machine was asked for without
                ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (Ray would then reach
                127.0.0.1 through the machine's network address).
        """
        local = is_loopback(self.address)
        if local:
            for key, value in LOCAL_ENV.items():
                os.environ.setdefault(key, value)
        ray = _ray()
        with self._lock, _process_lock:
            if self._closed:
                raise RuntimeError("the Ray backend is closed")
            if self._connected:
                return
            if not ray.is_initialized():
                if local and ray._private.ray_constants.ENABLE_RAY_CLUSTER:
                    raise RuntimeError(
                        "ray was imported before RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 "
                        "was set: a cluster on this machine would be reached through "
                        "its network address, not 127.0.0.1. Set it in the "
                        "environment, or let pyorchestrate import ray first"
                    )
                started = time.monotonic()
                if self.address is None:
                    ray.init(
                        address="local",
                        num_cpus=self.num_cpus,
                        include_dashboard=False,
                        _node_ip_address="127.0.0.1",
                        namespace=self.namespace,
                        configure_logging=False,
                        log_to_driver=True,
                    )
                    logger.info(
                        "started a local Ray cluster on 127.0.0.1 in %.1f s",
                        time.monotonic() - started,
                    )
                else:
                    _check_reachable(self.address)
                    ray.init(
                        address=self.address,
                        namespace=self.namespace,
                        configure_logging=False,
                    )
                    logger.info(
                        "connected to the Ray cluster at %s in %.1f s",
                        self.address,
                        time.monotonic() - started,
                    )
                self._owned = True
                _process["ours"] = True
            _process["users"] += 1
            self._actor_class = ray.remote(AgentHost)
            self._connected = True

    def actor_class(self) -> Any:
        """The remote class of :class:`AgentHost` (after :meth:`connect`)."""
        self.connect()
        return self._actor_class

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Run a Ray call on the backend's own threads (never the caller's: a stop
        or a kill may be asked for on the router thread)."""
        return self._executor.submit(_logged, fn, *args, **kwargs)

    def named_actors(self) -> list[str]:
        """Names of the live actors in this backend's namespace (a GCS call)."""
        if not self._connected:
            return []
        ray = _ray()
        found = ray.util.list_named_actors(all_namespaces=True)
        return sorted(
            item["name"] for item in found if item.get("namespace") == self.namespace
        )

    def close(self, timeout: float = 5.0) -> bool:
        """Finish the control calls, kill what is left in the namespace, and end the
        connection if this backend made it; return whether all of it ended in time."""
        with self._lock:
            if self._closed:
                return True
            self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=False)
        if not self._connected:
            return True
        ray = _ray()
        clean = True
        try:
            for name in self.named_actors():
                logger.warning("Ray actor %r outlived its agent: killing it", name)
                with contextlib.suppress(Exception):
                    ray.kill(ray.get_actor(name, namespace=self.namespace))
                clean = False
        except Exception:
            logger.exception("could not list the Ray actors left behind")
            clean = False
        with _process_lock:
            _process["users"] -= 1
            last = _process["users"] == 0 and _process["ours"]
            if last:
                # The last of our backends in this process: the connection (and a
                # local cluster one of them started) goes. Not before: one
                # connection serves every orchestrator of a process.
                _process["ours"] = False
                started = time.monotonic()
                ray.shutdown()
                logger.info(
                    "Ray connection closed in %.1f s", time.monotonic() - started
                )
            elif self._owned:
                logger.info("Ray connection left open for this process's others")
        return clean


_process_lock = threading.Lock()
_process = {"users": 0, "ours": False}
"""This process's one Ray connection: how many backends use it, and whether one of
them made it (then the last to close ends it)."""


def is_loopback(address: str | None) -> bool:
    """Whether ``address`` names a cluster on this machine: ``None`` (a local
    cluster of our own), ``"local"``, ``"auto"`` (the latest one started here), or
    a host of 127.0.0.1, ``localhost`` or ``::1``."""
    if address is None or address in ("local", "auto"):
        return True
    if address.startswith("ray://"):
        address = address[len("ray://") :]
    host = address.rsplit(":", 1)[0].strip("[]") if ":" in address else address
    return host in ("127.0.0.1", "localhost", "::1")


def _check_reachable(address: str) -> None:
    """Fail fast when nothing listens at a ``host:port`` address: ``ray.init`` would
    retry for minutes. ``"auto"`` and ``ray://`` addresses are left to Ray."""
    if address in ("auto", "local") or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT):
            pass
    except (OSError, ValueError) as exc:
        raise ConnectionError(
            f"ray_address {address!r}: no Ray cluster answers there ({exc})"
        ) from None


def _logged(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception:
        logger.warning("Ray call %s failed", getattr(fn, "__name__", fn), exc_info=True)
        return None


# ---------------------------------------------------------------------- the agent


def describe_death(exc: BaseException) -> tuple[str, str]:
    """``(reason, message)`` of the AGENT_ERROR for an actor that died under us."""
    text = str(exc)
    lower = text.lower()
    if type(exc).__name__ == "ActorUnavailableError":
        return "node_lost", f"its Ray node cannot be reached: {text}"
    if "its node has died" in lower or "node died" in lower:
        return "node_lost", f"its Ray node died: {text}"
    if getattr(exc, "_actor_init_failed", False):
        return "start_failed", f"its actor could not start: {text}"
    return "process_lost", f"its Ray worker process died: {text}"


class RayAgent(BaseAgent):
    """The orchestrator's side of an agent that runs as a Ray actor (see the module).

    Not registered directly: ``register_agent(Cls, name, backend="ray")`` registers
    :func:`ray_agent_class` ``(Cls)``, which runs ``Cls`` in the actor. Its ``Config``
    is ``Cls.Config``; the keyword arguments of ``register_agent`` go to ``Cls``,
    except ``ray_options`` (a :class:`RayOptions` or a mapping).
    """

    flavour: ClassVar[Flavour | None] = "ray"
    remote_class: ClassVar[type[BaseAgent]]
    """The agent class the actor runs."""

    def __init__(
        self,
        name: str | None = None,
        config: AgentConfig | Mapping[str, Any] | None = None,
        plugin: AgentPlugin | None = None,
        control_events: ControlEvents | None = None,
        state_events: StateEvents | None = None,
        msg_channel: MessageChannel | None = None,
        generation_id: int | None = None,
        **kwargs: Any,
    ) -> None:
        options = kwargs.pop("ray_options", None)
        self.ray_options = (
            options
            if isinstance(options, RayOptions)
            else RayOptions.from_data(options or {})
        )
        check_agent_kwargs(self.remote_class, kwargs)
        self.remote_kwargs = dict(kwargs)
        super().__init__(
            name,
            config,
            plugin,
            control_events,
            state_events,
            msg_channel,
            generation_id,
        )
        self._backend: RayBackend | None = None
        self._lock = threading.Lock()
        self._handle: Any = None
        self._watcher: threading.Thread | None = None
        self._ended = threading.Event()
        self._end_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        weakref.finalize(self, _close_fd, self._end_fd)
        self._stop_calls = 0
        self._kill_asked = False
        self._close_seen = False
        self._pid: int | None = None
        self.placement: dict[str, Any] = {}
        """Where the actor runs, once known: ``actor_id``, ``node_id``, ``node_ip``,
        ``pid``, ``resources`` (what ``status NAME`` shows)."""

    def execute(self) -> None:
        """Not used here: the actor runs the agent's ``run()``."""

    # ------------------------------------------------------------ orchestrator side
    def use_backend(self, backend: RayBackend) -> None:
        """The cluster connection to run on (set by the orchestrator before start)."""
        self._backend = backend

    @property
    def actor_name(self) -> str:
        """The actor's name in its namespace: the agent's, with the generation."""
        return f"{self.name}:{self.generation_id or 0}"

    def start(self) -> None:
        """Start the watcher thread, which creates the actor; no Ray call here."""
        if self._watcher is not None:
            raise RuntimeError(f"agent {self.name!r} can only be started once")
        if self._backend is None:
            raise RuntimeError(f"agent {self.name!r}: no Ray backend to run on")
        self.start_time = time.time()
        self._log_levels = logging_levels()  # the actor logs at our thresholds
        self._watcher = threading.Thread(
            target=self._watch, name=f"pyorchestrate-ray-{self.name}", daemon=True
        )
        self._watcher.start()

    def _watch(self) -> None:
        try:
            self._run_actor()
        except Exception as exc:  # the watcher must always end the agent
            logger.exception("agent %r: the Ray watcher failed", self.name)
            self._report_error(
                f"the Ray watcher failed: {type(exc).__name__}: {exc}",
                reason="start_failed",
            )
        finally:
            self._finish()

    def _run_actor(self) -> None:
        backend = self._backend
        assert backend is not None
        ray = _ray()
        actor_class = backend.actor_class()
        options = self.ray_options.actor_options()
        with self._lock:
            if self._kill_asked:
                self._report_error("killed before its actor was created", "killed")
                return
            handle = actor_class.options(
                name=self.actor_name,
                namespace=backend.namespace,
                max_restarts=0,
                max_task_retries=0,
                **options,
            ).remote(
                self.remote_class,
                self.name,
                self.config,
                self.remote_kwargs,
                self.generation_id,
                self._log_levels,
            )
            self._handle = handle
            stops = self._stop_calls
        if stops:
            handle.stop.remote()
        run_ref = handle.run.remote()
        info_ref = handle.info.remote()
        # Where it runs, before its first words: READY carries the node. The actor
        # answers info() beside run() once it exists (or fails with it).
        while not ray.wait([info_ref, run_ref], num_returns=1, timeout=WAIT_SLICE)[0]:
            pass
        ray.wait([info_ref], timeout=CALL_TIMEOUT)
        self._take_info(ray, info_ref)
        pending: dict[Any, str] = {
            handle.drain.remote(DRAIN_WAIT): "drain",
            run_ref: "run",
        }
        while True:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_SLICE)
            if not ready:
                continue
            ref = ready[0]
            kind = pending.pop(ref)
            if kind == "drain":
                if not self._forward_batch(ray, ref):
                    continue  # the actor is gone: run_ref says how
                pending[handle.drain.remote(DRAIN_WAIT)] = "drain"
            else:
                self._take_end(ray, handle, run_ref, pending)
                return

    def _take_info(self, ray: Any, ref: Any) -> None:
        try:
            info = ray.get(ref, timeout=CALL_TIMEOUT)
        except Exception:
            return  # the actor died: its run() says so
        self.placement = dict(info)
        logger.debug(
            "agent %r: actor %s on node %s (pid %s)",
            self.name,
            info.get("actor_id"),
            info.get("node_ip"),
            info.get("pid"),
            extra={"agent": self.name},
        )

    def _forward_batch(self, ray: Any, ref: Any) -> bool:
        """Send one batch of the actor's messages on; ``False`` if the actor is gone."""
        try:
            batch = ray.get(ref, timeout=CALL_TIMEOUT)
        except Exception:
            return False
        for message in batch:
            self._forward(message)
        return True

    def _forward(self, message: ServiceMessage) -> None:
        if message.type is MessageType.STATUS:
            event = message.payload.get("event")
            pid = message.payload.get("pid")
            if isinstance(pid, int):
                self._pid = pid
            if event == AgentEvent.START.value:
                self._set(self.state_events.start_event)
            elif event == AgentEvent.READY.value:
                self._set(self.state_events.ready_event)
            elif event == AgentEvent.CLOSE.value:
                self._close_seen = True
                status = message.payload.get("termination_status")
                with contextlib.suppress(ValueError):
                    self.termination_status = AgentTerminationStatus(str(status))
                self._set(self.state_events.close_event)
        if message.type is MessageType.LOG:
            if self._link is not None:
                self._link.send(message)
            return
        self.send_message(message)

    def _take_end(
        self, ray: Any, handle: Any, run_ref: Any, pending: dict[Any, str]
    ) -> None:
        error: BaseException | None = None
        try:
            ray.get(run_ref, timeout=CALL_TIMEOUT)
        except Exception as exc:
            error = exc
        actor_error = ray.exceptions.RayActorError
        alive = not isinstance(error, actor_error)
        if alive:
            # Everything the agent sent is in its outbox now: the batch in flight,
            # then the rest.
            for ref, kind in pending.items():
                if kind == "drain" and ray.wait([ref], timeout=CALL_TIMEOUT)[0]:
                    self._forward_batch(ray, ref)
            while self._forward_batch_now(ray, handle):
                pass
        if error is None:
            pass
        elif isinstance(error, ray.exceptions.RayTaskError):
            self._report_error(
                f"{type(error.cause).__name__}: {error.cause}"
                if getattr(error, "cause", None) is not None
                else str(error),
                reason="exception",
                error_type=type(getattr(error, "cause", error)).__name__,
                traceback=str(error)[-8_000:],
            )
        elif isinstance(error, actor_error):
            if self._kill_asked:
                self._report_error(
                    "killed by ray.kill: it did not stop in time", reason="killed"
                )
            else:
                reason, text = describe_death(error)
                self._report_error(text, reason=reason)
        else:  # GetTimeoutError, or the connection to Ray failed
            self._report_error(
                f"its run() could not be read: {type(error).__name__}: {error}",
                reason="process_lost",
            )
        if alive:
            # A finished actor keeps its worker process: end it.
            with contextlib.suppress(Exception):
                ray.kill(handle, no_restart=True)

    def _forward_batch_now(self, ray: Any, handle: Any) -> bool:
        """One more batch from a finished actor; whether it had messages."""
        try:
            batch = ray.get(handle.drain.remote(0), timeout=CALL_TIMEOUT)
        except Exception:
            return False
        for message in batch:
            self._forward(message)
        return bool(batch)

    def _report_error(self, text: str, reason: str, **extra: Any) -> None:
        """Report an end the agent could not report itself: ERROR, then CLOSE."""
        if self._close_seen:
            return
        self.termination_status = AgentTerminationStatus.CRITICAL
        self._send_status(
            AgentEvent.ERROR,
            error=text,
            reason=reason,
            error_type=extra.pop("error_type", None),
            **extra,
        )
        self._send_status(
            AgentEvent.CLOSE, termination_status=self.termination_status.value
        )
        self._close_seen = True
        self._set(self.state_events.close_event)

    def _send_status(self, event: AgentEvent, **extra: Any) -> None:
        # The actor's worker pid, not ours.
        super()._send_status(event, **{"pid": self._pid, **extra})

    def _finish(self) -> None:
        self._ended.set()
        with contextlib.suppress(OSError):
            os.eventfd_write(self._end_fd, 1)
        if self._link is not None:
            self._link.close()

    def on_stop(self) -> None:
        """A stop: the actor's ``stop()`` (its agent's ``on_stop``, then its stop
        event), called on the backend's threads."""
        self.terminate()

    def terminate(self) -> None:
        """The actor's ``stop()`` again (the stop deadline passed)."""
        with self._lock:
            self._stop_calls += 1
            handle = self._handle
        if handle is not None and self._backend is not None:
            self._backend.call(handle.stop.remote)

    def kill(self) -> None:
        """``ray.kill`` the actor (on the backend's threads)."""
        with self._lock:
            self._kill_asked = True
            handle = self._handle
        if (
            handle is not None
            and self._backend is not None
            and not self._ended.is_set()
        ):
            self._backend.call(_kill, handle)

    def kill_leftovers(self) -> None:
        """Nothing: the watcher kills the actor once its ``run()`` has ended."""

    def join(self, timeout: float | None = None) -> None:
        """Wait up to ``timeout`` seconds for the watcher to finish."""
        if self._watcher is not None:
            self._watcher.join(timeout)

    def is_alive(self) -> bool:
        """Whether the actor's run has not ended yet (as far as the watcher knows)."""
        return self._watcher is not None and not self._ended.is_set()

    @property
    def pid(self) -> int | None:
        """The actor's worker pid (on its node), once it reported START."""
        return self._pid

    @property
    def node(self) -> str | None:
        """The IP address of the actor's node, once known."""
        node = self.placement.get("node_ip")
        return str(node) if node else None

    def ray_status(self) -> dict[str, Any]:
        """The actor as ``status NAME`` shows it: its name and namespace, and once
        placed its id, node (IP and id), worker pid and the resources it holds."""
        backend = self._backend
        return {
            "actor_name": self.actor_name,
            "namespace": backend.namespace if backend is not None else None,
            "actor_id": self.placement.get("actor_id"),
            "node": self.node,
            "node_id": self.placement.get("node_id"),
            "pid": self.placement.get("pid"),
            "resources": self.placement.get("resources", {}),
            "options": self.ray_options.actor_options(),
        }

    @property
    def exitcode(self) -> int | None:
        """Always ``None``: an actor has no exit code (its CLOSE status counts)."""
        return None

    @property
    def exit_status_lost(self) -> bool:
        """Never: the watcher always reports the end."""
        return False

    @property
    def sentinel(self) -> int:
        """An eventfd that becomes readable once the run has ended and been reported."""
        return self._end_fd

    def ended(self, timeout: float | None = 0) -> bool:
        """Whether the run has ended (waiting up to ``timeout`` seconds)."""
        return readable(self._end_fd, timeout)

    def __repr__(self) -> str:
        return f"<RayAgent {self.name!r} running {self.remote_class.__name__}>"


def _kill(handle: Any) -> None:
    _ray().kill(handle, no_restart=True)


def _close_fd(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


BACKENDS = ("local", "ray")
"""Where an agent can run: ``local`` (a thread or a process, as its class says) or
``ray`` (a Ray actor)."""


def choose_backend(
    agent_class: type[BaseAgent],
    backend: str | None,
    *,
    default: str,
    ray_options: RayOptions | Mapping[str, Any] | None,
    kwargs: dict[str, Any],
    control_events: ControlEvents | None = None,
) -> type[BaseAgent]:
    """The class to register for ``agent_class`` on ``backend`` (``None``: the
    orchestrator's ``default``): ``agent_class`` itself, or its
    :func:`ray_agent_class`, with ``ray_options`` validated into ``kwargs``.

    Raises:
        ConfigError: a bad ``backend`` or ``ray_options`` (naming the field), or
            ``ray_options`` for an agent that does not run on Ray.
        TypeError: ``agent_class`` cannot run on Ray, a keyword would shadow one of
            its attributes, or ``control_events`` would have to reach the actor.
        RayUnavailableError: ``ray`` is not installed.
    """
    chosen = default if backend is None else backend
    if isinstance(agent_class, type) and issubclass(agent_class, RayAgent):
        chosen = "ray"  # already made for Ray (register_spec of a registered spec)
    if chosen not in BACKENDS:
        raise ConfigError(
            "invalid backend",
            [("backend", f"must be 'local' or 'ray', got {chosen!r}")],
        )
    if chosen == "local":
        if ray_options is not None:
            raise ConfigError(
                "invalid ray_options",
                [("ray_options", "only for an agent that runs with backend='ray'")],
            )
        return agent_class
    try:
        options = (
            ray_options
            if isinstance(ray_options, RayOptions)
            else RayOptions.from_data(ray_options or kwargs.get("ray_options") or {})
        )
    except ConfigError as exc:
        raise ConfigError(
            "invalid ray_options",
            [
                (f"ray_options.{path}" if path else "ray_options", why)
                for path, why in exc.errors
            ],
        ) from None
    if importlib.util.find_spec("ray") is None:
        raise RayUnavailableError(
            "backend='ray' needs ray: pip install 'pyorchestrate[ray]'"
        )
    made = ray_agent_class(agent_class)
    if control_events is not None and (
        control_events.setup_event is not None
        or control_events.execute_event is not None
    ):
        raise TypeError(
            "control_events: a Ray agent's setup_event and execute_event cannot reach "
            "its actor (its stop_event works: stop() reaches the actor)"
        )
    check_agent_kwargs(
        made.remote_class, {k: v for k, v in kwargs.items() if k != "ray_options"}
    )
    kwargs["ray_options"] = options
    return made


_classes: dict[type[BaseAgent], type[RayAgent]] = {}
_classes_lock = threading.Lock()


def ray_agent_class(agent_class: type[BaseAgent]) -> type[RayAgent]:
    """The :class:`RayAgent` class that runs ``agent_class`` in an actor (one per
    class, made once). Its name, ``Config`` and ``config_keywords`` are
    ``agent_class``'s.

    Raises:
        TypeError: ``agent_class`` cannot run in an actor (a command, an external
            job, a pool, or not an agent class).
    """
    if not isinstance(agent_class, type) or not issubclass(agent_class, BaseAgent):
        raise TypeError(f"backend='ray' runs an agent class, not {agent_class!r}")
    if issubclass(agent_class, RayAgent):
        return agent_class
    if issubclass(agent_class, CommandAgent | ExternalJob):
        raise TypeError(
            f"{agent_class.__name__} cannot run on Ray: a command runs its program "
            "from the orchestrator's machine, and an external job is not run at all"
        )
    with _classes_lock:
        found = _classes.get(agent_class)
        if found is None:
            found = type(
                agent_class.__name__,
                (RayAgent,),
                {
                    "__module__": __name__,
                    "__qualname__": f"RayAgent[{agent_class.__qualname__}]",
                    "__doc__": f"{agent_class.__name__}, run as a Ray actor.",
                    "Config": agent_class.Config,
                    "config_keywords": agent_class.config_keywords,
                    "remote_class": agent_class,
                },
            )
            _classes[agent_class] = found
        return found
