"""The base agent: a final ``run()`` that reports every step of an agent's life.

``run()`` follows one order, whatever the agent does:

1. record ``start_time``; send START; set ``start_event``
2. validate the config (its ``check()`` rules), initialize plugins
3. ``setup()`` (waits for ``setup_event``); send READY; set ``ready_event``
4. ``execute()`` (waits for ``execute_event``)
5. on a config error: status ERROR and an ERROR message naming the field;
   on any other exception: status CRITICAL and an ERROR message with its text
6. finally: ``on_close()``, finalize plugins, send CLOSE with the status, set
   ``close_event``

A concrete agent mixes in a flavour (thread or process) from ``flavours``; use the
ready-made ``…ThreadAgent`` / ``…ProcessAgent`` classes.
"""

from __future__ import annotations

import abc
import inspect
import logging
import os
import time
import traceback
from collections.abc import Mapping
from typing import Any, ClassVar, final

from pydantic import ConfigDict, Field

from ..config import ConfigModel, ValidationPolicy
from ..errors import ConfigValidationError, TerminateAgent
from ..events import AgentEvent
from ..names import check_agent_name
from ..supervision_config import SupervisionConfig
from ..utilities.messaging import AgentLink, MessageChannel, MessageType, ServiceMessage
from .flags import AnyEvent, ControlEvents, Flavour, StateEvents
from .plugins import AgentPlugin, PluginManager
from .status import AgentTerminationStatus

__all__ = ["AgentConfig", "BaseAgent", "build_agent_config", "check_agent_kwargs"]

_TRACEBACK_LIMIT = 8_000


class AgentConfig(ConfigModel):
    """Settings every agent has. Subclass it as ``class Config(Parent.Config)``.

    Unknown keyword arguments are kept and readable as attributes, so a quick
    ``Publisher.Config(output_file="x.txt")`` works before you declare the field. A
    near miss of a field is a typo, not a custom attribute: ``limt=3`` (or ``Limit=3``,
    or ``restart=...`` for ``supervision.restart``) raises ``ConfigError`` with
    ``did you mean 'limit'?``. To refuse every unknown key, give the subclass
    ``model_config = ConfigDict(extra="forbid")``, or build it with
    ``build_agent_config(cls, data, strict=True)``.
    """

    model_config = ConfigDict(extra="allow")

    validation_policy: ValidationPolicy = Field(default_factory=ValidationPolicy)
    log_level: str | None = Field(
        default=None,
        pattern=r"^(?i:DEBUG|INFO|WARNING|ERROR|CRITICAL)$",
        description="level of this agent's logger; None leaves logging alone",
    )
    heartbeat_interval: float | None = Field(
        default=None,
        gt=0,
        strict=True,  # a number (an int will do), never a bool
        description=(
            "looping agents send AGENT_HEARTBEAT at most this often (seconds); "
            "None = a third of supervision.heartbeat_timeout, if set"
        ),
    )
    supervision: SupervisionConfig = Field(
        default_factory=SupervisionConfig,
        description="restart policy, backoff, watchdog, readiness and stop deadlines",
    )


def build_agent_config(
    agent_class: type[BaseAgent], config: object, *, strict: bool = False
) -> AgentConfig:
    """Return ``agent_class``'s config built from ``config``.

    ``None`` gives the defaults; a mapping or a config of a parent class is validated
    into ``agent_class.Config`` (defaults kept for what is missing). A key that is not
    a field becomes a custom attribute, unless it is a typo of a field (an error), or
    ``strict`` is set (every unknown key is an error, also in nested configs).

    Raises:
        ConfigError: a value is invalid, or a key is a typo of a field (or, with
            ``strict``, unknown); the message names the field.
        TypeError: ``config`` is neither a mapping nor a config.
    """
    config_class = agent_class.Config
    if config is None:
        return config_class()
    if isinstance(config, config_class):
        return config_class.from_data(config, strict=True) if strict else config
    if isinstance(config, AgentConfig):
        return config_class.from_data(
            config.model_dump(exclude_unset=True), strict=strict
        )
    if isinstance(config, Mapping):
        return config_class.from_data(dict(config), strict=strict)
    raise TypeError(
        f"config for {agent_class.__name__} must be a {config_class.__qualname__} or a "
        f"mapping, not {type(config).__name__}"
    )


_RESERVED = frozenset(
    {
        "config",
        "control_events",
        "flavour",
        "generation_id",
        "logger",
        "msg_channel",
        "name",
        "plugin",
        "plugin_manager",
        "start_time",
        "start_method",
        "state_events",
        "termination_status",
    }
)


