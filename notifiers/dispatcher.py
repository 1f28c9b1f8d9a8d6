"""The dispatcher: notifications leave the orchestrator's threads here, and never block them.

``submit()`` is an O(1) put on a queue plus, at most, one wake-up of the dispatcher's
own thread, which runs one asyncio loop. On that loop each channel has its own bounded
queue and its own worker task, so a dead or slow channel never delays another one.
Each delivery runs under the channel's :class:`~notifiers.retry.RetryPolicy` and ends
as one :class:`~notifiers.base.DeliveryResult`, kept in a ring buffer and handed to
``on_result`` hooks. ``close(timeout)`` drains what it can, records what it abandons,
and joins the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field

from tenacity import RetryCallState

from .base import DeliveryResult, DeliveryStatus, Notification, Notifier
from .errors import (
    DeliveryError,
    DispatcherClosed,
    MaybeDelivered,
    PermanentDeliveryError,
    RateLimited,
    RetriesExhausted,
    TransientDeliveryError,
)
from .redact import install_log_redaction, redact
from .retry import RetryPolicy

__all__ = ["ChannelStats", "Dispatcher", "SendGate"]

logger = logging.getLogger("notifiers.dispatcher")

ResultHook = Callable[[DeliveryResult], object]
SendGate = Callable[[Notifier, Notification], Awaitable[None]]
"""Awaited on the dispatcher's loop before each attempt to send (a rate limiter): it
may wait (an asyncio sleep, never a thread's), so only that channel's worker waits."""


@dataclass
class ChannelStats:
    """Counters of one channel."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    dropped: int = 0
    abandoned: int = 0
    queued: int = 0
    last_success: float | None = None
    last_error: str | None = None


@dataclass(eq=False)
class _Channel:
    notifier: Notifier
    policy: RetryPolicy
    queue: asyncio.Queue[Notification | None] | None = None
    task: asyncio.Task[None] | None = None
    current: Notification | None = None
    closing: bool = False
    started: asyncio.Event = field(default_factory=asyncio.Event)
    stats: ChannelStats = field(default_factory=ChannelStats)


class Dispatcher:
    """Delivers notifications to channels from a thread of its own.

    Args:
        notifiers: the channels.
        policy: the retry policy of every channel (override per channel with
            ``policies={"telegram": RetryPolicy(...)}``).
        queue_size: pending notifications per channel; beyond it they are dropped,
            counted and logged at ERROR.
        results_size: how many results the ring buffer keeps.
        on_result: hooks called with each :class:`DeliveryResult` (on the
            dispatcher's thread; their errors are logged).
        sleep: the async sleep used between retries (injectable for tests).
        gate: awaited before each attempt to send (see :data:`SendGate`).
        name: the thread's name.
    """

    def __init__(
        self,
        notifiers: Iterable[Notifier],
        *,
        policy: RetryPolicy | None = None,
        policies: dict[str, RetryPolicy] | None = None,
        queue_size: int = 1000,
        results_size: int = 1000,
        on_result: Iterable[ResultHook] = (),
        sleep: Callable[[float], Awaitable[None]] | None = None,
        gate: SendGate | None = None,
        name: str = "notifiers-dispatch",
    ) -> None:
        default = policy or RetryPolicy()
        self._channels: dict[str, _Channel] = {}
        for notifier in notifiers:
            if notifier.name in self._channels:
                raise ValueError(f"two channels are named {notifier.name!r}")
            chosen = (policies or {}).get(notifier.name, default)
            self._channels[notifier.name] = _Channel(notifier, chosen)
        if not self._channels:
            raise ValueError("a dispatcher needs at least one notifier")
        self.queue_size = queue_size
        self.results: deque[DeliveryResult] = deque(maxlen=results_size)
        self._hooks: list[ResultHook] = list(on_result)
        self._sleep = sleep
        self._gate = gate
        self._intake: queue.SimpleQueue[Notification] = queue.SimpleQueue()
        self._wake_scheduled = False
        self._closed = False
        self._submit_lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        # Outstanding work, counted on the loop thread only: submit() takes no lock
        # the loop thread also takes (it would wait behind deliveries' bookkeeping).
        self._idle = threading.Condition()
        self._accepted = 0  # notifications taken from the intake (x channels = due)
        self._recorded = 0  # results recorded for them
        self._draining = False
        install_log_redaction()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the dispatcher's loop did not start within 30 s")

    # ------------------------------------------------------------ public
    @property
    def channels(self) -> list[str]:
        """The channel names."""
        return list(self._channels)

    def stats(self) -> dict[str, ChannelStats]:
        """Counters per channel (a snapshot)."""
        out = {}
        for name, channel in self._channels.items():
            stats = ChannelStats(**vars(channel.stats))
            stats.queued = channel.queue.qsize() if channel.queue is not None else 0
            out[name] = stats
        return out

    def add_hook(self, hook: ResultHook) -> None:
        """Also call ``hook`` with every result."""
        self._hooks.append(hook)

    def submit(self, notification: Notification) -> None:
        """Queue ``notification`` for every channel; O(1), never blocks, any thread.

        Raises:
            DispatcherClosed: after :meth:`close`.
        """
        with self._submit_lock:  # close() takes it too: no submit slips past close
            if self._closed:
                raise DispatcherClosed("the dispatcher is closed")
            self._intake.put(notification)
            if not self._wake_scheduled:
                self._wake_scheduled = True
                self._loop.call_soon_threadsafe(self._drain_intake)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted notification has a result; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while not self._settled():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, 0.05))
        return True

    def _settled(self) -> bool:
        if self._draining or not self._intake.empty():
            return False
        return self._recorded >= self._accepted * len(self._channels)

    def send_now(
        self, notification: Notification, channel: str, timeout: float = 30.0
    ) -> DeliveryResult:
        """Deliver on one channel and wait for the result (e.g. a test message).

        Raises:
            RetriesExhausted: if it could not be delivered.
        """
        if self._closed:
            raise DispatcherClosed("the dispatcher is closed")
        target = self._channels[channel]
        future: Future[DeliveryResult] = asyncio.run_coroutine_threadsafe(
            self._deliver(target, notification), self._loop
        )
        result = future.result(timeout)
        if not result.ok:
            last = DeliveryError(
                result.error or "", channel=channel, attempts=result.attempts
            )
            raise RetriesExhausted(
                f"{channel}: {result.status.value}: {result.error}",
                last_error=last,
                channel=channel,
                attempts=result.attempts,
            )
        return result

    def close(self, timeout: float = 10.0) -> list[DeliveryResult]:
        """Deliver what is queued until ``timeout``, then stop; return what was abandoned.

        Idempotent: a second call returns ``[]``.
        """
        with self._submit_lock:
            if self._closed:
                return []
            self._closed = True
        future = asyncio.run_coroutine_threadsafe(self._shutdown(timeout), self._loop)
        try:
            abandoned = future.result(timeout + 5)
        except Exception:
            logger.exception("dispatcher: shutdown failed")
            abandoned = []
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()
        return abandoned

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ the loop
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._ready.set)  # ready to take submissions at once
        self._start_task = self._loop.create_task(self._start())
        self._loop.run_forever()

    async def _start(self) -> None:
        # Queues and workers exist before any channel starts, so a submit() that
        # arrives while a slow channel is starting is queued, not lost.
        for channel in self._channels.values():
            channel.queue = asyncio.Queue(self.queue_size)
            channel.task = self._loop.create_task(self._work(channel))
        await asyncio.gather(*(self._start_channel(c) for c in self._channels.values()))

    async def _start_channel(self, channel: _Channel) -> None:
        try:
            await channel.notifier.start()
        except Exception as exc:
            logger.error(
                "channel %r failed to start: %s", channel.notifier.name, redact(exc)
            )
        finally:
            channel.started.set()

    def _drain_intake(self) -> None:
        self._wake_scheduled = False
        self._draining = True
        try:
            self._distribute()
        finally:
            self._draining = False

    def _distribute(self) -> None:
        while True:
            try:
                notification = self._intake.get_nowait()
            except queue.Empty:
                return
            self._accepted += 1
            for channel in self._channels.values():
                assert channel.queue is not None
                try:
                    channel.queue.put_nowait(notification)
                except asyncio.QueueFull:
                    channel.stats.dropped += 1
                    logger.error(
                        "channel %r: queue full (%d pending); dropped notification %d (%s)",
                        channel.notifier.name,
                        self.queue_size,
                        notification.id,
                        redact(notification.title),
                    )
                    self._record(
                        DeliveryResult(
                            notification.id,
                            channel.notifier.name,
                            DeliveryStatus.DROPPED,
                            agent=notification.agent,
                            event=notification.event,
                        )
                    )

    async def _work(self, channel: _Channel) -> None:
        assert channel.queue is not None
        await channel.started.wait()
        while True:
            notification = await channel.queue.get()
            if notification is None:
                return
            channel.current = notification
            result = await self._deliver(channel, notification)
            channel.current = None
            self._record(result)
            if channel.closing and channel.queue.empty():
                return  # closing, and the stop marker found no room in a full queue

    async def _deliver(
        self, channel: _Channel, notification: Notification
    ) -> DeliveryResult:
        notifier = channel.notifier
        started = time.monotonic()
        attempts = 0

        def on_retry(state: RetryCallState) -> None:
            channel.stats.retried += 1

        async def attempt() -> None:
            nonlocal attempts
            attempts += 1
            try:
                if self._gate is not None:
                    await self._gate(notifier, notification)
                await notifier.send(notification)
            except DeliveryError:
                raise
            except Exception as exc:
                raise notifier.classify(exc) from None

        status = DeliveryStatus.DELIVERED
        error: DeliveryError | None = None
        try:
            await channel.policy.retrying(sleep=self._sleep, on_retry=on_retry)(attempt)
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
            logger.error(
                "channel %r: notification %d %s after %d attempt(s): %s",
                notifier.name,
                notification.id,
                status.value,
                attempts,
                stats.last_error,
            )
        return DeliveryResult(
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

    def _record(self, result: DeliveryResult) -> None:
        self.results.append(result)
        for hook in list(self._hooks):
            try:
                hook(result)
            except Exception:
                logger.exception("on_result hook %r failed", hook)
        self._recorded += 1
        if self._recorded >= self._accepted * len(self._channels):
            with self._idle:
                self._idle.notify_all()

    async def _shutdown(self, budget: float) -> list[DeliveryResult]:
        self._drain_intake()
        for channel in self._channels.values():
            assert channel.queue is not None
            channel.closing = True
            with contextlib.suppress(asyncio.QueueFull):
                channel.queue.put_nowait(None)
        tasks = [c.task for c in self._channels.values() if c.task is not None]
        _done, pending = (
            await asyncio.wait(tasks, timeout=budget) if tasks else (set(), set())
        )
        abandoned: list[DeliveryResult] = []
        for channel in self._channels.values():
            assert channel.queue is not None
            leftovers: list[Notification] = []
            if channel.task in pending:
                channel.task.cancel()
                if channel.current is not None:  # cut off mid-delivery
                    leftovers.append(channel.current)
                    channel.current = None
            while not channel.queue.empty():
                queued = channel.queue.get_nowait()
                if queued is not None:
                    leftovers.append(queued)
            for item in leftovers:
                result = DeliveryResult(
                    item.id,
                    channel.notifier.name,
                    DeliveryStatus.ABANDONED,
                    agent=item.agent,
                    event=item.event,
                )
                channel.stats.abandoned += 1
                abandoned.append(result)
                self._record(result)
        if pending:
            await asyncio.wait(pending, timeout=1)
        for channel in self._channels.values():
            try:
                await asyncio.wait_for(channel.notifier.aclose(), 5)
            except Exception as exc:
                logger.error(
                    "channel %r failed to close: %s", channel.notifier.name, redact(exc)
                )
        if abandoned:
            logger.error(
                "dispatcher closed with %d notification(s) abandoned", len(abandoned)
            )
        return abandoned
