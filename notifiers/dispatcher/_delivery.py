"""One delivery: send gate, rate limit, retry policy, classify; one DeliveryResult."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from tenacity import AsyncRetrying

from ..base import DeliveryResult, DeliveryStatus, Notification, Notifier
from ..errors import (
    DeliveryError,
    MaybeDelivered,
    PermanentDeliveryError,
    RateLimited,
    TransientDeliveryError,
)
from ..ratelimit import RateLimiter
from ..redact import redact
from ..retry import error_class
from ._items import ChannelStats

__all__ = ["DeliveryStep", "SendGate"]

logger = logging.getLogger("notifiers.dispatcher")

SendGate = Callable[[Notifier, Notification], Awaitable[None]]
"""Awaited on the dispatcher's loop before each attempt to send (a rate limiter): it
may wait (an asyncio sleep, never a thread's), so only that channel's worker waits."""


class DeliveryStep:
    """Sends one notification on one channel and says how it ended.

    send gate (the rate limiter: waits for a token) → the channel's tenacity
    retrying object (built once per channel, see
    :class:`~notifiers.dispatcher._worker.ChannelWorker`) around ``notifier.send``
    → a foreign error classified by ``notifier.classify`` (a server's retry-after
    also holds the destination's bucket) → one :class:`DeliveryResult`, the
    channel's counters updated and a failure logged. Stateless between
    deliveries: one step serves every channel.
    """

    def __init__(self, gate: SendGate | None) -> None:
        self.gate = gate
        self.rate_limiter = gate if isinstance(gate, RateLimiter) else None

    async def __call__(
        self,
        notifier: Notifier,
        notification: Notification,
        retrying: AsyncRetrying,
        stats: ChannelStats,
        *,
        quiet: bool = False,
    ) -> tuple[DeliveryResult, DeliveryError | None]:
        """Send ``notification`` under ``retrying``; the result and its error.

        ``quiet``: a failure is logged at INFO, not WARNING (a replay, or a parked
        channel's try: its alert was reported when it first failed).
        """
        gate = self.gate
        started = time.monotonic()
        attempts = 0

        async def send() -> None:
            nonlocal attempts
            attempts += 1
            try:
                # The first attempt's wait for a token comes before the retry clock
                # starts (below): a slow rate is not a failing channel.
                if attempts > 1 and gate is not None:
                    await gate(notifier, notification)
                await notifier.send(notification)
            except DeliveryError as exc:
                self._hold_on_rate_limit(notifier, notification, exc)
                raise
            except Exception as exc:
                error = notifier.classify(exc)
                self._hold_on_rate_limit(notifier, notification, error)
                raise error from None

        if gate is not None:
            await gate(notifier, notification)
        retry_clock = time.monotonic()
        status = DeliveryStatus.DELIVERED
        error: DeliveryError | None = None
        try:
            try:
                # Most deliveries end at the first attempt: made here, without
                # tenacity's bookkeeping (about 20 µs a call); only a failure goes
                # on under the retrying object, as its attempt 1.
                await send()
            except Exception as exc:
                await _go_on_retrying(retrying, send, exc, retry_clock)
        except PermanentDeliveryError as exc:
            status, error = DeliveryStatus.PERMANENT, exc
        except MaybeDelivered as exc:
            status, error = DeliveryStatus.MAYBE_DELIVERED, exc
        except DeliveryError as exc:  # transient, rate limited, or our own
            status, error = DeliveryStatus.FAILED, exc
        except Exception as exc:  # a bug in a notifier: record it, keep going
            status = DeliveryStatus.FAILED
            error = TransientDeliveryError(redact(f"{type(exc).__name__}: {exc}"))
        duration = time.monotonic() - started
        stats.observe_delivery(duration)
        if status is DeliveryStatus.DELIVERED:
            stats.sent += 1
            stats.last_success = time.time()
            return (
                DeliveryResult(
                    notification.id,
                    notifier.name,
                    status,
                    attempts=attempts,
                    duration=duration,
                    agent=notification.agent,
                    event=notification.event,
                ),
                None,
            )
        stats.failed += 1
        text = stats.last_error = redact(error) if error else status.value
        # One line per delivery that failed for good, as it happens, naming the
        # channel and the error class.
        cause = error_class(error)
        if not text.startswith(f"{cause}:"):
            text = f"{cause}: {text}"
        logger.log(
            logging.INFO if quiet else logging.WARNING,
            "channel %r: notification %d %s after %d attempt(s): %s",
            notifier.name,
            notification.id,
            status.value,
            attempts,
            text,
        )
        result = DeliveryResult(
            notification.id,
            notifier.name,
            status,
            attempts=attempts,
            error_class=type(error).__name__ if error else None,
            error=redact(error) if error else None,
            duration=duration,
            agent=notification.agent,
            event=notification.event,
        )
        return result, error

    def _hold_on_rate_limit(
        self, notifier: Notifier, notification: Notification, error: DeliveryError
    ) -> None:
        """A server said "retry after N s": every channel sending to that destination
        waits, not just this attempt's retry."""
        if isinstance(error, RateLimited) and self.rate_limiter is not None:
            self.rate_limiter.hold(notifier, notification, error.retry_after)


async def _go_on_retrying(
    retrying: AsyncRetrying,
    send: Callable[[], Awaitable[None]],
    first: Exception,
    started: float,
) -> None:
    """The first attempt failed with ``first``: let ``retrying`` decide about it (as
    its attempt 1, budget counted from ``started``) and make the attempts after."""
    outcome: list[Exception] = [first]

    async def attempt(started: float) -> None:
        if outcome:
            raise outcome.pop()
        await send()

    await retrying(attempt, started=started)
