"""One channel's worker: its queue, its counters, its retrying, and what it holds."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from tenacity import AsyncRetrying, RetryCallState

from ..base import DeliveryResult, DeliveryStatus, Notification, Notifier
from ..errors import DeliveryError, RateLimited
from ..redact import redact
from ..retry import RetryPolicy
from ._delivery import DeliveryStep
from ._items import WAKE, ChannelStats, Item, Wake
from ._outbox import Outbox
from ._results import ResultLedger

if TYPE_CHECKING:
    from ..state import OutboxRow

__all__ = ["ChannelWorker"]

logger = logging.getLogger("notifiers.dispatcher")

_OUTBOX_BATCH = 100  # rows read from the outbox at a time
_HANDED_OVER = frozenset({DeliveryStatus.FAILED, DeliveryStatus.PERMANENT})
"""Ends of a delivery that send the notification on to the channel's fallback (not
MAYBE_DELIVERED: it may have arrived, and a second channel would say it twice)."""


class ChannelWorker:
    """A channel's bulkhead, on the dispatcher's loop: its bounded queue, the task
    that empties it one delivery at a time, its counters, and its retrying object
    (built once, here, from the channel's policy).

    A channel whose alert failed for good (retries ran out) is *parked*: what waits
    behind that alert is held (in memory, or in the outbox when it is durable) until
    ``outbox_retry`` seconds have passed; then the oldest is tried once, and if it
    gets through the rest follows in order. With a durable outbox, the worker
    delivers from the outbox, oldest row first, while it has a ``backlog``.
    """

    def __init__(
        self,
        notifier: Notifier,
        policy: RetryPolicy,
        *,
        deliver: DeliveryStep,
        outbox: Outbox,
        ledger: ResultLedger,
        sleep: Callable[[float], Awaitable[None]] | None,
        queue_size: int,
        outbox_retry: float,
    ) -> None:
        self.notifier = notifier
        self.name = notifier.name
        self.policy = policy
        self.stats = ChannelStats()
        self._deliver = deliver
        self._outbox = outbox
        self._ledger = ledger
        self._sleep = sleep
        self.queue_size = queue_size
        self._outbox_retry = outbox_retry
        # Built once per channel: tenacity's AsyncRetrying keeps nothing of one call
        # that another needs (each call has its own RetryCallState), and its
        # iteration never awaits between steps, so calls may even overlap
        # (send_now() beside the worker).
        self.retrying = policy.retrying(
            sleep=sleep, on_retry=self._count_retry, name=self.name
        )
        self._single: AsyncRetrying | None = None  # one attempt: a parked try
        self.fallback: ChannelWorker | None = None  # set by the dispatcher
        self.queue: asyncio.Queue[Item | Wake | None] = asyncio.Queue(queue_size)
        self.task: asyncio.Task[None] | None = None
        self.started = asyncio.Event()
        self.current: Item | None = None
        self.closing = False
        self.stop_seen = False
        # With a durable outbox: it holds alerts that go before the queue's, so the
        # worker delivers from the outbox (in row order) until it is empty.
        self.backlog = False
        self.probe: asyncio.Task[None] | None = None  # parked: the wait to try again
        # Items whose outbox rows the worker delivers instead (by row id): the same
        # objects (same ids in results); those still ``counted`` owe their result.
        self.awaiting: dict[int, Item] = {}
        # Without one, while parked: the alerts behind the failure, oldest first.
        self.held: deque[Item] = deque()
        self.releasing = False  # delivering what was held (flush() waits for it)

    def _count_retry(self, state: RetryCallState) -> None:
        self.stats.retried += 1

    # ------------------------------------------------------------ outside
    def launch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the worker task (it waits until the channel has started)."""
        self._loop = loop
        self.task = loop.create_task(self.run())

    async def start_channel(self) -> None:
        """Start the notifier (a failure is logged; the worker runs anyway)."""
        try:
            await self.notifier.start()
        except Exception as exc:
            logger.error("channel %r failed to start: %s", self.name, redact(exc))
        finally:
            self.started.set()

    @property
    def busy(self) -> bool:
        """Delivering a backlog or what it held (not parked, waiting to try)."""
        return bool(self.backlog or self.held or self.releasing) and self.probe is None

    def snapshot(self) -> ChannelStats:
        stats = dataclasses.replace(self.stats)
        stats.delivery_buckets = list(stats.delivery_buckets)  # not the live list
        stats.queued = self.queue.qsize() + len(self.held)
        return stats

    def restore(self, saved: Mapping[str, object]) -> None:
        last_success, last_error = saved.get("last_success"), saved.get("last_error")
        self.stats.last_success = (
            float(last_success) if isinstance(last_success, int | float) else None
        )
        self.stats.last_error = last_error if isinstance(last_error, str) else None

    def replay_backlog(self) -> None:
        self.backlog = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(WAKE)

    def enqueue(self, item: Item) -> None:
        """Queue ``item``; a full queue drops it (it waits in the outbox if kept)."""
        try:
            self.queue.put_nowait(item)
            return
        except asyncio.QueueFull:
            pass
        if item.row is not None:  # it waits in the outbox instead, in order
            if not self.backlog:
                logger.warning(
                    "channel %r: queue full (%d pending); alerts wait in the outbox",
                    self.name,
                    self.queue_size,
                )
            self.backlog = True
            self._defer(item)
            return
        self._ledger.dropped(
            self.name,
            self.stats,
            item,
            "queue full (%d pending); dropped notification %d (%s)",
            self.queue_size,
        )

    async def attempt(
        self, notification: Notification, *, quiet: bool = False, once: bool = False
    ) -> tuple[DeliveryResult, DeliveryError | None]:
        """One delivery under the channel's retrying (``once``: a single attempt)."""
        retrying = self.retrying
        if once:
            if self._single is None:
                single = self.policy.model_copy(update={"max_attempts": 1})
                self._single = single.retrying(
                    sleep=self._sleep, on_retry=self._count_retry, name=self.name
                )
            retrying = self._single
        return await self._deliver(
            self.notifier, notification, retrying, self.stats, quiet=quiet
        )

    def stop(self) -> None:
        """close(): let the worker end once its queue is delivered."""
        self.closing = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)
        if self.probe is not None:
            # A parked channel stops at once (with an outbox) or after one last
            # try (without one: what it holds would be lost).
            self.probe.cancel()

    def abandon(self, *, cut_off: bool) -> list[DeliveryResult]:
        """close() is done waiting: record what is left as ABANDONED (``cut_off``:
        the worker did not end in time and is cancelled, mid-delivery perhaps)."""
        leftovers: list[Item] = []
        if cut_off and self.task is not None:
            self.task.cancel()
            if self.current is not None:
                leftovers.append(self.current)
                self.current = None
        while not self.queue.empty():
            queued = self.queue.get_nowait()
            if isinstance(queued, Item):
                leftovers.append(queued)
        leftovers += [self.awaiting[k] for k in sorted(self.awaiting)]
        self.awaiting.clear()
        leftovers += self.held  # without an outbox: held behind a failure
        self.held.clear()
        abandoned = []
        for item in leftovers:
            if not item.counted and item.row is not None:
                continue  # it stays in the outbox, as it was
            self.stats.abandoned += 1
            abandoned.append(self._ledger.abandoned(self.name, item))
        return abandoned

    # ------------------------------------------------------------ the task
    async def run(self) -> None:
        await self.started.wait()
        queue_ = self.queue
        while True:
            if self.backlog:
                if not await self._work_outbox():
                    return
                continue
            if self.probe is not None or self.held:  # parked, no outbox
                if not await self._work_held():
                    return
                continue
            entry = await queue_.get()
            if entry is None:
                return
            if not isinstance(entry, Item):
                continue  # a wake-up: the outbox has rows for this channel
            if self.backlog and entry.row is not None:
                self._defer(entry)  # the outbox goes first
                continue
            await self._deliver_item(entry)
            if (
                self.closing
                and queue_.empty()
                and (not self.backlog or self.probe is not None)
            ):
                return  # closing, and the stop marker found no room in a full queue

    async def _deliver_item(self, item: Item, *, from_outbox: bool = False) -> bool:
        """Deliver one item and settle it; ``True`` if that parked the channel."""
        self.current = item
        result, error = await self.attempt(item.notification, quiet=not item.counted)
        self.current = None
        if item.fallback_for is not None:
            result = dataclasses.replace(result, fallback_for=item.fallback_for)
        if self.fallback is not None and result.status in _HANDED_OVER:
            self._hand_over(self.fallback, item, result)
            return False
        return self._settle(item, result, error, from_outbox=from_outbox)

    def _hand_over(
        self, fallback: ChannelWorker, item: Item, result: DeliveryResult
    ) -> None:
        """This channel could not deliver ``item``: record that, and give it to its
        fallback (which owns it from now on, in the outbox too)."""
        notification = item.notification
        logger.warning(
            "channel %r failed notification %d (%s): handing it to %r",
            self.name,
            notification.id,
            result.status.value,
            fallback.name,
        )
        row: int | None = None
        if self._outbox.durable:
            row = self._outbox.hand_over(notification, fallback.name)
            if item.row is not None:
                self._outbox.delivered(item.row)  # the fallback's row replaces it
        if item.counted:
            self._ledger.expect()  # first: flush() must never see it settled
            self._ledger.record(result)
        fallback.enqueue(
            Item(notification, row, counted=item.counted, fallback_for=self.name)
        )

    def _settle(
        self,
        item: Item,
        result: DeliveryResult,
        error: DeliveryError | None,
        *,
        from_outbox: bool = False,
    ) -> bool:
        """Settle the outbox row, record the result; park the channel on a failure
        that the outbox keeps. Returns whether it parked."""
        status, row = result.status, item.row
        parks = False
        if row is not None:
            if status is DeliveryStatus.DELIVERED:
                self._outbox.delivered(row)
            else:
                parks = self._outbox.keep(row, result)
        if status is DeliveryStatus.DELIVERED and from_outbox:
            self.stats.replayed += 1
        if item.counted or not parks:
            self._ledger.record(result, counted=item.counted)
        if parks:
            assert row is not None
            if item.counted:
                self.stats.outboxed += 1
                item.counted = False  # its later delivery is an extra result
            self.awaiting[row] = item  # tried again from the outbox, as it is
            self._park(error)
        elif (
            not self._outbox.durable
            and status is DeliveryStatus.FAILED
            and not self.closing
            and not self.stop_seen
            and (self.held or not self.queue.empty())
        ):
            # No outbox: this one is given up (its retries ran out), but the
            # alerts behind it wait for the channel instead of each running into
            # the same failure with retries of their own.
            self._park_in_memory(error)
            parks = True
        return parks

    # ------------------------------------------------------------ parked
    def _park_in_memory(self, error: DeliveryError | None) -> None:
        """Without an outbox: hold the alerts queued for the channel (in order) and
        try again in ``outbox_retry`` seconds (or the server's longer retry-after)."""
        behind: list[Item] = []
        while not self.queue.empty():  # no await: nothing slips in between
            entry = self.queue.get_nowait()
            if entry is None:
                self.stop_seen = True
            elif isinstance(entry, Item):
                behind.append(entry)
        for item in behind:
            self._hold(item)
        delay = self._retry_delay(error)
        self.probe = self._loop.create_task(self._wait(delay))
        logger.warning(
            "channel %r parked: %d alert(s) wait in memory (no state file); next "
            "try in %.0f s",
            self.name,
            len(self.held),
            delay,
        )
        self._ledger.notify_idle()

    def _hold(self, item: Item) -> None:
        """Keep ``item`` in memory behind the channel's failure, recorded as such."""
        if len(self.held) >= self.queue_size:
            self._ledger.dropped(
                self.name,
                self.stats,
                item,
                "%d alerts held; dropped notification %d (%s)",
                len(self.held),
                counted=item.counted,
            )
            return
        self.held.append(item)
        if item.counted:
            self.stats.held += 1
            self._ledger.behind(self.name, item, "Held", "held in memory")

    def _park(self, error: DeliveryError | None) -> None:
        """With an outbox: what waits behind the failure stays in it until the
        channel's next try."""
        delay = self._retry_delay(error)
        self.backlog = True
        self.probe = self._loop.create_task(self._wait(delay))
        for item in self.awaiting.values():
            self._record_outboxed(item)
        logger.warning(
            "channel %r parked: its alerts wait in the outbox; next try in %.0f s",
            self.name,
            delay,
        )
        self._ledger.notify_idle()

    def _retry_delay(self, error: DeliveryError | None) -> float:
        if isinstance(error, RateLimited):
            return max(self._outbox_retry, error.retry_after)
        return self._outbox_retry

    async def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            await self._sleep(seconds)
        else:
            await asyncio.sleep(seconds)

    def _defer(self, item: Item) -> None:
        """An item whose row the outbox delivers (in order) instead of the queue."""
        assert item.row is not None
        if self.probe is not None:  # parked: it will wait; say so now
            self._record_outboxed(item)
        self.awaiting[item.row] = item

    def _record_outboxed(self, item: Item) -> None:
        if item.counted:
            self.stats.outboxed += 1
            self._ledger.behind(self.name, item, "Outboxed", "kept in the outbox")

    async def _next_while_parked(self) -> Item | None:
        """While parked: wait for whichever comes first, the next entry of the queue
        or the end of the probe (its time came, or close() wants a last try).
        Returns the item that arrived; ``None`` for anything else: the stop marker
        (noted in ``stop_seen``), a wake-up, or a probe already done (then cleared:
        the channel is no longer parked)."""
        assert self.probe is not None
        probe = self.probe
        if probe.done():
            self.probe = None
            return None
        getter = self._loop.create_task(self.queue.get())
        try:
            done, _ = await asyncio.wait(
                {getter, probe}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if not getter.done():
                getter.cancel()
        if getter not in done or getter.cancelled():
            return None
        entry = getter.result()
        if entry is None:
            self.stop_seen = True
            return None
        return entry if isinstance(entry, Item) else None

    async def _work_held(self) -> bool:
        """Without an outbox: while parked, hold what arrives; then try the oldest
        held alert once, and if it gets through, deliver everything that waited at
        once, in order (no alert waits out a backoff of its own). ``False``: the
        worker ends (closing, or the channel still down when close() came)."""
        while self.probe is not None:  # parked: wait, holding arrivals
            arrived = await self._next_while_parked()
            if arrived is not None:
                self._hold(arrived)
        held = self.held
        if held:
            first = held[0]
            result, error = await self.attempt(
                first.notification, quiet=True, once=True
            )
            if result.status is DeliveryStatus.FAILED:  # still down
                if self.closing or self.stop_seen:
                    return False  # close() reports what is held as abandoned
                self._park_in_memory(error)
                return True
            held.popleft()
            self._ledger.record(result, counted=first.counted)
            if result.status is DeliveryStatus.DELIVERED:
                logger.info(
                    "channel %r is back: sending the %d alert(s) that waited",
                    self.name,
                    len(held),
                )
        self.releasing = True
        try:
            while held:
                item = held.popleft()
                if await self._deliver_item(item):
                    return True  # down again: parked, the rest held
        finally:
            self.releasing = False
        self._ledger.notify_idle()
        return not self.stop_seen

    async def _work_outbox(self) -> bool:
        """Deliver this channel's outbox rows in order; ``False``: the worker ends."""
        queue_ = self.queue
        while self.probe is not None:  # parked: wait, keeping arrivals outboxed
            if self.closing or self.stop_seen:
                return False
            arrived = await self._next_while_parked()
            if arrived is None:
                continue  # a stop marker (stop_seen) ends the worker just above
            if arrived.row is None:
                await self._deliver_item(arrived)
            else:
                self._defer(arrived)
        self._outbox.delete_delivered()  # delivered rows must not be read again
        direct: list[Item] = []
        while not queue_.empty():  # no await from here to the read below
            entry = queue_.get_nowait()
            if entry is None:
                self.stop_seen = True
            elif isinstance(entry, Item):
                if entry.row is None:
                    direct.append(entry)
                else:
                    self._defer(entry)
        for item in direct:  # not in the outbox (the state failed): send as they are
            await self._deliver_item(item)
        if direct:
            return True
        rows = self._outbox.pending(self.name, _OUTBOX_BATCH)
        if rows is None:  # the state failed: deliver what we hold, from memory
            held = [self.awaiting[k] for k in sorted(self.awaiting)]
            self.awaiting.clear()
            self.backlog = False
            for index, item in enumerate(held):
                if await self._deliver_item(item):  # parked again
                    self.awaiting.update((i.row, i) for i in held[index + 1 :] if i.row)
                    break
            return not self.stop_seen
        if not rows:
            for row_id in sorted(self.awaiting):  # evicted or purged meanwhile
                self._ledger.dropped(
                    self.name,
                    self.stats,
                    self.awaiting[row_id],
                    "notification %d (%s) left the outbox before it was sent "
                    "(evicted or purged)",
                    error_class="Evicted",
                    counted=self.awaiting[row_id].counted,
                )
            self.awaiting.clear()
            self.backlog = False
            self._ledger.notify_idle()
            return not (self.stop_seen or (self.closing and queue_.empty()))
        for row in rows:
            waiting = self.awaiting.pop(row.id, None)
            next_item = waiting if waiting is not None else self._replayed(row)
            if next_item is None:
                continue
            if await self._deliver_item(next_item, from_outbox=True):
                break  # parked again
        return True

    def _replayed(self, row: OutboxRow) -> Item | None:
        notification = self._outbox.replayed(row)
        return (
            None if notification is None else Item(notification, row.id, counted=False)
        )
