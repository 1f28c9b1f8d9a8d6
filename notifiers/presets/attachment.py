"""Attachment: the handlers on one orchestrator, the pipeline they feed, detach()."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import fnmatch
import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Self

from pyorchestrate import OrchestratorEvent

from .._presets import Preset
from ..base import DeliveryResult, Notification, Severity
from ..dispatcher import CloseReport, Dispatcher
from ..errors import DispatcherClosed
from ..pipeline import OBSERVED_EVENTS, AlertPipeline, Mute, PipelineTimer
from ..templates import Template, render
from .events import EventHandler, SupportsRegisterEvent, event_severity, observed

__all__ = ["Attachment"]

logger = logging.getLogger("notifiers.presets")


class Attachment:
    """Alerts attached to one orchestrator; :meth:`detach` (or ``with``) ends them.

    Made by :func:`attach`. ``dispatcher`` is the one notifications go to; it is
    closed by :meth:`detach` only if :func:`attach` built it. ``pipeline`` is the
    :class:`~notifiers.pipeline.AlertPipeline` every alert passes (``None`` with
    ``rules=False``).
    """

    EXIT_WAIT = 5.0
    """Seconds a process agent's exception alert waits for the process's end (its
    exit code); then it is sent with ``exit code unknown``."""

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
        # Alerts name the orchestrator (and the host: Notification.host) they come
        # from; the core's events do not carry it.
        name = getattr(orchestrator, "name", None)
        self._orchestrator_name = name if isinstance(name, str) and name else None
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
        # Exception alerts of process agents waiting for the process's end.
        # Each waits at most EXIT_WAIT seconds (a timer), then goes as it is.
        self._awaiting_exit: dict[
            tuple[Any, Any], tuple[Mapping[str, Any], threading.Timer]
        ] = {}
        # The preset's events, then what the pipeline watches besides (READY for
        # recovery even if the preset does not send it) and TERMINATED (the exit
        # code of a process agent's error alert).
        self._registered = tuple(
            dict.fromkeys(
                [
                    *preset.events,
                    *(e for e in OrchestratorEvent if e in self._observed),
                    OrchestratorEvent.AGENT_TERMINATED,
                ]
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

    def detach(self, timeout: float = 10.0, *, max_wait: float = 300.0) -> CloseReport:
        """Unregister every handler, send what the pipeline still holds (open groups'
        summaries, reports of what flapping or FATAL agents held back, the
        quiet-hours digest), stop its timer; close the dispatcher if it is ours.

        Closing waits while deliveries keep ending: it gives up only after
        ``timeout`` seconds without one, or ``max_wait`` seconds in all, so a backlog
        sent at a channel's rate limit (Telegram: a burst of 5, then 1/s) arrives
        whole. A channel that is down, its alerts held in memory (no state file),
        gets one last try. What is given up is not dropped silently: it is
        returned, one ``ABANDONED``
        :class:`~notifiers.base.DeliveryResult` per notification and channel
        (``collections.Counter(r.channel for r in detach())`` counts them per
        channel), and logged with the count per channel: at ERROR without a state
        file (those alerts are lost), at WARNING with one (they stay in its outbox
        and the next dispatcher on the file sends them).

        The list returned is a :class:`~notifiers.dispatcher.CloseReport`: it also
        carries ``summary``, each channel's delivered, failed, dropped and abandoned
        counts, ``ok`` (nothing failed, dropped or abandoned) and a readable
        ``str()``, e.g. ``print(alerts.detach())``.

        Idempotent: a second call returns ``[]`` (an empty report, with the same
        summary), and so does detaching from a shared dispatcher, which stays open
        (and keeps what is queued; its summary so far comes with the report).
        """
        with self._lock:
            if not self._attached:
                return CloseReport((), self.dispatcher.summary())
            self._attached = False
        for event in self._registered:
            try:
                self.orchestrator.unregister_event(event, self._handler)
            except Exception:
                logger.exception("could not unregister the %s handler", event.value)
        with self._lock:
            held, self._awaiting_exit = list(self._awaiting_exit.values()), {}
        for kwargs, timer in held:  # their process has not ended: sent as they are
            timer.cancel()
            timer.join()
            self._process(kwargs, force=True)
        if self._timer is not None and not self._timer.close(5.0):
            logger.error("the alert pipeline's timer thread did not stop")
        if self.pipeline is not None:
            for notification in self.pipeline.flush():
                self._submit(notification, force=True)
        if self.owns_dispatcher:
            return self.dispatcher.close(timeout, max_wait=max_wait)
        return CloseReport((), self.dispatcher.summary())

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
        for notifier in self.dispatcher.notifiers:  # e.g. Telegram's chat commands
            notifier.attached(self.orchestrator, self)
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
        threads (one per agent, so an agent's events come in order)."""
        event = kwargs.get("event")
        agent = kwargs.get("agent_name")
        if not self._agent_pattern.fullmatch(agent or ""):
            return
        key = (agent, kwargs.get("generation_id"))
        if (
            event is OrchestratorEvent.AGENT_ERROR
            and event in self.events
            and kwargs.get("exit_code") is None
            and kwargs.get("signal") is None
            and kwargs.get("pid") not in (None, os.getpid())  # a thread's is ours
        ):
            # A process agent reports its exception before it exits: hold the
            # alert until its end says how (the real exit code or signal).
            timer = threading.Timer(self.EXIT_WAIT, self._exit_not_seen, (key,))
            timer.daemon = True
            timer.name = f"notifiers-exit-wait-{agent}"
            with self._lock:
                self._awaiting_exit[key] = (kwargs, timer)
            timer.start()
            return
        if event is OrchestratorEvent.AGENT_TERMINATED:
            with self._lock:
                held = self._awaiting_exit.pop(key, None)
            if held is not None:
                held[1].cancel()
                held[1].join()
                end = {k: kwargs.get(k) for k in ("exit_code", "signal")}
                self._process({**held[0], **end})
        self._process(kwargs)

    def _exit_not_seen(self, key: tuple[Any, Any]) -> None:
        """On the timer's thread: the process did not end within EXIT_WAIT seconds
        of its error; the alert goes without an exit code."""
        with self._lock:
            held = self._awaiting_exit.pop(key, None)
        if held is not None:
            self._process(held[0])

    def _process(self, kwargs: Mapping[str, Any], *, force: bool = False) -> None:
        event = kwargs.get("event")
        forward = event in self.events
        if not forward and event not in self._observed:
            return
        if forward:
            notification = render(
                {"orchestrator": self._orchestrator_name, **kwargs}, self.templates
            )
            severity = max(notification.severity, event_severity(kwargs))
            forward = severity >= self.min_severity
            if severity is not notification.severity:  # members: no text equality
                notification = dataclasses.replace(notification, severity=severity)
        else:  # only watched by the pipeline: never sent, so not rendered
            notification = observed(kwargs)
        pipeline = self.pipeline
        if pipeline is None:
            if forward:
                self._submit(notification, force=force)
            return
        for out in pipeline.offer(notification, forward=forward):
            self._submit(out, force=force)
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
