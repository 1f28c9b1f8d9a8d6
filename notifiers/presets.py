"""Presets: one line attaches alerts to an orchestrator.

::

    from notifiers.presets import attach

    attachment = attach(orchestrator, "errors_only", TelegramNotifier(token, chat_id))
    ...
    attachment.detach()  # unregisters, then drains and closes its dispatcher

A preset names the events to send, a minimum severity and optional templates.
:func:`attach` registers one handler per event through ``register_event`` (any object
with ``register_event``/``unregister_event`` will do: the core is never imported).
The handler runs on the orchestrator's callback threads and does only cheap
things: filter (agent-name globs, event, severity), render a
:class:`~notifiers.base.Notification` with :func:`~notifiers.templates.render`, pass
it through the attachment's :class:`~notifiers.pipeline.AlertPipeline` (dedup,
grouping, flapping, recovery, mutes, quiet hours: ``rules=``), and
:meth:`Dispatcher.submit <notifiers.dispatcher.Dispatcher.submit>` what comes out.
Sending, retrying and waiting happen on the dispatcher's own thread; group summaries
and digests that fall due later are submitted by a small timer thread
(``notifiers-pipeline-<preset>``), started only when one is pending and joined by
:meth:`Attachment.detach`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import fnmatch
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, Self

from pyorchestrate import OrchestratorEvent

from .base import DeliveryResult, Notification, Notifier, Severity
from .dispatcher import Dispatcher, ResultHook
from .errors import DispatcherClosed, NotifierConfigError
from .pipeline import (
    OBSERVED_EVENTS,
    AlertPipeline,
    Mute,
    PipelineConfig,
    PipelineTimer,
)
from .retry import RetryPolicy
from .templates import PIPELINE_TEMPLATES, Template, render, render_alert

if TYPE_CHECKING:
    import os

    from .settings import NotifierSettings
    from .state import NotifierState

__all__ = [
    "PRESETS",
    "Attachment",
    "Preset",
    "SupportsRegisterEvent",
    "attach",
    "attach_from_settings",
    "detach",
]

logger = logging.getLogger("notifiers.presets")

EventHandler = Callable[..., object]
"""What is registered for each event: it takes the callback keywords as ``**kwargs``."""

Rules = PipelineConfig | Mapping[str, Any] | AlertPipeline | bool | None
"""What ``attach(rules=...)`` takes: a config, a mapping of its fields, a ready
pipeline, ``None``/``True`` for the defaults, or ``False`` for no rules at all."""


class SupportsRegisterEvent(Protocol):
    """What :func:`attach` needs of an orchestrator (``pyorchestrate.Orchestrator``)."""

    def register_event(
        self, event: OrchestratorEvent, callback: Callable[..., object]
    ) -> None: ...

    def unregister_event(
        self, event: OrchestratorEvent, callback: Callable[..., object]
    ) -> object: ...


def _event(value: object) -> OrchestratorEvent:
    if isinstance(value, OrchestratorEvent):
        return value
    if isinstance(value, str):
        try:
            return OrchestratorEvent(value.lower())
        except ValueError:
            pass
    known = ", ".join(e.value for e in OrchestratorEvent)
    raise ValueError(f"not an orchestrator event: {value!r} (known: {known})")


@dataclass(frozen=True, slots=True)
class Preset:
    """Which events become notifications, from what severity on, with which templates.

    Args:
        name: the preset's name.
        events: the :class:`~pyorchestrate.OrchestratorEvent` members to send.
        min_severity: notifications below it are not sent.
        templates: templates by event value, over
            :data:`~notifiers.templates.DEFAULT_TEMPLATES`.
        description: one line for docs and ``--help``.
    """

    name: str
    events: tuple[OrchestratorEvent, ...]
    min_severity: Severity = Severity.DEBUG
    templates: Mapping[str, Template] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    description: str = ""

    def __post_init__(self) -> None:
        events = tuple(dict.fromkeys(_event(e) for e in self.events))
        if not events:
            raise ValueError(f"preset {self.name!r} has no events")
        object.__setattr__(self, "events", events)
        object.__setattr__(self, "min_severity", Severity.parse(self.min_severity))
        object.__setattr__(self, "templates", MappingProxyType(dict(self.templates)))


PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        "errors_only": Preset(
            "errors_only",
            (OrchestratorEvent.AGENT_ERROR, OrchestratorEvent.AGENT_FATAL),
            description="one alert when an agent fails, one when it is given up (FATAL)",
        ),
        "lifecycle": Preset(
            "lifecycle",
            (
                OrchestratorEvent.AGENT_STARTED,
                OrchestratorEvent.AGENT_READY,
                OrchestratorEvent.AGENT_TERMINATED,
                OrchestratorEvent.AGENT_ERROR,
                OrchestratorEvent.AGENT_RESTARTING,
                OrchestratorEvent.AGENT_FATAL,
            ),
            description="agents starting, ready, terminated, failing, restarting, FATAL",
        ),
    }
)
"""The built-in presets by name."""


_STATUS_SEVERITY = {
    "success": Severity.INFO,
    "warning": Severity.WARNING,
    "error": Severity.ERROR,
    "critical": Severity.CRITICAL,
}


class Attachment:
    """Alerts attached to one orchestrator; :meth:`detach` (or ``with``) ends them.

    Made by :func:`attach`. ``dispatcher`` is the one notifications go to; it is
    closed by :meth:`detach` only if :func:`attach` built it. ``pipeline`` is the
    :class:`~notifiers.pipeline.AlertPipeline` every alert passes (``None`` with
    ``rules=False``).
    """

    def __init__(
        self,
        orchestrator: SupportsRegisterEvent,
        preset: Preset,
        dispatcher: Dispatcher,
        *,
        owns_dispatcher: bool,
        agents: Sequence[str],
        min_severity: Severity,
        templates: Mapping[str, Template],
        pipeline: AlertPipeline | None = None,
    ) -> None:
        self.orchestrator = orchestrator
        self.preset = preset
        self.dispatcher = dispatcher
        self.owns_dispatcher = owns_dispatcher
        self.agents = tuple(agents)
        self.events = frozenset(preset.events)
        self.min_severity = min_severity
        self.templates = MappingProxyType(dict(templates))
        self._agent_pattern = re.compile(
            "|".join(f"(?:{fnmatch.translate(glob)})" for glob in self.agents)
        )
        self._lock = threading.Lock()
        self._attached = False
        self._warned_closed = False
        # One bound-method object, registered for every event: unregister_event
        # compares callbacks by identity.
        self._handler: EventHandler = self._handle
        self.submitted = 0
        self.pipeline = pipeline
        self._observed = frozenset(OBSERVED_EVENTS if pipeline is not None else ())
        # The preset's events, then what the pipeline watches besides (READY for
        # recovery even if the preset does not send it).
        self._registered = tuple(
            dict.fromkeys(
                [*preset.events, *(e for e in OrchestratorEvent if e in self._observed)]
            )
        )
        self._timer = (
            PipelineTimer(
                pipeline, self._submit, name=f"notifiers-pipeline-{preset.name}"
            )
            if pipeline is not None
            else None
        )

    # ------------------------------------------------------------ public
    @property
    def attached(self) -> bool:
        """Whether the handlers are registered."""
        return self._attached

    @property
    def results(self) -> list[DeliveryResult]:
        """The delivery results the dispatcher keeps (a snapshot, oldest first)."""
        return list(self.dispatcher.results)

    def detach(self, timeout: float = 10.0) -> list[DeliveryResult]:
        """Unregister every handler, send what the pipeline still holds (open groups'
        summaries, the quiet-hours digest), stop its timer; close the dispatcher if it
        is ours.

        Idempotent. Returns the notifications the owned dispatcher abandoned (still
        queued at the ``timeout``); ``[]`` for a shared dispatcher or a second call.
        """
        with self._lock:
            if not self._attached:
                return []
            self._attached = False
        for event in self._registered:
            try:
                self.orchestrator.unregister_event(event, self._handler)
            except Exception:
                logger.exception("could not unregister the %s handler", event.value)
        if self._timer is not None and not self._timer.close(5.0):
            logger.error("the alert pipeline's timer thread did not stop")
        if self.pipeline is not None:
            for notification in self.pipeline.flush():
                self._submit(notification, force=True)
        if self.owns_dispatcher:
            return self.dispatcher.close(timeout)
        return []

    def mute(
        self,
        agent: str | None = None,
        event: OrchestratorEvent | str | None = None,
        *,
        seconds: float | None = None,
        until: _dt.datetime | None = None,
        reason: str = "",
    ) -> Mute:
        """Drop this attachment's alerts of ``agent`` (glob) and ``event`` for a while.

        See :meth:`AlertPipeline.mute <notifiers.pipeline.AlertPipeline.mute>`.

        Raises:
            RuntimeError: attached with ``rules=False`` (no pipeline).
        """
        return self._pipeline().mute(
            agent, event, seconds=seconds, until=until, reason=reason
        )

    def unmute(
        self,
        mute: Mute | None = None,
        *,
        agent: str | None = None,
        event: OrchestratorEvent | str | None = None,
    ) -> int:
        """End ``mute`` (or the mutes of ``agent`` and ``event``); return how many."""
        return self._pipeline().unmute(mute, agent=agent, event=event)

    def pump(self) -> int:
        """Submit what the pipeline has due now (the timer does it by itself; this is
        for a fake clock or a test). Returns how many were submitted."""
        if self.pipeline is None:
            return 0
        due = self.pipeline.due()
        for notification in due:
            self._submit(notification)
        return len(due)

    def _pipeline(self) -> AlertPipeline:
        if self.pipeline is None:
            raise RuntimeError(
                "attached with rules=False: there is no pipeline to mute"
            )
        return self.pipeline

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def __repr__(self) -> str:
        state = "attached" if self._attached else "detached"
        return (
            f"<Attachment {self.preset.name!r} {state}, agents {list(self.agents)}, "
            f"channels {self.dispatcher.channels}>"
        )

    # ------------------------------------------------------------ internals
    def _register(self) -> None:
        registered: list[OrchestratorEvent] = []
        self._attached = True  # before registering: the first events may come at once
        try:
            for event in self._registered:
                self.orchestrator.register_event(event, self._handler)
                registered.append(event)
        except BaseException:
            with self._lock:
                self._attached = False
            for event in registered:
                self.orchestrator.unregister_event(event, self._handler)
            raise

    def _handle(self, **kwargs: Any) -> None:
        """Filter, render, pass the pipeline, submit: on the orchestrator's callback
        threads."""
        event = kwargs.get("event")
        forward = event in self.events
        if not forward and event not in self._observed:
            return
        agent = kwargs.get("agent_name")
        if not self._agent_pattern.fullmatch(agent or ""):
            return
        if forward:
            notification = render(kwargs, self.templates)
            severity = max(notification.severity, _severity_of(kwargs))
            forward = severity >= self.min_severity
            if severity != notification.severity:
                notification = dataclasses.replace(notification, severity=severity)
        else:  # only watched by the pipeline: never sent, so not rendered
            notification = _observed(kwargs)
        pipeline = self.pipeline
        if pipeline is None:
            if forward:
                self._submit(notification)
            return
        for out in pipeline.offer(notification, forward=forward):
            self._submit(out)
        if self._timer is not None:
            self._timer.schedule(pipeline.next_due())

    def _submit(self, notification: Notification, *, force: bool = False) -> None:
        with self._lock:
            if not self._attached and not force:  # detached while it was queued
                return
            try:
                self.dispatcher.submit(notification)
            except DispatcherClosed:
                if not self._warned_closed:
                    self._warned_closed = True
                    logger.warning(
                        "preset %r: the dispatcher is closed; notifications are "
                        "dropped until detach()",
                        self.preset.name,
                    )
                return
            self.submitted += 1


def attach(
    orchestrator: SupportsRegisterEvent,
    preset: str | Preset,
    *notifiers: Notifier,
    dispatcher: Dispatcher | None = None,
    agents: str | Sequence[str] = "*",
    events: Iterable[OrchestratorEvent | str] | None = None,
    min_severity: Severity | str | int | None = None,
    templates: Mapping[str, Template] | None = None,
    policy: RetryPolicy | None = None,
    queue_size: int = 1000,
    on_result: Iterable[ResultHook] = (),
    rules: Rules = None,
    muted: Callable[[str | None, str | None], bool] | None = None,
    state: NotifierState | str | os.PathLike[str] | None = None,
    rate_limits: bool = True,
    fallbacks: Mapping[str, str] | None = None,
) -> Attachment:
    """Send ``preset``'s events of ``orchestrator`` to ``notifiers`` (or ``dispatcher``).

    Args:
        orchestrator: anything with ``register_event``/``unregister_event``.
        preset: a name from :data:`PRESETS`, or a :class:`Preset`.
        notifiers: the channels; :func:`attach` builds a :class:`Dispatcher` for them
            and closes it on :meth:`Attachment.detach`.
        dispatcher: use this dispatcher instead (shared: never closed here).
        agents: an ``fnmatch`` glob of agent names, or a list of them.
        events: send only these of the preset's events.
        min_severity: send only notifications at least this severe (default: the
            preset's). A terminated agent's severity follows its termination status.
        templates: templates by event value, over the preset's; also the pipeline's
            texts by name (:data:`~notifiers.templates.PIPELINE_TEMPLATES`).
        policy, queue_size, on_result: for the dispatcher built from ``notifiers``.
        rules: the alert rules (:class:`~notifiers.pipeline.PipelineConfig` or a
            mapping of its fields; ``None``: the defaults: failures grouped over 60 s
            with the first at once, identical alerts once per 5 min, flapping and
            FATAL sent once then quiet; recovery and quiet hours off). ``False``:
            no rules, every alert is sent as it comes. An
            :class:`~notifiers.pipeline.AlertPipeline` is used as it is.
        muted: ``muted(agent, event) -> bool``: drop the alerts it is true for.
        state: the durable state file (a :class:`~notifiers.state.NotifierState` or
            its path) of the dispatcher built here: write-ahead outbox replayed at
            the next start, mutes set by ``pyorchestrate notify mute``, counters
            for ``notify status``. ``None``: memory only.
        rate_limits: limit each destination to its channel's rate (Telegram 1/s
            per chat, 20/min per group; Slack 1/s per webhook).
        fallbacks: escalation chains ``{channel: its fallback}`` (see
            :class:`~notifiers.dispatcher.Dispatcher`).

    Raises:
        TypeError: neither or both of ``notifiers`` and ``dispatcher``; ``muted``
            with ``rules=False`` or with a ready pipeline.
        NotifierConfigError: an unknown preset, an event outside the preset, a bad
            severity, an empty glob, or bad rules (``rules.<field>: reason``).
    """
    chosen = _preset(preset)
    if dispatcher is not None and notifiers:
        raise TypeError("give notifiers or dispatcher=, not both")
    if dispatcher is None and not notifiers:
        raise TypeError("attach() needs at least one notifier, or dispatcher=")
    hooks = tuple(on_result)
    if dispatcher is not None and (policy is not None or hooks):
        raise TypeError(
            "policy= and on_result= apply only to notifiers, not dispatcher="
        )
    globs = [agents] if isinstance(agents, str) else list(agents)
    if not globs or not all(isinstance(g, str) and g for g in globs):
        raise NotifierConfigError(
            "invalid attach() arguments", [("agents", "needs at least one glob")]
        )
    if events is not None:
        chosen = _narrow(chosen, events)
    severity = _min_severity(chosen, min_severity)
    merged = {**chosen.templates, **(templates or {})}
    _check_templates(chosen, merged)
    pipeline = _build_pipeline(rules, muted, merged)
    owned = dispatcher is None
    if dispatcher is None:
        try:
            dispatcher = Dispatcher(
                notifiers,
                policy=policy,
                queue_size=queue_size,
                on_result=hooks,
                state=state,
                close_state=True if state is not None else None,
                rate_limits=rate_limits,
                fallbacks=fallbacks,
            )
        except ValueError as exc:
            raise NotifierConfigError(
                "invalid attach() arguments", [("fallbacks", str(exc))]
            ) from None
    attachment = Attachment(
        orchestrator,
        chosen,
        dispatcher,
        owns_dispatcher=owned,
        agents=globs,
        min_severity=severity,
        templates=merged,
        pipeline=pipeline,
    )
    try:
        attachment._register()
    except BaseException:
        if owned:
            dispatcher.close()
        raise
    logger.info(
        "alerts %r attached: events %s, agents %s, channels %s",
        chosen.name,
        ",".join(e.value for e in chosen.events),
        ",".join(globs),
        ",".join(dispatcher.channels),
    )
    return attachment


def detach(attachment: Attachment, timeout: float = 10.0) -> list[DeliveryResult]:
    """``attachment.detach(timeout)``: unregister, and close an owned dispatcher."""
    return attachment.detach(timeout)


def attach_from_settings(
    orchestrator: SupportsRegisterEvent,
    settings: NotifierSettings | None = None,
    *,
    on_result: Iterable[ResultHook] = (),
) -> Attachment:
    """Attach the channels, preset, agents and severity that ``settings`` name.

    ``settings`` defaults to :func:`~notifiers.settings.load_settings` (environment and
    ``PYORCHESTRATE_NOTIFY_CONFIG_FILE``).

    Raises:
        NotifierConfigError: settings missing or malformed (names the field).
    """
    from .settings import build_notifiers, load_settings

    if settings is None:
        settings = load_settings()
    notifiers = build_notifiers(settings)
    fallbacks: dict[str, str] = {}
    for section, notifier in zip(settings.configured(), notifiers, strict=True):
        wanted = getattr(settings, section).fallback
        if wanted is not None:
            if wanted not in {n.name for n in notifiers}:
                known = ", ".join(n.name for n in notifiers)
                raise NotifierConfigError(
                    "invalid notifier settings",
                    [(f"{section}.fallback", f"no channel named {wanted!r} ({known})")],
                )
            fallbacks[notifier.name] = wanted
    return attach(
        orchestrator,
        settings.preset,
        *notifiers,
        fallbacks=fallbacks,
        agents=settings.agents,
        min_severity=settings.min_severity,
        policy=settings.retry,
        queue_size=settings.queue_size,
        on_result=on_result,
        rules=settings.rules,
        state=settings.open_state(),
        rate_limits=settings.rate_limiting,
    )


# ---------------------------------------------------------------- helpers


def _preset(preset: str | Preset) -> Preset:
    if isinstance(preset, Preset):
        return preset
    try:
        return PRESETS[preset]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise NotifierConfigError(
            "invalid attach() arguments",
            [("preset", f"unknown preset {preset!r}; use one of {known}")],
        ) from None


def _narrow(preset: Preset, events: Iterable[OrchestratorEvent | str]) -> Preset:
    try:
        wanted = [_event(e) for e in events]
    except ValueError as exc:
        raise NotifierConfigError(
            "invalid attach() arguments", [("events", str(exc))]
        ) from None
    outside = [e.value for e in wanted if e not in preset.events]
    if outside or not wanted:
        reason = (
            f"{', '.join(outside)} not in preset {preset.name!r} "
            f"({', '.join(e.value for e in preset.events)})"
            if outside
            else "needs at least one event"
        )
        raise NotifierConfigError("invalid attach() arguments", [("events", reason)])
    return dataclasses.replace(preset, events=tuple(wanted))


def _min_severity(preset: Preset, value: Severity | str | int | None) -> Severity:
    if value is None:
        return preset.min_severity
    try:
        return Severity.parse(value)
    except ValueError as exc:
        raise NotifierConfigError(
            "invalid attach() arguments", [("min_severity", str(exc))]
        ) from None


def _check_templates(preset: Preset, templates: Mapping[str, Template]) -> None:
    """Render each event once now, so a broken template fails here, not per event."""
    errors = []
    for event in preset.events:
        try:
            render({"event": event, "agent_name": "agent"}, templates)
        except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
            errors.append((f"templates.{event.value}", f"cannot render: {exc}"))
    for kind in PIPELINE_TEMPLATES.keys() & templates.keys():
        try:
            render_alert(kind, _SAMPLE_FIELDS, templates)
        except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
            errors.append((f"templates.{kind}", f"cannot render: {exc}"))
    if errors:
        raise NotifierConfigError("invalid attach() arguments", errors)


_SAMPLE_FIELDS: Mapping[str, Any] = MappingProxyType(
    {
        "agent": "agent",
        "event": "agent_error",
        "count": 2,
        "hidden": 1,
        "span": "1 s",
        "window": "60 s",
        "first": "00:00:00",
        "last_time": "00:00:01",
        "first_sent": "",
        "last": "ValueError: x",
        "duration": "1 s",
        "since": "00:00",
        "up_at": "00:00:01",
        "errors": 1,
        "restarts": 1,
        "stable_after": "30 s",
        "outcome": "stable for 30 s",
        "lines": "",
        "shown": 0,
        "more": 0,
        "state": "flapping",
    }
)


def _build_pipeline(
    rules: Rules,
    muted: Callable[[str | None, str | None], bool] | None,
    templates: Mapping[str, Template],
) -> AlertPipeline | None:
    if rules is False:
        if muted is not None:
            raise TypeError("muted= needs the alert rules; not with rules=False")
        return None
    if isinstance(rules, AlertPipeline):
        if muted is not None:
            raise TypeError("give muted= to the AlertPipeline, not to attach()")
        return rules
    config = PipelineConfig.parse(None if rules is True else rules)
    return AlertPipeline(config, muted=muted, templates=templates)


def _observed(kwargs: Mapping[str, Any]) -> Notification:
    """What the pipeline needs of an event it watches but does not send."""
    event = kwargs.get("event")
    generation = kwargs.get("generation_id")
    agent = kwargs.get("agent_name")
    name = str(getattr(event, "value", event))
    return Notification(
        f"{agent}: {name}",
        "",
        _severity_of(kwargs),
        agent=agent,
        event=name,
        generation=generation if isinstance(generation, int) else None,
        error=kwargs.get("error_message"),
    )


def _severity_of(kwargs: Mapping[str, Any]) -> Severity:
    """How bad the event itself says it is (DEBUG when it says nothing).

    A terminated agent's status (``warning``, ``error``, ``critical``) counts, and so
    does its history record's severity when above INFO (INFO is every event's default).
    """
    found = Severity.DEBUG
    status = kwargs.get("termination_status")
    if status is not None:
        found = _STATUS_SEVERITY.get(
            str(getattr(status, "value", status)).lower(), found
        )
    record = kwargs.get("record")
    level = getattr(record, "severity", None)
    if level is not None:
        with contextlib.suppress(ValueError):
            parsed = Severity.parse(str(getattr(level, "value", level)))
            if parsed > Severity.INFO:
                found = max(found, parsed)
    return found
