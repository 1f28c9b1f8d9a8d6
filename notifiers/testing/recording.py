"""Notifiers for tests: one that records, one that fails on cue."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from ..base import Notification, Notifier
from ..errors import DeliveryError, TransientDeliveryError
from ._waiting import wait_for_items

__all__ = ["FlakyNotifier", "RecordingNotifier"]


class RecordingNotifier(Notifier):
    """Keeps every notification it is sent (thread-safe); can wait for them."""

    channel = "recording"

    def __init__(self, *, name: str | None = None, delay: float = 0.0) -> None:
        super().__init__(name=name)
        self.delay = delay
        self.sent: list[Notification] = []
        self._cond = threading.Condition()

    async def send(self, notification: Notification) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._cond:
            self.sent.append(notification)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Notification]:
        """Wait until ``count`` notifications arrived; return them all.

        Raises:
            TimeoutError: listing the titles seen, if they did not arrive in time.
        """
        return wait_for_items(
            self._cond,
            self.sent,
            count,
            timeout,
            what="notifications",
            describe=lambda n: n.title,
        )


class FlakyNotifier(Notifier):
    """Raises the given errors on its first sends, then records (through a
    :class:`RecordingNotifier` of its own: :attr:`sent`, :meth:`wait_for`).

    Args:
        errors: raised in order, one per attempt (default: two transient errors).
    """

    channel = "flaky"

    def __init__(
        self,
        errors: Sequence[DeliveryError] | None = None,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self._errors = list(
            errors if errors is not None else [TransientDeliveryError("flaky")] * 2
        )
        self._recorder = RecordingNotifier(name=self.name)
        self.attempts = 0

    @property
    def sent(self) -> list[Notification]:
        """What went through, once the errors were used up."""
        return self._recorder.sent

    async def send(self, notification: Notification) -> None:
        self.attempts += 1
        if self._errors:
            raise self._errors.pop(0)
        await self._recorder.send(notification)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Notification]:
        """As :meth:`RecordingNotifier.wait_for`."""
        return self._recorder.wait_for(count, timeout)
