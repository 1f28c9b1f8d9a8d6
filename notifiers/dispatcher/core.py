"""Dispatcher: the public API, and the thread and loop it runs on."""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import Future

from ..base import DeliveryResult, Notification, Notifier
from ..errors import DeliveryError, DispatcherClosed, RetriesExhausted
from ..ratelimit import RateLimiter
from ..redact import install_log_redaction, redact
from ..retry import RetryPolicy
from ..state import Mute, NotifierState
from .base import ResultHook, SendGate
from .channels import ChannelStats, _Channel
from .escalation import _check_fallbacks
from .shutdown import _Shutdown
from .summary import ChannelSummary, CloseReport, _Tally

__all__ = ["Dispatcher"]

logger = logging.getLogger("notifiers.dispatcher")


class Dispatcher(_Shutdown):
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
            rate (:class:`~notifiers.ratelimit.RateLimiter`: Telegram bursts of 5
            then 1/s per chat, at most 20/min per group; Slack 1/s per webhook);
            ``False``: no limits.
        name: the thread's name.
        state: a :class:`~notifiers.state.NotifierState`, or the path of its file
            (opened here, closed by :meth:`close`): the durable outbox, mutes and
            saved counters (see the module docstring). ``None``: memory only.
        close_state: whether :meth:`close` closes the state (default: only if
            given as a path).
        outbox_retry: seconds a parked channel (an alert's retries ran out) waits
            before trying again what waits behind it, in its outbox or, without a
            state, in memory (a server's longer retry-after wins). Waited with
            ``sleep``.
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
        self._tally: dict[str, _Tally] = {name: _Tally() for name in self._channels}
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
        self._progress = 0  # results recorded, of any kind (close() waits on them)
        self._progressed = asyncio.Event()
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
            queued = channel.queue.qsize() if channel.queue is not None else 0
            stats.queued = queued + len(channel.held)
            out[name] = stats
        return out

    def summary(self) -> dict[str, ChannelSummary]:
        """What each channel's results were so far: delivered, failed, dropped and
        abandoned (:class:`~notifiers.dispatcher.ChannelSummary`; a snapshot, any
        thread). :meth:`close` returns it too, on its report."""
        return {name: tally.snapshot() for name, tally in self._tally.items()}

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
        if any(
            (c.backlog or c.held or c.releasing) and c.probe is None
            for c in self._channels.values()
        ):
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

    def close(self, timeout: float = 10.0, *, max_wait: float = 300.0) -> CloseReport:
        """Deliver what is queued, then stop; return what was abandoned, with a
        summary per channel.

        The deadline moves with progress: ``close()`` gives up only after ``timeout``
        seconds in which no delivery ended (so a backlog drained at a channel's rate
        limit, Telegram's burst of 5 then 1/s, is sent whole however long it is), or
        after ``max_wait`` seconds in all (at least ``timeout``). A channel parked
        without a state (down, its alerts held in memory) gets one last try, then
        stops; with a state, a parked channel stops at once (its alerts stay in the
        outbox).

        What is abandoned is returned (one ``ABANDONED`` :class:`DeliveryResult` per
        notification and channel, also recorded and passed to the hooks) and logged
        with the count per channel: at WARNING with a state (it stays in the outbox
        for the next start), at ERROR without one (it is lost).

        The return value is a :class:`~notifiers.dispatcher.CloseReport`: the list
        of those ``ABANDONED`` results (``[]`` when nothing was abandoned), whose
        ``summary`` counts each channel's results over the dispatcher's life
        (delivered, failed, dropped, abandoned; see :meth:`summary`), ``ok`` says
        whether all went through, and ``str()`` reads one line per channel. The
        summary is also logged at INFO. Idempotent: a second call returns an empty
        report with the same summary.
        """
        with self._submit_lock:
            if self._closed:
                return CloseReport((), self.summary())
            self._closed = True
        limit = max(timeout, max_wait)
        future = asyncio.run_coroutine_threadsafe(
            self._shutdown(timeout, limit), self._loop
        )
        try:
            abandoned = future.result(limit + 5)
        except Exception:
            logger.exception("dispatcher: shutdown failed")
            abandoned = []
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()
        report = CloseReport(abandoned, self.summary())
        logger.info("dispatcher closed: %s", str(report).replace("\n", "; "))
        return report

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
