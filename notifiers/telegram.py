"""The Telegram channel's former home: it is :mod:`notifiers.channels.telegram` now.

This import path keeps working (``from notifiers.telegram import TelegramNotifier``).
"""

from __future__ import annotations

from .channels.telegram import SecretLike, TelegramNotifier

__all__ = ["SecretLike", "TelegramNotifier"]
