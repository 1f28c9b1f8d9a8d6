"""attach() and detach(): a preset's events of an orchestrator sent to channels."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from pyorchestrate import OrchestratorEvent

from .._presets import Preset
from ..base import Notifier, Severity
from ..dispatcher import CloseReport, Dispatcher, ResultHook
from ..errors import NotifierConfigError
from ..retry import RetryPolicy
from ..templates import Template
from .arguments import (
    Rules,
    build_pipeline,
    check_templates,
    narrow,
    resolve_min_severity,
    resolve_preset,
)
from .attachment import Attachment
from .events import SupportsRegisterEvent

if TYPE_CHECKING:
    import os

    from ..state import NotifierState

__all__ = ["attach", "detach"]

logger = logging.getLogger("notifiers.presets")


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
        policy: the retry policy of the dispatcher built from ``notifiers``.
        queue_size: pending notifications per channel of that dispatcher.
        on_result: result hooks of that dispatcher.
        rules: the alert rules (:class:`~notifiers.pipeline.PipelineConfig` or a
            mapping of its fields; ``None``: the defaults: failures grouped over 60 s
            with the first at once, identical alerts once per 5 min, flapping and
            FATAL sent once then quiet, what the quiet holds back reported when it
            ends, every 5 min (``held_report_interval``) and at detach; recovery
            and quiet hours off). ``False``: no rules, every alert is sent as it
            comes. An :class:`~notifiers.pipeline.AlertPipeline` is used as it is.
        muted: ``muted(agent, event) -> bool``: drop the alerts it is true for.
        state: the durable state file (a :class:`~notifiers.state.NotifierState` or
            its path) of the dispatcher built here: write-ahead outbox replayed at
            the next start, mutes set by ``pyorchestrate notify mute``, counters
            for ``notify status``. ``None``: memory only.
        rate_limits: limit each destination to its channel's rate (Telegram: per
            chat a burst of 5, then 1/s; per group a burst of 5, then 15/min,
            never over 20 a minute; 30/s per bot. Slack 1/s per webhook).
        fallbacks: escalation chains ``{channel: its fallback}`` (see
            :class:`~notifiers.dispatcher.Dispatcher`).

    Raises:
        TypeError: neither or both of ``notifiers`` and ``dispatcher``; ``muted``
            with ``rules=False`` or with a ready pipeline.
        NotifierConfigError: an unknown preset, an event outside the preset, a bad
            severity, an empty glob, or bad rules (``rules.<field>: reason``).
    """
    chosen = resolve_preset(preset)
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
        chosen = narrow(chosen, events)
    severity = resolve_min_severity(chosen, min_severity)
    merged = {**chosen.templates, **(templates or {})}
    check_templates(chosen, merged)
    pipeline = build_pipeline(rules, muted, merged)
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


def detach(
    attachment: Attachment, timeout: float = 10.0, *, max_wait: float = 300.0
) -> CloseReport:
    """``attachment.detach(timeout, max_wait=max_wait)``: unregister, and close an
    owned dispatcher; returns what it gave up, with a summary per channel (see
    :meth:`Attachment.detach`)."""
    return attachment.detach(timeout, max_wait=max_wait)
