"""From submit()'s queue to each channel's: mutes, the write-ahead, a full queue."""

from __future__ import annotations

import asyncio
import logging
import queue
from collections.abc import Sequence

from ..base import Notification
from ..redact import redact
from ._doorbell import Doorbell
from ._items import Item
from ._outbox import Outbox
from ._results import ResultLedger
from ._worker import ChannelWorker

__all__ = ["Intake"]

logger = logging.getLogger("notifiers.dispatcher")


class Intake:
    """What ``submit()`` hands over, shared out to the channels' workers.

    :meth:`put` runs on the submitting thread: an O(1) put on a ``SimpleQueue``
    and, when none is pending, a ring of the :class:`~._doorbell.Doorbell`, whose
    thread wakes the loop. :meth:`drain` runs on the
    loop: each notification goes to the channels that take it (not a fallback, not
    a channel that skips its event, not muted), written ahead to the outbox in one
    transaction per wake-up, then into each worker's queue.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        workers: Sequence[ChannelWorker],
        *,
        standby: set[str],
        outbox: Outbox,
        ledger: ResultLedger,
        name: str,
    ) -> None:
        self._queue: queue.SimpleQueue[Notification] = queue.SimpleQueue()
        self._wake_scheduled = False
        self.draining = False
        # Fallback channels get only what is handed over to them.
        self._targets = [w for w in workers if w.name not in standby]
        self._outbox = outbox
        self._ledger = ledger
        self._doorbell = Doorbell(loop, self.drain, name)

    @property
    def empty(self) -> bool:
        """Nothing waits to be shared out (nor is being)."""
        return not self.draining and self._queue.empty()

    def put(self, notification: Notification) -> None:
        """Any thread (under the dispatcher's submit lock)."""
        self._queue.put(notification)
        if not self._wake_scheduled:
            self._wake_scheduled = True
            self._doorbell.ring()

    def close(self, timeout: float = 5.0) -> bool:
        """After the last :meth:`put`: the loop gets the wake-ups asked for so far,
        and the doorbell's thread ends (``False`` if not within ``timeout``)."""
        return self._doorbell.close(timeout)

    def drain(self) -> None:
        """Share out everything submitted so far (on the loop)."""
        self._wake_scheduled = False
        self.draining = True
        try:
            self._distribute()
        finally:
            self.draining = False

    def _distribute(self) -> None:
        batch: list[Notification] = []
        get = self._queue.get_nowait
        while True:
            try:
                batch.append(get())
            except queue.Empty:
                break
        if not batch:
            return
        outbox = self._outbox
        plan: list[tuple[Notification, list[ChannelWorker]]] = []
        for notification in batch:
            targets = []
            for worker in self._targets:
                if not worker.notifier.accepts(notification):
                    continue
                mute = outbox.muted(notification, worker.name)
                if mute is None:
                    targets.append(worker)
                    continue
                worker.stats.suppressed += 1
                logger.info(
                    "channel %r: notification %d (%s) muted (%s %s)",
                    worker.name,
                    notification.id,
                    redact(notification.title),
                    mute.kind,
                    mute.value,
                )
            plan.append((notification, targets))
        rows = None
        if outbox.durable:
            rows = outbox.write_ahead([(n, [w.name for w in t]) for n, t in plan])
        expect = self._ledger.expect
        for index, (notification, targets) in enumerate(plan):
            ids = rows[index] if rows is not None else None
            for worker in targets:
                row = None
                if ids is not None:
                    row = ids.get(worker.name)
                    if row is None:  # its uid is in the outbox already
                        logger.warning(
                            "channel %r: notification %d is already in the outbox; "
                            "not sent twice",
                            worker.name,
                            notification.id,
                        )
                        continue
                expect()
                worker.enqueue(Item(notification, row))
