"""Test helpers: notifiers that record or fail, and local fakes of the real services.

The fakes listen on 127.0.0.1 only: a fake Telegram Bot API (reached through
python-telegram-bot's own ``base_url``), an SMTP server (aiosmtpd) for ``mailto://``,
and an HTTP sink for ``json://`` webhooks and Slack. The main demo uses them too.
"""

from __future__ import annotations

from .recording import FlakyNotifier, RecordingNotifier
from .smtp import LocalSMTPServer, ReceivedEmail
from .telegram_api import FakeTelegramServer, TelegramReply
from .webhook import Reply, WebhookRequest, WebhookSink

__all__ = [
    "FakeTelegramServer",
    "FlakyNotifier",
    "LocalSMTPServer",
    "ReceivedEmail",
    "RecordingNotifier",
    "Reply",
    "TelegramReply",
    "WebhookRequest",
    "WebhookSink",
]