def check_agent_kwargs(agent_class: type[BaseAgent], kwargs: Mapping[str, Any]) -> None:
    """Check extra keyword arguments can become attributes of an ``agent_class``.

    A keyword may set a plain class-level default (``duration: float = 0.3``), but never
    replace a method, a property, or an attribute the framework manages.

    Raises:
        TypeError: naming the keyword and why.
    """
    for key in kwargs:
        if key.startswith("_") or key in _RESERVED:
            raise TypeError(
                f"{agent_class.__name__}: keyword argument {key!r} is reserved by the "
                "agent framework; choose another name"
            )
        current = inspect.getattr_static(agent_class, key, None)
        if current is not None and (
            callable(current) or hasattr(current, "__get__") or inspect.isclass(current)
        ):
            raise TypeError(
                f"{agent_class.__name__}: keyword argument {key!r} would replace the "
                f"{type(current).__name__} {key!r} of the agent; choose another name"
            )


class BaseAgent(abc.ABC):
    """An agent: user code run in a thread or a process, reporting its lifecycle.

    Args:
        name: the agent's name (default: the class name).
        config: a ``Config`` instance, a mapping, or ``None`` for the defaults.
        plugin: a ``Plugin`` container (default: ``type(self).Plugin()``).
        control_events: setup/execute/stop events; missing ones are created.
        state_events: start/ready/close events; missing ones are created.
        msg_channel: a :class:`MessageChannel` that gets a copy of every message.
        generation_id: which start this is (set by the orchestrator).
        **kwargs: extra values, readable as attributes of the agent.
    """

    Config: ClassVar[type[AgentConfig]] = AgentConfig
    Plugin: ClassVar[type[AgentPlugin]] = AgentPlugin
    flavour: ClassVar[Flavour | None] = None
    config_keywords: ClassVar[frozenset[str]] = frozenset()
    """Keyword arguments of ``register_agent`` that set fields of the agent's config
    (``command=`` of a ``CommandAgent``) instead of becoming attributes."""

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
        flavour = self.flavour
        if flavour not in ("thread", "process", "ray"):
            raise TypeError(
                f"{type(self).__name__} has no flavour: subclass a …ThreadAgent or a "
                "…ProcessAgent (e.g. LoopingThreadAgent)"
            )
        self.name: str = check_agent_name(type(self).__name__ if name is None else name)
        self.config: AgentConfig = build_agent_config(type(self), config)
        self.plugin: AgentPlugin = plugin if plugin is not None else self.Plugin()
        for events in (control_events, state_events):
            if events is not None:
                events.check_flavour(flavour)
        self.control_events: ControlEvents = (control_events or ControlEvents()).filled(
            flavour
        )
        self.state_events: StateEvents = (state_events or StateEvents()).filled(flavour)
        self.msg_channel = msg_channel
        self.generation_id = generation_id
        self.termination_status = AgentTerminationStatus.SUCCESS
        self.start_time: float | None = None
        self.plugin_manager: PluginManager | None = None
        self._link: AgentLink | None = None
        self._last_beat = float("-inf")  # the first cycle beats
        check_agent_kwargs(type(self), kwargs)
        for key, value in kwargs.items():
            setattr(self, key, value)
        self.logger = logging.getLogger(f"pyorchestrate.agent.{self.name}")

    # ------------------------------------------------------------------ events
    @property
    def stop_event(self) -> AnyEvent:
        """The event that asks this agent to stop."""
        event = self.control_events.stop_event
        assert event is not None
        return event

    @property
    def stop_requested(self) -> bool:
        """Whether :meth:`stop` has been called."""
        return self.stop_event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking early on stop; return ``True`` if stopped."""
        return bool(self.stop_event.wait(seconds))

    # --------------------------------------------------------------- messaging
    def attach_link(self, link: AgentLink | None) -> None:
        """Connect the agent to its orchestrator (called by the orchestrator)."""
        self._link = link

    def send_message(self, message: ServiceMessage | Mapping[str, Any]) -> None:
        """Send a message to the orchestrator and to ``msg_channel``, if any.

        A mapping is sent as a DATA message. A STATUS payload without a
        ``generation_id`` gets this agent's.
        """
        if not isinstance(message, ServiceMessage):
            message = ServiceMessage(self.name, MessageType.DATA, dict(message))
        if (
            message.type is MessageType.STATUS
            and "generation_id" not in message.payload
            and self.generation_id is not None
        ):
            message = ServiceMessage(
                message.sender,
                message.type,
                {**message.payload, "generation_id": self.generation_id},
                message.timestamp,
            )
        if self._link is not None:
            self._link.send(message)
        if self.msg_channel is not None:
            try:
                self.msg_channel.put(message)
            except (OSError, ValueError) as exc:  # closed, or a message too large
                self.logger.warning(
                    "agent %r: msg_channel refused a message: %s", self.name, exc
                )

    def _send_status(self, event: AgentEvent, **extra: Any) -> None:
        payload: dict[str, Any] = {
            "status": "error" if event is AgentEvent.ERROR else "success",
            "error": "",
            "event": event.value,
            "pid": os.getpid(),
        }
        payload.update(extra)
        if self.generation_id is not None:
            payload["generation_id"] = self.generation_id
        self.send_message(ServiceMessage(self.name, MessageType.STATUS, payload))

    def heartbeat(self) -> None:
        """Tell the orchestrator this agent is alive (AGENT_HEARTBEAT)."""
        self._last_beat = time.monotonic()
        self._send_status(AgentEvent.HEARTBEAT)

    @property
    def beat_interval(self) -> float | None:
        """How often the loop beats: ``heartbeat_interval``, else a third of the
        watchdog's ``heartbeat_timeout``, else ``None`` (no automatic beats)."""
        interval = self.config.heartbeat_interval
        if interval is None and self.config.supervision.heartbeat_timeout is not None:
            interval = self.config.supervision.heartbeat_timeout / 3
        return interval

    def _beat_if_due(self) -> None:
        interval = self.beat_interval
        if interval is not None and time.monotonic() - self._last_beat >= interval:
            self.heartbeat()

    # --------------------------------------------------------------- lifecycle
    @final
    def run(self) -> None:
        """Run the agent's whole life in order; never override (override hooks)."""
        self.start_time = time.time()
        self.termination_status = AgentTerminationStatus.SUCCESS
        self._send_status(AgentEvent.START)
        self._set(self.state_events.start_event)
        if self.config.log_level:
            self.logger.setLevel(self.config.log_level.upper())
        self.plugin_manager = PluginManager(self.plugin, self)
        try:
            self.logger.debug("agent %r running (%s)", self.name, self.flavour)
            self._validate_config()
            self.plugin_manager.initialize()
            self.setup()
            if self.stop_requested:
                # Stopped before it was ready: it never was, so say nothing of READY.
                self.logger.debug("agent %r stopped during setup", self.name)
                return
            self._send_status(AgentEvent.READY)
            self._set(self.state_events.ready_event)
            self.execute()
        except ConfigValidationError as exc:
            self.termination_status = AgentTerminationStatus.ERROR
            # The orchestrator logs it (once, for both flavours).
            self.logger.debug("agent %r: %s", self.name, exc)
            self._send_status(
                AgentEvent.ERROR,
                error=str(exc),
                reason="config",
                error_type="ConfigError",
            )
        except TerminateAgent:
            self.termination_status = AgentTerminationStatus.WARNING
            raise
        except Exception as exc:
            self.termination_status = AgentTerminationStatus.CRITICAL
            # The orchestrator logs it at ERROR with this traceback (LifecycleManager.
            # record_error), in its own process for both flavours: one block, through
            # the user's logging if configured, else on stderr (logging's last resort).
            self.logger.debug("agent %r failed", self.name, exc_info=True)
            self._send_status(
                AgentEvent.ERROR,
                error=_describe(exc),
                reason="exception",
                error_type=type(exc).__name__,
                traceback=traceback.format_exc()[-_TRACEBACK_LIMIT:],
            )
        finally:
            try:
                self.on_close()
            except Exception:
                self.logger.exception("agent %r: on_close failed", self.name)
            self.plugin_manager.finalize()
            self._send_status(
                AgentEvent.CLOSE, termination_status=self.termination_status.value
            )
            self._set(self.state_events.close_event)
            elapsed = time.time() - self.start_time
            self.logger.debug("agent %r closed after %.3f s", self.name, elapsed)

    @staticmethod
    def _set(event: AnyEvent | None) -> None:
        if event is not None:
            event.set()

    def _validate_config(self) -> None:
        for result in self.config.enforce():
            self.logger.warning("agent %r config: %s", self.name, result)

    def _wait_control(self, event: AnyEvent | None) -> bool:
        """Wait until ``event`` is set; return ``False`` if a stop came first."""
        if event is None:
            return not self.stop_requested
        while not event.wait(0.05):
            if self.stop_requested:
                return False
        return True

    def setup(self) -> None:
        """Prepare the agent; the base waits for ``setup_event``. Extend with super()."""
        self._wait_control(self.control_events.setup_event)

    @abc.abstractmethod
    def execute(self) -> None:
        """Do the agent's work. The base waits for ``execute_event``."""
        self._wait_control(self.control_events.execute_event)

    def on_close(self) -> None:
        """Hook run in ``finally`` after the work, success or not."""

    def on_stop(self) -> None:
        """Hook run by :meth:`stop` in the caller's thread/process, before the event."""

    @final
    def stop(self) -> None:
        """Ask the agent to stop: runs :meth:`on_stop`, then sets ``stop_event``."""
        try:
            self.on_stop()
        finally:
            self.stop_event.set()

    def on_message(self, message: ServiceMessage) -> None:
        """Hook for messages addressed to the agent; does nothing by default."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.flavour}>"

    # Flavours provide these; declared here for type checkers.
    def start(self) -> None:  # pragma: no cover - replaced by the flavour
        raise NotImplementedError

    def join(self, timeout: float | None = None) -> None:  # pragma: no cover
        raise NotImplementedError

    def is_alive(self) -> bool:  # pragma: no cover
        raise NotImplementedError


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
