"""One delivery: gate, retry policy, error classified; the result recorded."""

from __future__ import annotations

import logging
import time

from tenacity import RetryCallState

from ..base import DeliveryResult, DeliveryStatus, Notification, Notifier
from ..errors import (
    DeliveryError,
    MaybeDelivered,
    PermanentDeliveryError,
    RateLimited,
    TransientDeliveryError,
)
from ..redact import redact
from ..retry import RetryPolicy, error_class
from .base import _DispatcherBase
from .channels import _Channel

__all__: list[str] = []

logger = logging.getLogger("notifiers.dispatcher")


class _Delivery(_DispatcherBase):
    """Attempts to send (gated, retried) and the results they end in."""

    async def _deliver(
        self, channel: _Channel, notification: Notification
    ) -> DeliveryResult:
        result, _error = await self._attempt(channel, notification)
        return result

    def _hold_on_rate_limit(
        self, notifier: Notifier, notification: Notification, error: DeliveryError
    ) -> None:
        """A server said "retry after N s": every channel sending to that destination
        waits, not just this attempt's retry."""
        if isinstance(error, RateLimited) and self.rate_limiter is not None:
            self.rate_limiter.hold(notifier, notification, error.retry_after)

    async def _attempt(
        self,
        channel: _Channel,
        notification: Notification,
        *,
        quiet: bool = False,
        policy: RetryPolicy | None = None,
    ) -> tuple[DeliveryResult, DeliveryError | None]:
        """Send under ``policy`` (default: the channel's); the result and its error."""
        notifier = channel.notifier
        started = time.monotonic()
        attempts = 0

        def on_retry(state: RetryCallState) -> None:
            channel.stats.retried += 1

        async def attempt() -> None:
            nonlocal attempts
            attempts += 1
            try:
                # The first attempt's wait for a token comes before the retry clock
                # starts (below): a slow rate is not a failing channel.
                if attempts > 1 and self._gate is not None:
                    await self._gate(notifier, notification)
                await notifier.send(notification)
            except DeliveryError as exc:
                self._hold_on_rate_limit(notifier, notification, exc)
                raise
            except Exception as exc:
                error = notifier.classify(exc)
                self._hold_on_rate_limit(notifier, notification, error)
                raise error from None

        if self._gate is not None:
            await self._gate(notifier, notification)

        status = DeliveryStatus.DELIVERED
        error: DeliveryError | None = None
        try:
            retrying = (policy or channel.policy).retrying(
                sleep=self._sleep, on_retry=on_retry, name=notifier.name
            )
            await retrying(attempt)
        except PermanentDeliveryError as exc:
            status, error = DeliveryStatus.PERMANENT, exc
        except MaybeDelivered as exc:
            status, error = DeliveryStatus.MAYBE_DELIVERED, exc
        except (TransientDeliveryError, RateLimited) as exc:
            status, error = DeliveryStatus.FAILED, exc
        except DeliveryError as exc:
            status, error = DeliveryStatus.FAILED, exc
        except Exception as exc:  # a bug in a notifier: record it, keep going
            status = DeliveryStatus.FAILED
            error = TransientDeliveryError(redact(f"{type(exc).__name__}: {exc}"))
        duration = time.monotonic() - started
        stats = channel.stats
        if status is DeliveryStatus.DELIVERED:
            stats.sent += 1
            stats.last_success = time.time()
        else:
            stats.failed += 1
            stats.last_error = redact(error) if error else status.value
            # One line per delivery that failed for good, as it happens: WARNING
            # (INFO for a replay or a parked channel's try: its alert was reported
            # when it first failed), naming the channel and the error class.
            cause = error_class(error)
            text = stats.last_error
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

    def _record(self, result: DeliveryResult, *, counted: bool = True) -> None:
        self.results.append(result)
        tally = self._tally.get(result.channel)
        if tally is not None:
            tally.add(result)
        self._progress += 1  # close() waits on while results keep coming
        self._progressed.set()
        for hook in list(self._hooks):
            try:
                hook(result)
            except Exception:
                logger.exception("on_result hook %r failed", hook)
        if counted:
            self._recorded += 1
        if self._recorded >= self._due:
            self._notify_idle()

    def _notify_idle(self) -> None:
        with self._idle:
            self._idle.notify_all()
