"""notifiers: alerts from pyorchestrate events to Telegram, email, Slack and webhooks.

Install with ``pip install pyorchestrate[notify]``. The core never imports this package;
alerts attach to an orchestrator through ``register_event`` (see :mod:`notifiers.presets`).
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .apprise import AppriseNotifier
    from .telegram import TelegramNotifier

from .base import (
    DeliveryResult,
    DeliveryStatus,
    Notification,
    Notifier,
    Severity,
    TextFormat,
)
from .dispatcher import ChannelStats, Dispatcher
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
from .presets import PRESETS, Attachment, Preset, attach, attach_from_settings, detach
from .redact import RedactingFilter, install_log_redaction, redact
from .retry import RetryPolicy
from .settings import NotifierSettings, build_notifiers, load_settings
from .templates import DEFAULT_TEMPLATES, Template, format_text, render

logging.getLogger("notifiers").addHandler(logging.NullHandler())

# The channels need their extra (python-telegram-bot, apprise): loaded on first use,
# so ``pip install pyorchestrate[telegram]`` alone still imports this package.
_CHANNELS = {"TelegramNotifier": ".telegram", "AppriseNotifier": ".apprise"}


def __getattr__(name: str) -> Any:
    module = _CHANNELS.get(name)
    if module is None:
        raise AttributeError(f"module 'notifiers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_TEMPLATES",
    "PRESETS",
    "AppriseNotifier",
    "Attachment",
    "ChannelStats",
    "DeliveryError",
    "DeliveryResult",
    "DeliveryStatus",
    "Dispatcher",
    "DispatcherClosed",
    "MaybeDelivered",
    "Notification",
    "Notifier",
    "NotifierConfigError",
    "NotifierError",
    "NotifierSettings",
    "PermanentDeliveryError",
    "Preset",
    "RateLimited",
    "RedactingFilter",
    "RetriesExhausted",
    "RetryPolicy",
    "Severity",
    "TelegramNotifier",
    "Template",
    "TextFormat",
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
