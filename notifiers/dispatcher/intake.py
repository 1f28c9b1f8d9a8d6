"""From submit()'s queue to each channel's: mutes, the write-ahead, a full queue."""

from __future__ import annotations

import asyncio
import logging
import queue

from ..base import Notification
from ..redact import redact
from .channels import _Channel, _Item
from .outbox import _Outbox

__all__: list[str] = []

logger = logging.getLogger("notifiers.dispatcher")


class _Intake(_Outbox):
    """Submitted notifications shared out to the channels' queues (on the loop)."""

    def _drain_intake(self) -> None:
        self._wake_scheduled = False
        self._draining = True
        try:
            self._distribute()
        finally:
            self._draining = False

    def _distribute(self) -> None:
        batch: list[Notification] = []
        while True:
            try:
                batch.append(self._intake.get_nowait())
            except queue.Empty:
                break
        if not batch:
            return
        plan: list[tuple[Notification, list[_Channel]]] = []
        standby = set(self.fallbacks.values())  # they get only what is handed over
        for notification in batch:
            targets = []
            for channel in self._channels.values():
                if channel.notifier.name in standby:
                    continue
                if not channel.notifier.accepts(notification):
                    continue
                mute = self._muted(notification, channel.notifier.name)
                if mute is None:
                    targets.append(channel)
                    continue
                channel.stats.suppressed += 1
                logger.info(
                    "channel %r: notification %d (%s) muted (%s %s)",
                    channel.notifier.name,
                    notification.id,
                    redact(notification.title),
                    mute.kind,
                    mute.value,
                )
            plan.append((notification, targets))
        rows: list[dict[str, int | None]] | None = None
        state = self._state
        if state is not None:
            rows = self._db(
                "write-ahead",
                lambda: state.put_many(
                    [(n, [c.notifier.name for c in t]) for n, t in plan],
                    owner=self._owner,
                ),
            )
        for index, (notification, targets) in enumerate(plan):
            ids = rows[index] if rows is not None else None
            for channel in targets:
                row = None
                if ids is not None:
                    row = ids.get(channel.notifier.name)
                    if row is None:  # its uid is in the outbox already
                        logger.warning(
                            "channel %r: notification %d is already in the outbox; "
                            "not sent twice",
                            channel.notifier.name,
                            notification.id,
                        )
                        continue
                self._due += 1
                self._enqueue(channel, _Item(notification, row))

    def _enqueue(self, channel: _Channel, item: _Item) -> None:
        assert channel.queue is not None
        try:
            channel.queue.put_nowait(item)
            return
        except asyncio.QueueFull:
            pass
        if item.row is not None:  # it waits in the outbox instead, in order
            if not channel.backlog:
                logger.warning(
                    "channel %r: queue full (%d pending); alerts wait in the outbox",
                    channel.notifier.name,
                    self.queue_size,
                )
            channel.backlog = True
            self._defer(channel, item)
            return
        self._record_dropped(
            channel,
            item,
            "queue full (%d pending); dropped notification %d (%s)",
            self.queue_size,
        )
