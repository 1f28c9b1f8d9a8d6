"""A channel's outbox: rows settled, the channel parked, rows deferred and replayed."""

from __future__ import annotations

import asyncio
import logging

from ..base import DeliveryResult, DeliveryStatus
from ..errors import DeliveryError, RateLimited
from ..redact import redact
from ..state import OutboxRow
from .channels import _Channel, _Item
from .statefile import _StateFile

__all__: list[str] = []

logger = logging.getLogger("notifiers.dispatcher")


class _Outbox(_StateFile):
    """What becomes of an item's outbox row, and of the alerts behind a failure."""

    def _settle(
        self,
        channel: _Channel,
        item: _Item,
        result: DeliveryResult,
        error: DeliveryError | None,
        *,
        from_outbox: bool = False,
    ) -> bool:
        """Update the outbox row, record the result; park the channel on a failure
        that the outbox keeps. Returns whether it parked."""
        status, row, state = result.status, item.row, self._state
        parks = False
        if state is not None and row is not None:
            if status is DeliveryStatus.DELIVERED:
                self._done(row)
            else:
                mark = state.failed if status is DeliveryStatus.FAILED else state.dead
                self._db(
                    f"mark {status.value}",
                    lambda: mark(
                        row,
                        attempts=result.attempts,
                        error=result.error,
                        error_class=result.error_class,
                    ),
                )
                parks = status is DeliveryStatus.FAILED
        if status is DeliveryStatus.DELIVERED and from_outbox:
            channel.stats.replayed += 1
        if item.counted or not parks:
            self._record(result, counted=item.counted)
        if parks:
            assert row is not None
            if item.counted:
                channel.stats.outboxed += 1
                item.counted = False  # its later delivery is an extra result
            channel.awaiting[row] = item  # tried again from the outbox, as it is
            self._park(channel, error)
        elif (
            state is None
            and status is DeliveryStatus.FAILED
            and not channel.closing
            and not channel.stop_seen
            and (channel.held or not self._queue_empty(channel))
        ):
            # No outbox: this one is given up (its retries ran out), but the
            # alerts behind it wait for the channel instead of each running into
            # the same failure with retries of its own.
            self._park_in_memory(channel, error)
            parks = True
        return parks

    @staticmethod
    def _queue_empty(channel: _Channel) -> bool:
        return channel.queue is None or channel.queue.empty()

    def _park_in_memory(self, channel: _Channel, error: DeliveryError | None) -> None:
        """Without a state: hold the alerts queued for the channel (in order) and try
        again in ``outbox_retry`` seconds (or the server's longer retry-after)."""
        assert channel.queue is not None
        delay = self._outbox_retry
        if isinstance(error, RateLimited):
            delay = max(delay, error.retry_after)
        behind: list[_Item] = []
        while not channel.queue.empty():  # no await: nothing slips in between
            entry = channel.queue.get_nowait()
            if entry is None:
                channel.stop_seen = True
            elif isinstance(entry, _Item):
                behind.append(entry)
        for item in behind:
            self._hold(channel, item)
        channel.probe = self._loop.create_task(self._wait(delay))
        logger.warning(
            "channel %r parked: %d alert(s) wait in memory (no state file); next "
            "try in %.0f s",
            channel.notifier.name,
            len(channel.held),
            delay,
        )
        self._notify_idle()

    def _hold(self, channel: _Channel, item: _Item) -> None:
        """Keep ``item`` in memory behind the channel's failure, recorded as such."""
        if len(channel.held) >= self.queue_size:
            self._record_dropped(
                channel,
                item,
                "%d alerts held; dropped notification %d (%s)",
                len(channel.held),
                counted=item.counted,
            )
            return
        channel.held.append(item)
        if item.counted:
            channel.stats.held += 1
            self._record_behind(channel, item, "Held", "held in memory")

    def _park(self, channel: _Channel, error: DeliveryError | None) -> None:
        delay = self._outbox_retry
        if isinstance(error, RateLimited):
            delay = max(delay, error.retry_after)
        channel.backlog = True
        channel.probe = self._loop.create_task(self._wait(delay))
        for item in channel.awaiting.values():
            self._record_outboxed(channel, item)
        logger.warning(
            "channel %r parked: its alerts wait in the outbox; next try in %.0f s",
            channel.notifier.name,
            delay,
        )
        self._notify_idle()

    async def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            await self._sleep(seconds)
        else:
            await asyncio.sleep(seconds)

    def _defer(self, channel: _Channel, item: _Item) -> None:
        """An item whose row the outbox delivers (in order) instead of the queue."""
        assert item.row is not None
        if channel.probe is not None:  # parked: it will wait; say so now
            self._record_outboxed(channel, item)
        channel.awaiting[item.row] = item

    def _record_outboxed(self, channel: _Channel, item: _Item) -> None:
        if item.counted:
            channel.stats.outboxed += 1
            self._record_behind(channel, item, "Outboxed", "kept in the outbox")

    def _record_behind(
        self, channel: _Channel, item: _Item, error_class: str, kept: str
    ) -> None:
        """Give a counted ``item`` its result now: FAILED (``error_class``), ``kept``
        behind an earlier failure on ``channel`` until it is back."""
        item.counted = False  # its later delivery is an extra result
        notification = item.notification
        self._record(
            DeliveryResult(
                notification.id,
                channel.notifier.name,
                DeliveryStatus.FAILED,
                error_class=error_class,
                error=f"{kept} behind an earlier failure on this channel; "
                "sent in order when the channel is back",
                agent=notification.agent,
                event=notification.event,
            )
        )

    def _replayed(self, row: OutboxRow) -> _Item | None:
        try:
            notification = row.notification()
        except Exception as exc:
            state = self._state
            assert state is not None
            reason = type(exc).__name__
            logger.error(
                "outbox row %d (%s) cannot be read: %s; marked dead",
                row.id,
                row.channel,
                redact(exc),
            )
            self._db(
                "mark dead",
                lambda: state.dead(row.id, error=f"unreadable: {reason}"),
            )
            return None
        return _Item(notification, row.id, counted=False)

    def _record_evicted(self, channel: _Channel, item: _Item) -> None:
        self._record_dropped(
            channel,
            item,
            "notification %d (%s) left the outbox before it was sent "
            "(evicted or purged)",
            error_class="Evicted",
            counted=item.counted,
        )

    def _record_dropped(
        self,
        channel: _Channel,
        item: _Item,
        why: str,
        *why_args: object,
        error_class: str | None = None,
        counted: bool = True,
    ) -> None:
        """Count ``item`` as dropped by ``channel``, say so at ERROR and record it as
        DROPPED. ``why`` is the log message after ``"channel %r: "``; its
        placeholders take ``why_args``, then the notification's id and its redacted
        title, in that order."""
        channel.stats.dropped += 1
        notification = item.notification
        message = "channel %r: " + why
        logger.error(
            message,
            channel.notifier.name,
            *why_args,
            notification.id,
            redact(notification.title),
        )
        self._record(
            DeliveryResult(
                notification.id,
                channel.notifier.name,
                DeliveryStatus.DROPPED,
                error_class=error_class,
                agent=notification.agent,
                event=notification.event,
            ),
            counted=counted,
        )
