"""Presets: one line attaches alerts to an orchestrator.

::

    from notifiers.presets import attach

    attachment = attach(orchestrator, "errors_only", TelegramNotifier(token, chat_id))
    ...
    attachment.detach()  # unregisters, drains, closes; returns what it gave up

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

from .._presets import PRESETS, Preset
from ._attach import attach, detach
from .arguments import Rules as Rules
from .attachment import Attachment
from .events import EventHandler as EventHandler
from .events import SupportsRegisterEvent
from .from_settings import attach_from_settings

__all__ = [
    "PRESETS",
    "Attachment",
    "Preset",
    "SupportsRegisterEvent",
    "attach",
    "attach_from_settings",
    "detach",
]
