"""The apprise channel's former home: it is :mod:`notifiers.channels.apprise` now
(with :mod:`~notifiers.channels.email`, :mod:`~notifiers.channels.slack` and
:mod:`~notifiers.channels.webhook` built on it).

This import path keeps working (``from notifiers.apprise import AppriseNotifier``).
"""

from __future__ import annotations

from .channels.apprise import AppriseNotifier

__all__ = ["AppriseNotifier"]
