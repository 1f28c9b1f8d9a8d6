"""Each channel's worker: its queue, or its outbox in order while it has a backlog."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from ..base import DeliveryStatus
from .channels import _Channel, _Item
from .escalation import _HANDED_OVER, _Escalation

__all__: list[str] = []

logger = logging.getLogger("notifiers.dispatcher")

_OUTBOX_BATCH = 100  # rows read from the outbox at a time


class _Workers(_Escalation):
    """The worker task of each channel, and the delivery of one item."""

    async def _work(self, channel: _Channel) -> None:
        assert channel.queue is not None
        await channel.started.wait()
        while True:
            if channel.backlog:
                if not await self._work_outbox(channel):
                    return
                continue
            if channel.probe is not None or channel.held:  # parked, no state
                if not await self._work_held(channel):
                    return
                continue
            entry = await channel.queue.get()
            if entry is None:
                return
            if not isinstance(entry, _Item):
                continue  # a wake-up: the outbox has rows for this channel
            if channel.backlog and entry.row is not None:
                self._defer(channel, entry)  # the outbox goes first
                continue
            await self._deliver_item(channel, entry)
            if (
                channel.closing
                and channel.queue.empty()
                and (not channel.backlog or channel.probe is not None)
            ):
                return  # closing, and the stop marker found no room in a full queue

    async def _deliver_item(
        self, channel: _Channel, item: _Item, *, from_outbox: bool = False
    ) -> bool:
        """Deliver one item and settle it; ``True`` if that parked the channel."""
        channel.current = item
        result, error = await self._attempt(
            channel, item.notification, quiet=not item.counted
        )
        channel.current = None
        if item.fallback_for is not None:
            result = dataclasses.replace(result, fallback_for=item.fallback_for)
        fallback = self.fallbacks.get(channel.notifier.name)
        if fallback is not None and result.status in _HANDED_OVER:
            self._hand_over(channel, self._channels[fallback], item, result)
            return False
        return self._settle(channel, item, result, error, from_outbox=from_outbox)

    async def _next_while_parked(self, channel: _Channel) -> _Item | None:
        """While ``channel`` is parked: wait for whichever comes first, the next entry
        of its queue or the end of its probe (its time came, or close() wants a last
        try). Returns the item that arrived; ``None`` for anything else: the stop
        marker (noted in ``stop_seen``), a wake-up, or a probe already done (then
        cleared: the channel is no longer parked)."""
        assert channel.queue is not None and channel.probe is not None
        probe = channel.probe
        if probe.done():
            channel.probe = None
            return None
        getter = self._loop.create_task(channel.queue.get())
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
            channel.stop_seen = True
            return None
        return entry if isinstance(entry, _Item) else None

    async def _work_held(self, channel: _Channel) -> bool:
        """Without a state: while parked, hold what arrives; then try the oldest held
        alert once, and if it gets through, deliver everything that waited at once,
        in order (no alert waits out a backoff of its own). ``False``: the worker
        ends (closing, or the channel still down when close() came)."""
        while channel.probe is not None:  # parked: wait, holding arrivals
            arrived = await self._next_while_parked(channel)
            if arrived is not None:
                self._hold(channel, arrived)
        held = channel.held
        if held:
            first = held[0]
            once = channel.policy.model_copy(update={"max_attempts": 1})
            result, error = await self._attempt(
                channel, first.notification, quiet=True, policy=once
            )
            if result.status is DeliveryStatus.FAILED:  # still down
                if channel.closing or channel.stop_seen:
                    return False  # close() reports what is held as abandoned
                self._park_in_memory(channel, error)
                return True
            held.popleft()
            self._record(result, counted=first.counted)
            if result.status is DeliveryStatus.DELIVERED:
                logger.info(
                    "channel %r is back: sending the %d alert(s) that waited",
                    channel.notifier.name,
                    len(held),
                )
        channel.releasing = True
        try:
            while held:
                item = held.popleft()
                if await self._deliver_item(channel, item):
                    return True  # down again: parked, the rest held
        finally:
            channel.releasing = False
        self._notify_idle()
        return not channel.stop_seen

    async def _work_outbox(self, channel: _Channel) -> bool:
        """Deliver this channel's outbox rows in order; ``False``: the worker ends."""
        assert channel.queue is not None
        queue_ = channel.queue
        while channel.probe is not None:  # parked: wait, keeping arrivals outboxed
            if channel.closing or channel.stop_seen:
                return False
            arrived = await self._next_while_parked(channel)
            if arrived is None:
                continue  # a stop marker (stop_seen) ends the worker just above
            if arrived.row is None:
                await self._deliver_item(channel, arrived)
            else:
                self._defer(channel, arrived)
        self._flush_done()  # delivered rows must not be read again
        direct: list[_Item] = []
        while not queue_.empty():  # no await from here to the read below
            entry = queue_.get_nowait()
            if entry is None:
                channel.stop_seen = True
            elif isinstance(entry, _Item):
                if entry.row is None:
                    direct.append(entry)
                else:
                    self._defer(channel, entry)
        for item in direct:  # not in the outbox (the state failed): send as they are
            await self._deliver_item(channel, item)
        if direct:
            return True
        state = self._state
        assert state is not None
        name = channel.notifier.name
        rows = self._db(
            "read the outbox",
            lambda: state.pending(name, owner=self._owner, limit=_OUTBOX_BATCH),
        )
        if rows is None:  # the state failed: deliver what we hold, from memory
            held = [channel.awaiting[k] for k in sorted(channel.awaiting)]
            channel.awaiting.clear()
            channel.backlog = False
            for index, item in enumerate(held):
                if await self._deliver_item(channel, item):  # parked again
                    channel.awaiting.update(
                        (i.row, i) for i in held[index + 1 :] if i.row
                    )
                    break
            return not channel.stop_seen
        if not rows:
            for row_id in sorted(channel.awaiting):  # evicted or purged meanwhile
                self._record_evicted(channel, channel.awaiting[row_id])
            channel.awaiting.clear()
            channel.backlog = False
            self._notify_idle()
            return not (channel.stop_seen or (channel.closing and queue_.empty()))
        for row in rows:
            waiting = channel.awaiting.pop(row.id, None)
            next_item = waiting if waiting is not None else self._replayed(row)
            if next_item is None:
                continue
            if await self._deliver_item(channel, next_item, from_outbox=True):
                break  # parked again
        return True
