"""The dispatcher: notifications leave the orchestrator's threads here, and never block them.

``submit()`` is an O(1) put on a queue plus, at most, one wake-up of the dispatcher's
own thread, which runs one asyncio loop. On that loop each channel has its own bounded
queue and its own worker task, so a dead or slow channel never delays another one.
Each delivery runs under the channel's :class:`~notifiers.retry.RetryPolicy` and ends
as one :class:`~notifiers.base.DeliveryResult`, kept in a ring buffer and handed to
``on_result`` hooks. ``close(timeout)`` drains what it can, records what it abandons,
and joins the thread.

With a :class:`~notifiers.state.NotifierState` (``state=``), nothing accepted is lost:

* every (notification, channel) is written ahead to the outbox, on the loop thread
  and in one transaction per wake-up (never on the thread calling ``submit()``), and
  deleted once delivered;
* retries exhausted, or a retry-after beyond the policy's ``retry_after_cap``: the
  row stays (``failed``) and the channel is *parked*: the alerts after it are kept in
  the outbox too (result ``failed``, ``error_class="Outboxed"``), nothing is sent to
  that channel until ``outbox_retry`` seconds (or the server's retry-after) have
  passed, and then the outbox is delivered from its oldest row on, in order;
* a permanent error or a "maybe delivered" timeout leaves the row ``dead``: kept for
  ``notify outbox list``, replayed only on request (no duplicate is ever sent on
  our own);
* a queue overflow is not a drop: the alert waits in the outbox, in order;
* ``close()`` leaves what it abandons ``pending``; the next dispatcher on the same
  file (same channel names) replays the ``pending`` and ``failed`` rows first, in
  the order they were accepted, once each;
* mutes (agent, event or channel, with expiry) are read from the file, re-read within
  ``state_refresh`` seconds of a change by another process; a muted alert is counted
  as ``suppressed`` and not sent (no result);
* the channel counters are saved to the file at most every ``state_refresh``
  seconds, and at ``close()``.

Rows belong to the dispatcher that wrote them until it closes (or its process dies:
a running dispatcher takes a dead one's rows over within ~30 s, a new one at once),
so two processes on one file never send each other's alerts. Delivery is once per
(alert, channel), except an alert cut off mid-send (``close()``'s timeout, a killed
process, or a crash between the send and the row's delete): it stays ``pending``
and is sent again (at least once, never lost). A failing state file (disk full,
locked too long) is logged at ERROR and alerts go on without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import queue
import socket
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TypeVar

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
from .ratelimit import RateLimiter
from .redact import install_log_redaction, redact
from .retry import RetryPolicy
from .state import Mute, NotifierState, OutboxRow

__all__ = ["ChannelStats", "Dispatcher", "SendGate"]

logger = logging.getLogger("notifiers.dispatcher")

ResultHook = Callable[[DeliveryResult], object]
SendGate = Callable[[Notifier, Notification], Awaitable[None]]
"""Awaited on the dispatcher's loop before each attempt to send (a rate limiter): it
may wait (an asyncio sleep, never a thread's), so only that channel's worker waits."""


@dataclass
class ChannelStats:
    """Counters of one channel.

    ``failed`` counts deliveries that ended undelivered (a replay from the outbox
    that fails again counts again); ``suppressed``: alerts not sent because muted;
    ``outboxed``: alerts kept in the outbox for a later try (their channel failed);
    ``replayed``: alerts delivered from the outbox rather than straight from the queue.
    """

    sent: int = 0
    failed: int = 0
    retried: int = 0
    dropped: int = 0
    abandoned: int = 0
    queued: int = 0
    last_success: float | None = None
    last_error: str | None = None
    suppressed: int = 0
    outboxed: int = 0
    replayed: int = 0


class _Wake:
    """Put in a channel's queue to make its idle worker look at the outbox."""


_WAKE = _Wake()
_T = TypeVar("_T")
_OUTBOX_BATCH = 100  # rows read from the outbox at a time
_HEARTBEAT = 5.0  # seconds between heartbeats (the state's stale_after is 30 s)
_RECLAIM = 30.0  # seconds between looks for a dead process's rows, if nothing changed


@dataclass(eq=False, slots=True)
class _Item:
    notification: Notification
    row: int | None = None  # its outbox row
    counted: bool = True  # owes a result to flush()'s count (a replay does not)
    fallback_for: str | None = None  # the channel that failed and handed it over


@dataclass(eq=False)
class _Channel:
    notifier: Notifier
    policy: RetryPolicy
    queue: asyncio.Queue[_Item | _Wake | None] | None = None
    task: asyncio.Task[None] | None = None
    current: _Item | None = None
    closing: bool = False
    started: asyncio.Event = field(default_factory=asyncio.Event)
    stats: ChannelStats = field(default_factory=ChannelStats)
    # With a state: the outbox holds alerts that go before the queue's, so the
    # worker delivers from the outbox (in row order) until it is empty.
    backlog: bool = False
    probe: asyncio.Task[None] | None = None  # parked: the wait before trying again
    # Items whose outbox rows the worker delivers instead (by row id): the same
    # objects (same ids in results); those still ``counted`` owe their result.
    awaiting: dict[int, _Item] = field(default_factory=dict)
    stop_seen: bool = False


class Dispatcher:
    """Delivers notifications to channels from a thread of its own.

    Args:
        notifiers: the channels.
        policy: the retry policy of every channel (override per channel with
            ``policies={"telegram": RetryPolicy(...)}``).
        queue_size: pending notifications per channel; beyond it they are dropped,
            counted and logged at ERROR (with a state they wait in the outbox).
        results_size: how many results the ring buffer keeps.
        on_result: hooks called with each :class:`DeliveryResult` (on the
            dispatcher's thread; their errors are logged).
        sleep: the async sleep used between retries (injectable for tests).
        gate: awaited before each attempt to send (see :data:`SendGate`).
        rate_limits: with no ``gate``, limit each destination to its channel's
            rate (:class:`~notifiers.ratelimit.RateLimiter`: Telegram 1/s per chat,
            20/min per group; Slack 1/s per webhook); ``False``: no limits.
        name: the thread's name.
        state: a :class:`~notifiers.state.NotifierState`, or the path of its file
            (opened here, closed by :meth:`close`): the durable outbox, mutes and
            saved counters (see the module docstring). ``None``: memory only.
        close_state: whether :meth:`close` closes the state (default: only if
            given as a path).
        outbox_retry: seconds a parked channel waits before trying its outbox again
            (a server's longer retry-after wins). Waited with ``sleep``.
        state_refresh: seconds between looks at the state file (mutes, replays asked
            for by another process) and saves of the counters.
        fallbacks: escalation chains, ``{channel: its fallback}``, e.g.
            ``{"telegram": "email"}``: a notification goes to ``telegram`` only; if
            that fails for good (retries exhausted, or a permanent error), it goes to
            ``email``, whose result says ``fallback_for="telegram"``. Chains may be
            longer (``{"telegram": "email", "email": "slack"}``). A fallback channel
            gets only what is handed to it.
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
        rate_limits: bool = True,
        name: str = "notifiers-dispatch",
        state: NotifierState | str | os.PathLike[str] | None = None,
        close_state: bool | None = None,
        outbox_retry: float = 30.0,
        state_refresh: float = 1.0,
        fallbacks: Mapping[str, str] | None = None,
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
        self.fallbacks: dict[str, str] = _check_fallbacks(
            dict(fallbacks or {}), list(self._channels)
        )
        self.queue_size = queue_size
        self.results: deque[DeliveryResult] = deque(maxlen=results_size)
        self._hooks: list[ResultHook] = list(on_result)
        self._sleep = sleep
        self.rate_limiter: RateLimiter | None = (
            gate if isinstance(gate, RateLimiter) else None
        )
        if gate is None and rate_limits:
            # Real time, whatever ``sleep`` is: a limiter waits on its own clock (give
            # ``gate=RateLimiter(clock=..., sleep=...)`` to test it on fake time).
            gate = self.rate_limiter = RateLimiter()
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
        self._due = 0  # (notification, channel) pairs that owe a result
        self._recorded = 0  # results recorded for them
        self._draining = False
        # The durable state (all of it used on the loop thread only).
        self._owns_state = (
            close_state
            if close_state is not None
            else state is not None and not isinstance(state, NotifierState)
        )
        self._state: NotifierState | None = (
            NotifierState(state)
            if state is not None and not isinstance(state, NotifierState)
            else state
        )
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._outbox_retry = outbox_retry
        self._state_refresh = state_refresh
        self._mutes: list[Mute] = []
        self._version: tuple[int, int] | None = None
        self._saved: dict[str, dict[str, object]] | None = None
        self._beat = 0.0
        self._claimed_at = 0.0
        self._done_rows: list[int] = []
        self._done_scheduled = False
        self._db_errors = 0
        self._housekeeper: asyncio.Task[None] | None = None
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

    @property
    def state(self) -> NotifierState | None:
        """The durable state, if any."""
        return self._state

    def is_muted(
        self, agent: str | None, event: str | None, channel: str | None = None
    ) -> bool:
        """Whether the state's mutes (as last read, at most ``state_refresh`` old)
        cover an alert of ``agent`` and ``event`` (to ``channel``, if given).

        Cheap and thread-safe, no file access: fits the alert pipeline's
        ``muted(agent, event)``. Always ``False`` without a state.
        """
        mutes, state = self._mutes, self._state
        if not mutes or state is None:
            return False
        now = state.clock()
        return any(
            m.active(now) and m.matches(channel=channel, agent=agent, event=event)
            for m in mutes
        )

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
        """Wait until every submitted notification has a result; ``False`` on timeout.

        With a state it also waits for the outbox replays under way (not for a parked
        channel's next try).
        """
        deadline = time.monotonic() + timeout
        with self._idle:
            while not self._settled():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, 0.05))
        return True

    def _settled(self) -> bool:
        """Every result recorded and every delivered row deleted, and no outbox being
        delivered (a parked channel, waiting to try again, does not count: nothing
        will happen soon)."""
        if self._draining or not self._intake.empty() or self._done_scheduled:
            return False
        if any(c.backlog and c.probe is None for c in self._channels.values()):
            return False
        return self._recorded >= self._due

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

        Idempotent: a second call returns ``[]``. With a state, what is abandoned
        stays in the outbox for the next start.
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
        self._loop.call_soon(self._prepare)
        self._loop.run_forever()

    def _prepare(self) -> None:
        # Queues and workers exist before any channel starts, so a submit() that
        # arrives while a slow channel is starting is queued, not lost; and the
        # state is read (mutes, rows to replay) before the constructor returns.
        try:
            for channel in self._channels.values():
                channel.queue = asyncio.Queue(self.queue_size)
                channel.task = self._loop.create_task(self._work(channel))
            if self._state is not None:
                self._open_state(self._state)
        finally:
            self._ready.set()  # ready to take submissions
        self._start_task = self._loop.create_task(self._start())

    async def _start(self) -> None:
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
        notification = item.notification
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
            if channel.backlog:
                if not await self._work_outbox(channel):
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

    def _hand_over(
        self, failed: _Channel, fallback: _Channel, item: _Item, result: DeliveryResult
    ) -> None:
        """``failed`` could not deliver ``item``: record that, and give it to its
        fallback (which owns it from now on, in the outbox too)."""
        notification = item.notification
        logger.warning(
            "channel %r failed notification %d (%s): handing it to %r",
            failed.notifier.name,
            notification.id,
            result.status.value,
            fallback.notifier.name,
        )
        state, old_row = self._state, item.row
        row: int | None = None
        if state is not None:
            rows = self._db(
                "hand over",
                lambda: state.put_many(
                    [(notification, [fallback.notifier.name])], owner=self._owner
                ),
            )
            row = rows[0].get(fallback.notifier.name) if rows else None
            if old_row is not None:
                self._done(old_row)  # the fallback's row replaces it
        if item.counted:
            self._due += 1  # first: flush() must never see this item as settled
            self._record(result)
        self._enqueue(
            fallback,
            _Item(
                notification,
                row,
                counted=item.counted,
                fallback_for=failed.notifier.name,
            ),
        )

    async def _deliver(
        self, channel: _Channel, notification: Notification
    ) -> DeliveryResult:
        result, _error = await self._attempt(channel, notification)
        return result

    def _hold_on_rate_limit(
        self, notifier: Notifier, notification: Notification, error: DeliveryError
    ) -> None:
        """A server said "retry after N s": every channel sending to that destination
        waits, not just this attempt's retry."""
        if isinstance(error, RateLimited) and self.rate_limiter is not None:
            self.rate_limiter.hold(notifier, notification, error.retry_after)

    async def _attempt(
        self, channel: _Channel, notification: Notification, *, quiet: bool = False
    ) -> tuple[DeliveryResult, DeliveryError | None]:
        notifier = channel.notifier
        started = time.monotonic()
        attempts = 0

        def on_retry(state: RetryCallState) -> None:
            channel.stats.retried += 1

        async def attempt() -> None:
            nonlocal attempts
            attempts += 1
            try:
                # The first attempt's wait for a token comes before the retry clock
                # starts (below): a slow rate is not a failing channel.
                if attempts > 1 and self._gate is not None:
                    await self._gate(notifier, notification)
                await notifier.send(notification)
            except DeliveryError as exc:
                self._hold_on_rate_limit(notifier, notification, exc)
                raise
            except Exception as exc:
                error = notifier.classify(exc)
                self._hold_on_rate_limit(notifier, notification, error)
                raise error from None

        if self._gate is not None:
            await self._gate(notifier, notification)

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
            logger.log(
                logging.WARNING if quiet else logging.ERROR,
                "channel %r: notification %d %s after %d attempt(s): %s",
                notifier.name,
                notification.id,
                status.value,
                attempts,
                stats.last_error,
            )
        result = DeliveryResult(
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
        return result, error

    def _record(self, result: DeliveryResult, *, counted: bool = True) -> None:
        self.results.append(result)
        for hook in list(self._hooks):
            try:
                hook(result)
            except Exception:
                logger.exception("on_result hook %r failed", hook)
        if counted:
            self._recorded += 1
        if self._recorded >= self._due:
            self._notify_idle()

    def _notify_idle(self) -> None:
        with self._idle:
            self._idle.notify_all()

    # ------------------------------------------------------------ the outbox
    def _db(self, what: str, call: Callable[[], _T]) -> _T | None:
        """Run a state call; on a database error log it (redacted) and return None."""
        try:
            return call()
        except (sqlite3.Error, OSError, ValueError) as exc:
            self._db_errors += 1
            if self._db_errors == 1 or self._db_errors % 100 == 0:
                logger.error(
                    "notifier state %s failed (%d error(s) so far): %s; alerts go "
                    "on without it",
                    what,
                    self._db_errors,
                    redact(f"{type(exc).__name__}: {exc}"),
                )
            return None

    def _open_state(self, state: NotifierState) -> None:
        self._db("register", lambda: state.register(self._owner))
        self._refresh(state)
        saved = self._db("load stats", state.load_stats) or {}
        for name, channel in self._channels.items():
            previous = saved.get(name, {})
            channel.stats.last_success = previous.get("last_success")
            channel.stats.last_error = previous.get("last_error")
        self._housekeeper = self._loop.create_task(self._housekeep(state))

    def _refresh(self, state: NotifierState, *, force: bool = False) -> None:
        """Re-read mutes; claim the rows nobody alive owns (a replay, or a dead
        process's) and let their channels deliver them. Only if the file changed
        (or ``force``)."""
        version = self._db("version", state.version)
        if not force and version is not None and version == self._version:
            return
        self._version = version
        self._claimed_at = self._loop.time()
        mutes = self._db("read mutes", state.mutes)
        if mutes is not None:
            self._mutes = mutes
        claimed = self._db(
            "claim", lambda: state.claim(self._owner, list(self._channels))
        )
        for name, count in (claimed or {}).items():
            channel = self._channels[name]
            logger.info(
                "channel %r: %d alert(s) to replay from the outbox", name, count
            )
            channel.backlog = True
            if channel.queue is not None:
                with contextlib.suppress(asyncio.QueueFull):
                    channel.queue.put_nowait(_WAKE)

    async def _housekeep(self, state: NotifierState) -> None:
        while True:
            await asyncio.sleep(self._state_refresh)
            # A process that died does not write: look for its rows now and then.
            idle = self._loop.time() - self._claimed_at >= _RECLAIM
            self._refresh(state, force=idle)
            self._save_stats(state)

    def _save_stats(self, state: NotifierState, *, force: bool = False) -> None:
        snapshot = {name: dataclasses.asdict(s) for name, s in self.stats().items()}
        now = self._loop.time()
        if not force and snapshot == self._saved and now - self._beat < _HEARTBEAT:
            return
        self._db(
            "save stats", lambda: state.save_stats(snapshot, heartbeat=self._owner)
        )
        self._saved, self._beat = snapshot, now

    def _muted(self, notification: Notification, channel: str) -> Mute | None:
        mutes, state = self._mutes, self._state
        if not mutes or state is None:
            return None
        now = state.clock()
        for mute in mutes:
            if mute.active(now) and mute.matches(
                channel=channel, agent=notification.agent, event=notification.event
            ):
                return mute
        return None

    def _done(self, row: int) -> None:
        """A row delivered: deleted with the others of this loop iteration."""
        self._done_rows.append(row)
        if not self._done_scheduled:
            self._done_scheduled = True
            self._loop.call_soon(self._flush_done)

    def _flush_done(self) -> None:
        self._done_scheduled = False
        rows, self._done_rows = self._done_rows, []
        state = self._state
        if rows and state is not None:
            self._db("delete delivered", lambda: state.delivered(rows))
        if self._recorded >= self._due:
            self._notify_idle()

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
        return parks

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
        if not item.counted:
            return
        item.counted = False  # its later delivery is an extra result
        channel.stats.outboxed += 1
        notification = item.notification
        self._record(
            DeliveryResult(
                notification.id,
                channel.notifier.name,
                DeliveryStatus.FAILED,
                error_class="Outboxed",
                error="kept in the outbox behind an earlier failure on this channel; "
                "sent in order when the channel is back",
                agent=notification.agent,
                event=notification.event,
            )
        )

    async def _work_outbox(self, channel: _Channel) -> bool:
        """Deliver this channel's outbox rows in order; ``False``: the worker ends."""
        assert channel.queue is not None
        queue_ = channel.queue
        while channel.probe is not None:  # parked: wait, keeping arrivals outboxed
            if channel.closing or channel.stop_seen:
                return False
            if channel.probe.done():
                channel.probe = None
                break
            getter = self._loop.create_task(queue_.get())
            try:
                done, _ = await asyncio.wait(
                    {getter, channel.probe}, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                if not getter.done():
                    getter.cancel()
            if getter in done and not getter.cancelled():
                entry = getter.result()
                if entry is None:
                    return False
                if isinstance(entry, _Item):
                    if entry.row is None:
                        await self._deliver_item(channel, entry)
                    else:
                        self._defer(channel, entry)
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
        channel.stats.dropped += 1
        notification = item.notification
        logger.error(
            "channel %r: notification %d (%s) left the outbox before it was sent "
            "(evicted or purged)",
            channel.notifier.name,
            notification.id,
            redact(notification.title),
        )
        self._record(
            DeliveryResult(
                notification.id,
                channel.notifier.name,
                DeliveryStatus.DROPPED,
                error_class="Evicted",
                agent=notification.agent,
                event=notification.event,
            ),
            counted=item.counted,
        )

    # ------------------------------------------------------------ shutdown
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

    def _close_state(self) -> None:
        state = self._state
        if state is None:
            return
        self._flush_done()
        self._save_stats(state, force=True)
        self._db("release", lambda: state.release(self._owner))
        if self._owns_state:
            self._db("close", state.close)


_HANDED_OVER = frozenset({DeliveryStatus.FAILED, DeliveryStatus.PERMANENT})
"""Ends of a delivery that send the notification on to the channel's fallback (not
MAYBE_DELIVERED: it may have arrived, and a second channel would say it twice)."""


def _check_fallbacks(fallbacks: dict[str, str], channels: list[str]) -> dict[str, str]:
    """Validate escalation chains: known channels, one fallback each, no loop."""
    for name, fallback in fallbacks.items():
        for what in (name, fallback):
            if what not in channels:
                raise ValueError(
                    f"fallbacks: no channel named {what!r} "
                    f"(channels: {', '.join(channels)})"
                )
    targets = list(fallbacks.values())
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        raise ValueError(
            f"fallbacks: {', '.join(twice)} is the fallback of two channels"
        )
    for start in fallbacks:
        seen = [start]
        current = start
        while current in fallbacks:
            current = fallbacks[current]
            if current in seen:
                raise ValueError("fallbacks: a loop: " + " -> ".join([*seen, current]))
            seen.append(current)
    return fallbacks
