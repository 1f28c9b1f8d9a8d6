"""Dispatcher: the public API, and the thread and loop its parts run on."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING

from ..base import DeliveryResult, Notification, Notifier
from ..errors import DeliveryError, DispatcherClosed, RetriesExhausted
from ..ratelimit import RateLimiter
from ..redact import install_log_redaction, redact
from ..retry import RetryPolicy
from ._delivery import DeliveryStep, SendGate
from ._escalation import check_fallbacks
from ._intake import Intake
from ._items import ChannelStats, Item
from ._outbox import NullOutbox, Outbox
from ._results import ResultHook, ResultLedger
from ._summary import ChannelSummary, CloseReport
from ._worker import ChannelWorker

if TYPE_CHECKING:
    from ..state import NotifierState

__all__ = ["Dispatcher"]

logger = logging.getLogger("notifiers.dispatcher")


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
        chosen: dict[str, tuple[Notifier, RetryPolicy]] = {}
        default = policy or RetryPolicy()
        for notifier in notifiers:
            if notifier.name in chosen:
                raise ValueError(f"two channels are named {notifier.name!r}")
            chosen[notifier.name] = (
                notifier,
                (policies or {}).get(notifier.name, default),
            )
        if not chosen:
            raise ValueError("a dispatcher needs at least one notifier")
        self.fallbacks: dict[str, str] = check_fallbacks(
            dict(fallbacks or {}), list(chosen)
        )
        self.queue_size = queue_size
        if gate is None and rate_limits:
            # Real time, whatever ``sleep`` is: a limiter waits on its own clock (give
            # ``gate=RateLimiter(clock=..., sleep=...)`` to test it on fake time).
            gate = RateLimiter()
        deliver = DeliveryStep(gate)
        self.rate_limiter: RateLimiter | None = deliver.rate_limiter
        self._loop = asyncio.new_event_loop()
        self._ledger = ResultLedger(
            chosen, size=results_size, hooks=on_result, loop=self._loop
        )
        self.results: deque[DeliveryResult] = self._ledger.results
        self._outbox: Outbox = NullOutbox()
        if state is not None:
            # Imported here: without a state file no state-file code is loaded.
            from ..state import NotifierState
            from ._sqlite_outbox import SqliteOutbox

            owns = (
                close_state
                if close_state is not None
                else not isinstance(state, NotifierState)
            )
            self._outbox = SqliteOutbox(
                state if isinstance(state, NotifierState) else NotifierState(state),
                owns=owns,
                refresh=state_refresh,
                on_settled=self._ledger.notify_idle,
            )
        self._channels: dict[str, ChannelWorker] = {
            name: ChannelWorker(
                notifier,
                chosen_policy,
                deliver=deliver,
                outbox=self._outbox,
                ledger=self._ledger,
                sleep=sleep,
                queue_size=queue_size,
                outbox_retry=outbox_retry,
            )
            for name, (notifier, chosen_policy) in chosen.items()
        }
        for name, fallback in self.fallbacks.items():
            self._channels[name].fallback = self._channels[fallback]
        self._intake = Intake(
            self._loop,
            list(self._channels.values()),
            standby=set(self.fallbacks.values()),
            outbox=self._outbox,
            ledger=self._ledger,
            name=name,
        )
        for worker in self._channels.values():
            worker.notifier.bound(self)
        self._closed = False
        self._submit_lock = threading.Lock()  # submit() and close() only
        self._ready = threading.Event()
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
    def notifiers(self) -> list[Notifier]:
        """The channels' notifiers."""
        return [worker.notifier for worker in self._channels.values()]

    @property
    def durable(self) -> bool:
        """Whether accepted alerts are kept in a state file's outbox."""
        return self._outbox.durable

    @property
    def outbox_owner(self) -> str | None:
        """This dispatcher's owner token in the state file's outbox, if any."""
        owner = getattr(self._outbox, "owner", None)
        return owner if isinstance(owner, str) else None

    def hand_over_escalated(
        self, notification: Notification, channel: str, target: str, row: int | None
    ) -> None:
        """On the loop: ``channel`` escalates ``notification`` (nobody acknowledged
        it) to ``target``, the next channel of its chain, whose result says
        ``fallback_for=channel``; ``row``: its outbox row, written by the caller in
        the same transaction that marked the escalation fired. If ``target`` fails
        too, the chain goes on as for any fallback."""
        worker = self._channels[target]
        if row is None and self._outbox.durable:
            return  # already in the outbox: its replay delivers it
        worker.enqueue(Item(notification, row, counted=False, fallback_for=channel))

    @property
    def state(self) -> NotifierState | None:
        """The durable state, if any."""
        return self._outbox.state

    def is_muted(
        self, agent: str | None, event: str | None, channel: str | None = None
    ) -> bool:
        """Whether the state's mutes (as last read, at most ``state_refresh`` old)
        cover an alert of ``agent`` and ``event`` (to ``channel``, if given).

        Cheap and thread-safe, no file access: fits the alert pipeline's
        ``muted(agent, event)``. Always ``False`` without a state.
        """
        return self._outbox.is_muted(agent, event, channel)

    def stats(self) -> dict[str, ChannelStats]:
        """Counters per channel (a snapshot)."""
        return {name: worker.snapshot() for name, worker in self._channels.items()}

    def summary(self) -> dict[str, ChannelSummary]:
        """What each channel's results were so far: delivered, failed, dropped and
        abandoned (:class:`~notifiers.dispatcher.ChannelSummary`; a snapshot, any
        thread). :meth:`close` returns it too, on its report."""
        return self._ledger.summary()

    def add_hook(self, hook: ResultHook) -> None:
        """Also call ``hook`` with every result."""
        self._ledger.hooks.append(hook)

    def submit(self, notification: Notification) -> None:
        """Queue ``notification`` for every channel; O(1), never blocks, any thread.

        Raises:
            DispatcherClosed: after :meth:`close`.
        """
        with self._submit_lock:  # close() takes it too: no submit slips past close
            if self._closed:
                raise DispatcherClosed("the dispatcher is closed")
            self._intake.put(notification)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted notification has a result; ``False`` on timeout.

        With a state it also waits for the outbox replays under way (not for a parked
        channel's next try).
        """
        deadline = time.monotonic() + timeout
        idle = self._ledger.idle
        with idle:
            while not self._settled():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                idle.wait(min(remaining, 0.05))
        return True

    def _settled(self) -> bool:
        """Every result recorded and every delivered row deleted, and no backlog or
        held alerts being delivered (a parked channel, waiting to try again, does
        not count: nothing will happen soon)."""
        if not self._intake.empty or self._outbox.settling:
            return False
        if any(worker.busy for worker in self._channels.values()):
            return False
        return not self._ledger.owing

    def send_now(
        self, notification: Notification, channel: str, timeout: float = 30.0
    ) -> DeliveryResult:
        """Deliver on one channel and wait for the result (e.g. a test message).

        Raises:
            RetriesExhausted: if it could not be delivered.
        """
        if self._closed:
            raise DispatcherClosed("the dispatcher is closed")
        worker = self._channels[channel]
        future: Future[DeliveryResult] = asyncio.run_coroutine_threadsafe(
            self._send_now(worker, notification), self._loop
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

    @staticmethod
    async def _send_now(
        worker: ChannelWorker, notification: Notification
    ) -> DeliveryResult:
        result, _error = await worker.attempt(notification)
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
        if not self._intake.close():
            logger.error("dispatcher: the doorbell thread did not stop within 5 s")
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
        # Workers exist before any channel starts, so a submit() that arrives while
        # a slow channel is starting is queued, not lost; and the state is read
        # (mutes, rows to replay) before the constructor returns.
        try:
            for worker in self._channels.values():
                worker.launch(self._loop)
            self._outbox.open(self._loop, self._channels)
        finally:
            self._ready.set()  # ready to take submissions
        self._start_task = self._loop.create_task(self._start())

    async def _start(self) -> None:
        await asyncio.gather(*(w.start_channel() for w in self._channels.values()))

    async def _shutdown(self, idle: float, limit: float) -> list[DeliveryResult]:
        """close() on the loop: drain, stop the workers, record what is abandoned,
        close the outbox and the channels."""
        self._intake.drain()
        workers = list(self._channels.values())
        for worker in workers:
            worker.stop()
        tasks = {w.task for w in workers if w.task is not None}
        pending = await self._ledger.wait_while_progressing(tasks, idle, limit)
        abandoned: list[DeliveryResult] = []
        for worker in workers:
            abandoned += worker.abandon(cut_off=worker.task in pending)
        if pending:
            await asyncio.wait(pending, timeout=1)
        probes = [w.probe for w in workers if w.probe is not None]
        for task in probes:
            task.cancel()
        if probes:
            await asyncio.wait(probes, timeout=1)
        # The channels first: one may still use the state file as it closes
        # (Telegram's chat-ops finishes the actions under way).
        for worker in workers:
            try:
                await asyncio.wait_for(worker.notifier.aclose(), 5)
            except Exception as exc:
                logger.error("channel %r failed to close: %s", worker.name, redact(exc))
        await self._outbox.aclose()
        if abandoned:
            per_channel = Counter(r.channel for r in abandoned)
            kept = self._outbox.durable
            logger.log(
                logging.WARNING if kept else logging.ERROR,
                "dispatcher closed with %d notification(s) abandoned (%s)%s",
                len(abandoned),
                ", ".join(f"{name}: {count}" for name, count in per_channel.items()),
                " and kept in the outbox for the next start"
                if kept
                else "; without a state file they are lost",
            )
        return abandoned
