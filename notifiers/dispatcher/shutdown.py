"""close() on the loop: drain, stop the workers, record what is abandoned, close."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..base import DeliveryResult, DeliveryStatus
from ..redact import redact
from .channels import _Item
from .workers import _Workers

__all__: list[str] = []

logger = logging.getLogger("notifiers.dispatcher")


class _Shutdown(_Workers):
    """The dispatcher's shutdown, run on its loop by :meth:`Dispatcher.close`."""

    async def _shutdown(self, budget: float) -> list[DeliveryResult]:
        self._drain_intake()
        for channel in self._channels.values():
            assert channel.queue is not None
            channel.closing = True
            with contextlib.suppress(asyncio.QueueFull):
                channel.queue.put_nowait(None)
            if channel.probe is not None:
                channel.probe.cancel()  # a parked channel stops at once
        tasks = [c.task for c in self._channels.values() if c.task is not None]
        _done, pending = (
            await asyncio.wait(tasks, timeout=budget) if tasks else (set(), set())
        )
        abandoned: list[DeliveryResult] = []
        for channel in self._channels.values():
            assert channel.queue is not None
            leftovers: list[_Item] = []
            if channel.task in pending:
                channel.task.cancel()
                if channel.current is not None:  # cut off mid-delivery
                    leftovers.append(channel.current)
                    channel.current = None
            while not channel.queue.empty():
                queued = channel.queue.get_nowait()
                if isinstance(queued, _Item):
                    leftovers.append(queued)
            leftovers += [channel.awaiting[k] for k in sorted(channel.awaiting)]
            channel.awaiting.clear()
            for item in leftovers:
                if not item.counted:
                    continue  # a replay: it stays in the outbox, as it was
                result = DeliveryResult(
                    item.notification.id,
                    channel.notifier.name,
                    DeliveryStatus.ABANDONED,
                    agent=item.notification.agent,
                    event=item.notification.event,
                )
                channel.stats.abandoned += 1
                abandoned.append(result)
                self._record(result)
        if pending:
            await asyncio.wait(pending, timeout=1)
        probes = [c.probe for c in self._channels.values() if c.probe is not None]
        if self._housekeeper is not None:
            probes.append(self._housekeeper)
        for task in probes:
            task.cancel()
        if probes:
            await asyncio.wait(probes, timeout=1)
        for channel in self._channels.values():
            try:
                await asyncio.wait_for(channel.notifier.aclose(), 5)
            except Exception as exc:
                logger.error(
                    "channel %r failed to close: %s", channel.notifier.name, redact(exc)
                )
        if abandoned:
            logger.error(
                "dispatcher closed with %d notification(s) abandoned%s",
                len(abandoned),
                " (kept in the outbox for the next start)" if self._state else "",
            )
        self._close_state()
        return abandoned
