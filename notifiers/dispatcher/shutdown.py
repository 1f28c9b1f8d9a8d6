"""close() on the loop: drain, stop the workers, record what is abandoned, close."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

from ..base import DeliveryResult, DeliveryStatus
from ..redact import redact
from .channels import _Item
from .workers import _Workers

__all__: list[str] = []

logger = logging.getLogger("notifiers.dispatcher")


class _Shutdown(_Workers):
    """The dispatcher's shutdown, run on its loop by :meth:`Dispatcher.close`."""

    async def _shutdown(self, idle: float, limit: float) -> list[DeliveryResult]:
        self._drain_intake()
        for channel in self._channels.values():
            assert channel.queue is not None
            channel.closing = True
            with contextlib.suppress(asyncio.QueueFull):
                channel.queue.put_nowait(None)
            if channel.probe is not None:
                # A parked channel stops at once (with an outbox) or after one last
                # try (without one: what it holds would be lost).
                channel.probe.cancel()
        tasks = {c.task for c in self._channels.values() if c.task is not None}
        pending = await self._wait_while_progressing(tasks, idle, limit)
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
            leftovers += channel.held  # without a state: held behind a failure
            channel.held.clear()
            for item in leftovers:
                if not item.counted and item.row is not None:
                    continue  # it stays in the outbox, as it was
                result = DeliveryResult(
                    item.notification.id,
                    channel.notifier.name,
                    DeliveryStatus.ABANDONED,
                    agent=item.notification.agent,
                    event=item.notification.event,
                )
                channel.stats.abandoned += 1
                abandoned.append(result)
                self._record(result, counted=item.counted)
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
            per_channel = Counter(r.channel for r in abandoned)
            kept = self._state is not None
            logger.log(
                logging.WARNING if kept else logging.ERROR,
                "dispatcher closed with %d notification(s) abandoned (%s)%s",
                len(abandoned),
                ", ".join(f"{name}: {count}" for name, count in per_channel.items()),
                " and kept in the outbox for the next start"
                if kept
                else "; without a state file they are lost",
            )
        self._close_state()
        return abandoned

    async def _wait_while_progressing(
        self, tasks: set[asyncio.Task[None]], idle: float, limit: float
    ) -> set[asyncio.Task[None]]:
        """Wait for ``tasks`` while results keep coming: give up after ``idle``
        seconds without one, or ``limit`` seconds in all. Returns those not done."""
        loop = self._loop
        started = loop.time()
        seen = self._progress
        quiet_since = started
        pending = set(tasks)
        while pending:
            now = loop.time()
            if self._progress != seen:
                seen, quiet_since = self._progress, now
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
