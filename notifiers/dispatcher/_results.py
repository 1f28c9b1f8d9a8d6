"""Every result of a dispatcher, recorded in one place, on its loop thread."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable

from ..base import DeliveryResult, DeliveryStatus
from ..redact import redact
from ._items import ChannelStats, Item
from ._summary import ChannelSummary, Tally

__all__ = ["ResultHook", "ResultLedger"]

logger = logging.getLogger("notifiers.dispatcher")

ResultHook = Callable[[DeliveryResult], object]


class ResultLedger:
    """Where every :class:`DeliveryResult` goes: the ring buffer, each channel's
    tally, the ``on_result`` hooks, and the counts that ``flush()`` and ``close()``
    wait on.

    Written on the dispatcher's loop thread only. ``flush()`` reads ``due`` and
    ``recorded`` from another thread under ``idle`` (ints: a stale read only makes
    it wait one more round).
    """

    def __init__(
        self,
        channels: Iterable[str],
        *,
        size: int,
        hooks: Iterable[ResultHook],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.results: deque[DeliveryResult] = deque(maxlen=size)
        self.hooks: list[ResultHook] = list(hooks)
        self._tally = {name: Tally() for name in channels}
        self._loop = loop
        self.due = 0  # (notification, channel) pairs that owe a result
        self.recorded = 0  # results recorded for them
        self.progress = 0  # results recorded, of any kind (close() waits on them)
        self._progressed = asyncio.Event()
        self.idle = threading.Condition()
        self._wake_pending = False

    def summary(self) -> dict[str, ChannelSummary]:
        """Each channel's counts so far (any thread)."""
        return {name: tally.snapshot() for name, tally in self._tally.items()}

    @property
    def owing(self) -> bool:
        """Some (notification, channel) still owes its result."""
        return self.recorded < self.due

    def expect(self) -> None:
        """One more (notification, channel) owes a result."""
        self.due += 1

    def record(self, result: DeliveryResult, *, counted: bool = True) -> None:
        """Keep ``result``, count it and pass it to the hooks (their errors are
        logged); ``counted``: it is the result one :meth:`expect` asked for."""
        self.results.append(result)
        tally = self._tally.get(result.channel)
        if tally is not None:
            tally.add(result)
        self.progress += 1
        self._progressed.set()
        for hook in list(self.hooks):
            try:
                hook(result)
            except Exception:
                logger.exception("on_result hook %r failed", hook)
        if counted:
            self.recorded += 1
        if self.recorded >= self.due:
            self.notify_idle()

    def notify_idle(self) -> None:
        """Wake ``flush()`` once the loop has run what is ready now.

        Deferred to the loop's next turn, so the thread that waits in ``flush()``
        gets the GIL back when this thread is about to sleep in its selector, not
        while it still finishes the delivery that just ended (which made the next
        ``submit()`` after a ``flush()`` wait for that tail).
        """
        if not self._wake_pending:
            self._wake_pending = True
            self._loop.call_soon(self._wake_waiters)

    def _wake_waiters(self) -> None:
        self._wake_pending = False
        with self.idle:
            self.idle.notify_all()

    def dropped(
        self,
        channel: str,
        stats: ChannelStats,
        item: Item,
        why: str,
        *why_args: object,
        error_class: str | None = None,
        counted: bool = True,
    ) -> None:
        """Count ``item`` as dropped by ``channel``, say so at ERROR and record it as
        DROPPED. ``why`` is the log message after ``"channel %r: "``; its
        placeholders take ``why_args``, then the notification's id and its redacted
        title, in that order."""
        stats.dropped += 1
        notification = item.notification
        message = "channel %r: " + why
        logger.error(
            message,
            channel,
            *why_args,
            notification.id,
            redact(notification.title),
        )
        self.record(
            DeliveryResult(
                notification.id,
                channel,
                DeliveryStatus.DROPPED,
                error_class=error_class,
                agent=notification.agent,
                event=notification.event,
            ),
            counted=counted,
        )

    def behind(self, channel: str, item: Item, error_class: str, kept: str) -> None:
        """Give a counted ``item`` its result now: FAILED (``error_class``), ``kept``
        behind an earlier failure on ``channel`` until it is back."""
        item.counted = False  # its later delivery is an extra result
        notification = item.notification
        self.record(
            DeliveryResult(
                notification.id,
                channel,
                DeliveryStatus.FAILED,
                error_class=error_class,
                error=f"{kept} behind an earlier failure on this channel; "
                "sent in order when the channel is back",
                agent=notification.agent,
                event=notification.event,
            )
        )

    def abandoned(self, channel: str, item: Item) -> DeliveryResult:
        """Record ``item`` as ABANDONED (close() ended before it was delivered)."""
        result = DeliveryResult(
            item.notification.id,
            channel,
            DeliveryStatus.ABANDONED,
            agent=item.notification.agent,
            event=item.notification.event,
        )
        self.record(result, counted=item.counted)
        return result

    async def wait_while_progressing(
        self, tasks: set[asyncio.Task[None]], idle: float, limit: float
    ) -> set[asyncio.Task[None]]:
        """Wait for ``tasks`` while results keep coming: give up after ``idle``
        seconds without one, or ``limit`` seconds in all. Returns those not done."""
        loop = self._loop
        started = loop.time()
        seen = self.progress
        quiet_since = started
        pending = set(tasks)
        while pending:
            now = loop.time()
            if self.progress != seen:
                seen, quiet_since = self.progress, now
            remaining = min(quiet_since + idle, started + limit) - now
            if remaining <= 0:
                break
            self._progressed.clear()
            progressed = loop.create_task(self._progressed.wait())
            try:
                done, _ = await asyncio.wait(
                    {*pending, progressed},
                    timeout=remaining,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                progressed.cancel()
            pending -= done
        return pending
