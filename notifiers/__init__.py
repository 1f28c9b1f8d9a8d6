"""notifiers: alerts from pyorchestrate events to Telegram, email, Slack and webhooks.

Install with ``pip install pyorchestrate[notify]``. The core never imports this package;
alerts attach to an orchestrator through ``register_event`` (see :mod:`notifiers.presets`).
"""

from __future__ import annotations

import logging

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
from .redact import RedactingFilter, install_log_redaction, redact
from .retry import RetryPolicy
from .templates import DEFAULT_TEMPLATES, Template, format_text, render

logging.getLogger("notifiers").addHandler(logging.NullHandler())

__all__ = [
    "DEFAULT_TEMPLATES",
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
    "PermanentDeliveryError",
    "RateLimited",
    "RedactingFilter",
    "RetriesExhausted",
    "RetryPolicy",
    "Severity",
    "Template",
    "TextFormat",
    "TransientDeliveryError",
    "format_text",
    "install_log_redaction",
    "redact",
    "render",
]
