"""The error tree of the notifier layer.

::

    NotifierError
    ├── NotifierConfigError(…, ValueError)  bad settings or URL; names the field, never the secret
    ├── DeliveryError                       .channel .attempts; message already redacted
    │   ├── TransientDeliveryError          retried: timeouts, 5xx, connection errors
    │   │   ├── RateLimited                 .retry_after (Telegram RetryAfter, HTTP 429)
    │   │   └── MaybeDelivered              a read timeout: the message may have arrived
    │   ├── PermanentDeliveryError          not retried: bad token, chat not found, 4xx
    │   └── RetriesExhausted                .last_error; raised only by send_now()
    └── DispatcherClosed(…, RuntimeError)   submit() after close()
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "DeliveryError",
    "DispatcherClosed",
    "MaybeDelivered",
    "NotifierConfigError",
    "NotifierError",
    "PermanentDeliveryError",
    "RateLimited",
    "RetriesExhausted",
    "TransientDeliveryError",
]


class NotifierError(Exception):
    """Base of every notifier error."""


class NotifierConfigError(NotifierError, ValueError):
    """Settings or a channel URL are invalid.

    The message has one ``field.path: reason`` line per problem and never a secret;
    ``errors`` keeps them as ``(path, reason)`` pairs.
    """

    def __init__(self, title: str, errors: Sequence[tuple[str, str]] = ()) -> None:
        self.title = title
        self.errors: list[tuple[str, str]] = list(errors)
        lines = [f"  {loc}: {msg}" if loc else f"  {msg}" for loc, msg in self.errors]
        super().__init__("\n".join([title, *lines]))


class DeliveryError(NotifierError):
    """A channel could not deliver a notification (the message is redacted)."""

    def __init__(self, message: str, *, channel: str = "", attempts: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.channel = channel
        self.attempts = attempts


class TransientDeliveryError(DeliveryError):
    """Worth retrying: a timeout before sending, a 5xx, a refused connection."""


class RateLimited(TransientDeliveryError):
    """The service asked us to wait ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float, channel: str = "") -> None:
        super().__init__(message, channel=channel)
        self.retry_after = retry_after


class MaybeDelivered(TransientDeliveryError):
    """The request went out but no answer came: retrying may send it twice."""


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help: bad token, unknown chat, forbidden, malformed request."""


class RetriesExhausted(DeliveryError):
    """Every attempt failed; ``last_error`` is the last one's error."""

    def __init__(
        self,
        message: str,
        *,
        last_error: DeliveryError,
        channel: str = "",
        attempts: int = 0,
    ) -> None:
        super().__init__(message, channel=channel, attempts=attempts)
        self.last_error = last_error


class DispatcherClosed(NotifierError, RuntimeError):
    """The dispatcher is closed and takes no more notifications."""
