"""notifiers: alerts from pyorchestrate events to Telegram, email, Slack and webhooks.

Install with ``pip install pyorchestrate[notify]``. The core never imports this package;
alerts attach to an orchestrator through ``register_event`` (see :mod:`notifiers.presets`).

Names load on first use: ``import notifiers`` (and ``pyorchestrate notify --help``)
costs nothing, and a channel's extra (python-telegram-bot, apprise) is only needed by
the channel that uses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import (
        DeliveryResult,
        DeliveryStatus,
        Notification,
        Notifier,
        Severity,
        TextFormat,
    )
    from .channels.apprise import AppriseNotifier
    from .channels.telegram import TelegramNotifier
    from .dispatcher import ChannelStats, ChannelSummary, CloseReport, Dispatcher
    from .errors import (
        DeliveryError,
        DispatcherClosed,
        MaybeDelivered,
        NotifierConfigError,
        NotifierError,
        PermanentDeliveryError,
        RateLimited,
        RetriesExhausted,
        TransientDeliveryError,
    )
    from .pipeline import (
        AlertPipeline,
        GroupRule,
        MuteRule,
        PipelineConfig,
        QuietHours,
    )
    from .presets import (
        PRESETS,
        Attachment,
        Preset,
        attach,
        attach_from_settings,
        detach,
    )
    from .ratelimit import RateLimit, RateLimiter, RateLimitStats, TokenBucket
    from .redact import RedactingFilter, install_log_redaction
    from .retry import RetryPolicy
    from .settings import NotifierSettings, build_notifiers, load_settings
    from .state import NotifierState
    from .templates import (
        DEFAULT_TEMPLATES,
        PIPELINE_TEMPLATES,
        Template,
        format_text,
        render,
    )

# Eager, and light (standard library only): the function shares its module's name, and
# a lazy name would be shadowed by the submodule once anything imports it.
from pyorchestrate._lazy import lazy_exports

from .redact import redact

_LAZY: dict[str, str] = {
    "AlertPipeline": ".pipeline",
    "GroupRule": ".pipeline",
    "MuteRule": ".pipeline",
    "PIPELINE_TEMPLATES": ".templates",
    "PipelineConfig": ".pipeline",
    "QuietHours": ".pipeline",
    "AppriseNotifier": ".channels.apprise",
    "Attachment": ".presets",
    "ChannelStats": ".dispatcher",
    "ChannelSummary": ".dispatcher",
    "CloseReport": ".dispatcher",
    "DEFAULT_TEMPLATES": ".templates",
    "DeliveryError": ".errors",
    "DeliveryResult": ".base",
    "DeliveryStatus": ".base",
    "Dispatcher": ".dispatcher",
    "DispatcherClosed": ".errors",
    "MaybeDelivered": ".errors",
    "Notification": ".base",
    "Notifier": ".base",
    "NotifierConfigError": ".errors",
    "NotifierError": ".errors",
    "NotifierSettings": ".settings",
    "NotifierState": ".state",
    "PRESETS": ".presets",
    "PermanentDeliveryError": ".errors",
    "Preset": ".presets",
    "RateLimit": ".ratelimit",
    "RateLimitStats": ".ratelimit",
    "RateLimited": ".errors",
    "RateLimiter": ".ratelimit",
    "RedactingFilter": ".redact",
    "RetriesExhausted": ".errors",
    "RetryPolicy": ".retry",
    "Severity": ".base",
    "TelegramNotifier": ".channels.telegram",
    "Template": ".templates",
    "TextFormat": ".base",
    "TokenBucket": ".ratelimit",
    "TransientDeliveryError": ".errors",
    "attach": ".presets",
    "attach_from_settings": ".presets",
    "build_notifiers": ".settings",
    "detach": ".presets",
    "format_text": ".templates",
    "install_log_redaction": ".redact",
    "load_settings": ".settings",
    "render": ".templates",
}
"""Each public name and the module that defines it (to add a name: add it here and to
``__all__``)."""


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "DEFAULT_TEMPLATES",
    "PIPELINE_TEMPLATES",
    "PRESETS",
    "AlertPipeline",
    "AppriseNotifier",
    "Attachment",
    "ChannelStats",
    "ChannelSummary",
    "CloseReport",
    "DeliveryError",
    "DeliveryResult",
    "DeliveryStatus",
    "Dispatcher",
    "DispatcherClosed",
    "GroupRule",
    "MaybeDelivered",
    "MuteRule",
    "Notification",
    "Notifier",
    "NotifierConfigError",
    "NotifierError",
    "NotifierSettings",
    "NotifierState",
    "PermanentDeliveryError",
    "PipelineConfig",
    "Preset",
    "QuietHours",
    "RateLimit",
    "RateLimitStats",
    "RateLimited",
    "RateLimiter",
    "RedactingFilter",
    "RetriesExhausted",
    "RetryPolicy",
    "Severity",
    "TelegramNotifier",
    "Template",
    "TextFormat",
    "TokenBucket",
    "TransientDeliveryError",
    "attach",
    "attach_from_settings",
    "build_notifiers",
    "detach",
    "format_text",
    "install_log_redaction",
    "load_settings",
    "redact",
    "render",
]
