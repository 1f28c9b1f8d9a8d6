"""Notifier costs: the watcher's side of an alert, throughput, Telegram, a hanging channel.

Each row beside a baseline measured in the same run, sample by sample (interleaved):

* ``Dispatcher.submit()`` on the calling thread vs a bare ``SimpleQueue.put``;
* 1,000 alerts through a recording channel (first submit until the channel has the
  last) vs the same 1,000 through a bare loop thread: ``call_soon_threadsafe`` into an
  ``asyncio.Queue`` read by one worker task;
* one Telegram message to a fake Bot API on 127.0.0.1 through the dispatcher (submit
  until its ``on_result`` hook has the DELIVERED result; one long-lived ``Bot``; rate
  limits off, so the row measures the send, not the pacing) vs the naive way:
  ``asyncio.run`` with a new ``telegram.Bot`` per message;
* the pacing on its own: a burst to one chat with the default rate limits (a burst
  of 5, then 1 message/s), the time between deliveries once the burst is spent vs
  the 1 s the limit allows;
* an orchestrator's AGENT_STARTED callback latency (``start_agent`` until a stamping
  callback ran) with ``presets.attach(..., "lifecycle", <a channel that never
  answers>)`` registered before it, vs an orchestrator without notifiers.

Run: ``python bench/bench_notify.py [--quick]`` from any directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _stats

if TYPE_CHECKING:
    from notifiers import Notification

# notifiers and pyorchestrate are imported inside functions, like the other benchmarks.

SUBMIT_TARGET = 10e-6  # submit() under 10 µs p99 on the watcher's thread
TELEGRAM_TARGET = 20.0  # the dispatcher at least 20x faster than asyncio.run + Bot
PACING_TOLERANCE = 0.05  # paced deliveries 1 s apart, within 5 %
ADDED_TARGET = 1e-3  # a hanging channel adds under 1 ms p99 to the callback path
BATCH = 1000
TOKEN = "123456:bench-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaa"
CHAT_ID = 42


def fmt_us(seconds: float) -> str:
    """Seconds as microseconds, e.g. ``0.412 µs``."""
    us = seconds * 1e6
    return f"{us:.1f} µs" if us >= 100 else f"{us:.3f} µs"


def row(
    name: str,
    samples: list[float],
    baseline: list[float],
    target: str,
    fmt: Callable[[float], str] = _stats.fmt_ms,
) -> None:
    """A p50/p99 row beside its baseline; ``target`` is the verdict text."""
    pct = _stats.percentile
    _stats.print_row(
        name,
        fmt(pct(samples, 50)),
        fmt(pct(samples, 99)),
        fmt(pct(baseline, 50)),
        fmt(pct(baseline, 99)),
        target,
    )


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def _counting_notifier(target: list[int], done: threading.Event) -> Any:
    """A channel that counts what it is sent and sets ``done`` at ``target[0]``."""
    from notifiers import Notifier

    class Counting(Notifier):
        channel = "recording"

        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        async def send(self, notification: Notification) -> None:
            self.count += 1
            if self.count >= target[0]:
                done.set()

    return Counting()


def _hanging_notifier() -> Any:
    """A channel whose every send waits forever (a dead service without a timeout)."""
    from notifiers import Notifier

    class Hanging(Notifier):
        channel = "hanging"

        async def send(self, notification: Notification) -> None:
            await asyncio.Event().wait()

    return Hanging()


# ---------------------------------------------------------------- 1. submit()


def measure_submit(samples: int, warmup: int) -> tuple[list[float], list[float], int]:
    """Per-call seconds of ``submit()`` and of ``SimpleQueue.put``, interleaved."""
    from notifiers import Dispatcher, Notification

    total = samples + warmup
    target, done = [total], threading.Event()
    dispatcher = Dispatcher(
        [_counting_notifier(target, done)],
        queue_size=total + 10,
        name="notifiers-bench",
    )
    try:
        notifications = [Notification("bench", "body") for _ in range(total)]
        bare: queue.SimpleQueue[Notification] = queue.SimpleQueue()
        submit, put, clock = dispatcher.submit, bare.put, time.perf_counter
        submitted, baseline = [], []
        for i, notification in enumerate(notifications):
            # Alternate which goes first, so neither always follows the other.
            if i % 2:
                t0 = clock()
                submit(notification)
                t1 = clock()
                put(notification)
                t2 = clock()
                s, b = t1 - t0, t2 - t1
            else:
                t0 = clock()
                put(notification)
                t1 = clock()
                submit(notification)
                t2 = clock()
                s, b = t2 - t1, t1 - t0
            if i >= warmup:
                submitted.append(s)
                baseline.append(b)
        if not dispatcher.flush(_stats.WAIT_TIMEOUT):
            raise TimeoutError("the dispatcher did not deliver every submission")
        dropped = dispatcher.stats()["recording"].dropped
    finally:
        dispatcher.close()
    return submitted, baseline, dropped


def measure_submit_idle(
    samples: int, warmup: int
) -> tuple[list[float], list[float], list[float]]:
    """``submit()`` one at a time, each delivered before the next (the dispatcher idle,
    as between a watcher's alerts), vs ``SimpleQueue.put`` right after it; then the
    floor of any such call: ``call_soon_threadsafe`` waking a bare idle loop thread,
    each waited for before the next (a phase of its own: interleaved with the
    submits, its loop thread slowed ``submit()`` down)."""
    from notifiers import Dispatcher, Notification

    target, done = [samples + warmup], threading.Event()
    dispatcher = Dispatcher([_counting_notifier(target, done)], name="notifiers-bench")
    clock = time.perf_counter
    try:
        bare: queue.SimpleQueue[Notification] = queue.SimpleQueue()
        submit, put = dispatcher.submit, bare.put
        submitted, baseline = [], []
        for i in range(samples + warmup):
            notification = Notification("bench", "body")
            t0 = clock()
            submit(notification)
            t1 = clock()
            if not dispatcher.flush(_stats.WAIT_TIMEOUT):
                raise TimeoutError("the dispatcher did not deliver a submission")
            t2 = clock()
            put(notification)
            t3 = clock()
            if i >= warmup:
                submitted.append(t1 - t0)
                baseline.append(t3 - t2)
    finally:
        dispatcher.close()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="bench-bare-wake")
    thread.start()
    woken = threading.Event()
    wakes = []
    try:
        wake = loop.call_soon_threadsafe
        for i in range(samples + warmup):
            woken.clear()
            t0 = clock()
            # The Event is set on the loop's next turn, as flush() is woken.
            wake(loop.call_soon, woken.set)
            t1 = clock()
            if not woken.wait(_stats.WAIT_TIMEOUT):
                raise TimeoutError("the bare loop did not wake")
            if i >= warmup:
                wakes.append(t1 - t0)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_stats.WAIT_TIMEOUT)
        loop.close()
    return submitted, baseline, wakes


def measure_thread_wake(samples: int, warmup: int) -> list[float]:
    """The floor of ``submit()`` on an idle dispatcher since the doorbell: a
    ``SimpleQueue.put`` that wakes a thread parked in ``get()``, each waited for
    before the next."""
    tokens: queue.SimpleQueue[threading.Event | None] = queue.SimpleQueue()

    def parked() -> None:
        while (event := tokens.get()) is not None:
            event.set()

    thread = threading.Thread(target=parked, name="bench-parked-thread")
    thread.start()
    clock, put, woken, wakes = time.perf_counter, tokens.put, threading.Event(), []
    try:
        for i in range(samples + warmup):
            woken.clear()
            t0 = clock()
            put(woken)
            t1 = clock()
            if not woken.wait(_stats.WAIT_TIMEOUT):
                raise TimeoutError("the parked thread did not wake")
            if i >= warmup:
                wakes.append(t1 - t0)
    finally:
        tokens.put(None)
        thread.join(_stats.WAIT_TIMEOUT)
    return wakes


# ---------------------------------------------------------------- 2. throughput


class BareLoop:
    """The minimal sync→async bridge: a loop thread, one asyncio.Queue, one worker."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.done = threading.Event()
        self.target = 0
        self.count = 0
        self._ready = threading.Event()
        self._queue: asyncio.Queue[object] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, name="bench-bare-loop")
        self._thread.start()
        if not self._ready.wait(_stats.WAIT_TIMEOUT):
            raise TimeoutError("the bare loop did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._start)
        self.loop.run_forever()

    def _start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = self.loop.create_task(self._work())
        self._ready.set()

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            await self._queue.get()
            self.count += 1
            if self.count >= self.target:
                self.done.set()

    def put(self, item: object) -> None:
        assert self._queue is not None
        self.loop.call_soon_threadsafe(self._queue.put_nowait, item)

    async def _stop_worker(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    def close(self) -> None:
        stopping = asyncio.run_coroutine_threadsafe(self._stop_worker(), self.loop)
        stopping.result(_stats.WAIT_TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(_stats.WAIT_TIMEOUT)
        if not self._thread.is_alive():
            self.loop.close()


def measure_batches(rounds: int) -> tuple[list[float], list[float]]:
    """Seconds for BATCH alerts: dispatcher + recording channel vs the bare bridge."""
    from notifiers import Dispatcher, Notification

    target, done = [0], threading.Event()
    counting = _counting_notifier(target, done)
    dispatcher = Dispatcher([counting], queue_size=BATCH, name="notifiers-bench")
    bare = BareLoop()
    try:

        def dispatched() -> float:
            notifications = [Notification("bench", "body") for _ in range(BATCH)]
            done.clear()
            target[0] = counting.count + BATCH
            t0 = time.perf_counter()
            for notification in notifications:
                dispatcher.submit(notification)
            if not done.wait(_stats.WAIT_TIMEOUT):
                raise TimeoutError("the recording channel did not get the batch")
            elapsed = time.perf_counter() - t0
            if not dispatcher.flush(_stats.WAIT_TIMEOUT):  # results recorded too
                raise TimeoutError("the dispatcher did not record the batch")
            return elapsed

        def bare_batch() -> float:
            items = [Notification("bench", "body") for _ in range(BATCH)]
            bare.done.clear()
            bare.target = bare.count + BATCH
            t0 = time.perf_counter()
            for item in items:
                bare.put(item)
            if not bare.done.wait(_stats.WAIT_TIMEOUT):
                raise TimeoutError("the bare loop did not get the batch")
            return time.perf_counter() - t0

        batches, baseline = _stats.interleave(rounds, 2, dispatched, bare_batch)
        dropped = dispatcher.stats()["recording"].dropped
        if dropped:
            print(f"(throughput: {dropped} alerts dropped)")
    finally:
        dispatcher.close()
        bare.close()
    return batches, baseline


# ---------------------------------------------------------------- 3. Telegram


def measure_telegram(samples: int) -> tuple[list[float], list[float]] | None:
    """Seconds per message: through the dispatcher vs asyncio.run + a new Bot."""
    try:
        import telegram

        from notifiers import DeliveryResult, Dispatcher, Notification
        from notifiers.telegram import TelegramNotifier
        from notifiers.testing import FakeTelegramServer
    except ImportError as exc:  # python-telegram-bot is an optional extra
        print(f"(Telegram row skipped: {exc})")
        return None

    delivered = threading.Event()
    outcome: list[DeliveryResult] = []

    def hook(result: DeliveryResult) -> None:
        outcome.append(result)
        delivered.set()

    with FakeTelegramServer() as server:
        notifier = TelegramNotifier(TOKEN, CHAT_ID, base_url=server.base_url)
        # Rate limits off: this row is the send; the pacing has its own row.
        dispatcher = Dispatcher(
            [notifier], on_result=[hook], rate_limits=False, name="notifiers-bench"
        )
        try:

            def dispatched() -> float:
                notification = Notification("bench", "a <b>body</b> & more")
                delivered.clear()
                outcome.clear()
                t0 = time.perf_counter()
                dispatcher.submit(notification)
                if not delivered.wait(_stats.WAIT_TIMEOUT):
                    raise TimeoutError("no result from the Telegram channel")
                elapsed = time.perf_counter() - t0
                if not outcome[0].ok:
                    raise RuntimeError(f"Telegram delivery failed: {outcome[0]}")
                return elapsed

            async def naive_send() -> None:
                async with telegram.Bot(TOKEN, base_url=server.base_url) as bot:
                    await bot.send_message(CHAT_ID, "bench\na &lt;b&gt;body")

            def naive() -> float:
                t0 = time.perf_counter()
                asyncio.run(naive_send())
                return time.perf_counter() - t0

            via_dispatcher, via_naive = _stats.interleave(samples, 2, dispatched, naive)
        finally:
            dispatcher.close()
        received = len(server.messages)
    expected = 2 * (samples + 2)
    if received != expected:
        raise RuntimeError(f"the fake server got {received} messages, not {expected}")
    return via_dispatcher, via_naive


def measure_pacing(paced: int) -> tuple[list[float], float] | None:
    """Seconds between deliveries to one chat once its burst is spent (default
    limits), and the interval the limit allows."""
    try:
        from notifiers import DeliveryResult, Dispatcher, Notification
        from notifiers.telegram import TelegramNotifier
        from notifiers.testing import FakeTelegramServer
    except ImportError as exc:
        print(f"(Telegram pacing row skipped: {exc})")
        return None

    burst = 5  # Telegram's per-chat burst (notifiers.telegram)
    total = burst + paced + 1
    stamps: list[float] = []
    done = threading.Event()

    failed: list[DeliveryResult] = []

    def hook(result: DeliveryResult) -> None:
        if not result.ok:
            failed.append(result)
        stamps.append(time.perf_counter())
        if len(stamps) == total:
            done.set()

    with FakeTelegramServer() as server:
        notifier = TelegramNotifier(TOKEN, CHAT_ID, base_url=server.base_url)
        dispatcher = Dispatcher([notifier], on_result=[hook], name="notifiers-bench")
        try:
            for index in range(total):
                dispatcher.submit(Notification("pace", f"message {index}"))
            if not done.wait(total + _stats.WAIT_TIMEOUT):
                raise TimeoutError("the paced burst was not delivered")
        finally:
            dispatcher.close()
    if failed:
        raise RuntimeError(f"Telegram delivery failed: {failed[0]}")
    # From the first paced delivery on (the gap between the burst and it is
    # shorter: the bucket refilled a little while the burst was sent).
    intervals = [b - a for a, b in itertools.pairwise(stamps[burst:])]
    return intervals, 1.0


# ---------------------------------------------------------------- 4. router


@contextlib.contextmanager
def started_callbacks(with_notifier: bool) -> Iterator[tuple[Callable[[], float], Any]]:
    """Yield a sampler (start_agent → AGENT_STARTED callback ran) and the attachment."""
    from bench._agents import IdleThread
    from notifiers.presets import attach
    from pyorchestrate import Orchestrator, OrchestratorEvent

    config = Orchestrator.Config(enable_command_interface=False, agent_stop_timeout=5.0)
    started, ended = _stats.Arrival(), _stats.Arrival()
    name = "bench-notify" if with_notifier else "bench-plain"
    with Orchestrator(name, config) as orchestrator:
        attachment = None
        if with_notifier:
            # Registered first: its handler runs before the stamping callback, on
            # the same callback worker (one agent's callbacks run in order).
            attachment = attach(orchestrator, "lifecycle", _hanging_notifier())
        orchestrator.register_event(OrchestratorEvent.AGENT_STARTED, started)
        orchestrator.register_event(OrchestratorEvent.AGENT_TERMINATED, ended)
        orchestrator.register_agent(IdleThread, "idle")

        def sample() -> float:
            started.clear()
            ended.clear()
            t0 = time.perf_counter()
            orchestrator.start_agent("idle")
            t1 = started.wait("AGENT_STARTED")
            orchestrator.stop_agent("idle")
            ended.wait("AGENT_TERMINATED")
            return t1 - t0

        try:
            yield sample, attachment
        finally:
            if attachment is not None:
                attachment.detach(timeout=0.2)


def measure_router(samples: int) -> tuple[list[float], list[float], dict[str, int]]:
    """AGENT_STARTED callback latency with a hanging channel attached vs without."""
    facts: dict[str, int] = {}
    with (
        started_callbacks(True) as (with_notifier, attachment),
        started_callbacks(False) as (plain, _),
    ):
        hanging, bare = _stats.interleave(samples, 5, with_notifier, plain)
        stats = attachment.dispatcher.stats()["hanging"]
        facts = {
            "submitted": attachment.submitted,
            "queued": stats.queued,
            "dropped": stats.dropped,
        }
        facts["abandoned"] = len(attachment.detach(timeout=0.2))
    return hanging, bare, facts


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples (smoke run)")
    args = parser.parse_args(argv)
    counts = {
        "submit": 50_000,
        "idle": 5_000,
        "batches": 30,
        "telegram": 100,
        "paced": 8,
        "router": 200,
    }
    if args.quick:
        counts = {
            "submit": 2_000,
            "idle": 200,
            "batches": 3,
            "telegram": 5,
            "paced": 2,
            "router": 10,
        }

    _stats.print_title(
        "Notifiers: submit, throughput, Telegram, hanging channel",
        samples=",".join(f"{k}:{v}" for k, v in counts.items()),
    )
    submitted, put, submit_dropped = measure_submit(counts["submit"], 1000)
    idle, idle_put, idle_wake = measure_submit_idle(counts["idle"], 50)
    thread_wake = measure_thread_wake(counts["idle"], 50)
    batches, bare_batches = measure_batches(counts["batches"])
    telegram = measure_telegram(counts["telegram"])
    pacing = measure_pacing(counts["paced"])
    hanging, plain, facts = measure_router(counts["router"])

    pct = _stats.percentile
    _stats.print_header(high=99)
    row(
        "submit(), back to back",
        submitted,
        put,
        f"p99 < 10 µs: {verdict(pct(submitted, 99) <= SUBMIT_TARGET)}",
        fmt_us,
    )
    row(
        "submit(), one at a time (dispatcher idle)",
        idle,
        idle_put,
        f"p99 < 10 µs: {verdict(pct(idle, 99) <= SUBMIT_TARGET)}",
        fmt_us,
    )
    row(
        "loop wake-up alone (bare, idle loop)",
        idle_wake,
        idle_put,
        "none set (the doorbell's job)",
        fmt_us,
    )
    row(
        "thread wake-up alone (SimpleQueue)",
        thread_wake,
        idle_put,
        f"p99 < 10 µs: {verdict(pct(thread_wake, 99) <= SUBMIT_TARGET)}",
        fmt_us,
    )
    row("1,000 alerts -> recording channel", batches, bare_batches, "none set")
    if telegram is not None:
        via_dispatcher, via_naive = telegram
        speedup = pct(via_naive, 50) / pct(via_dispatcher, 50)
        row(
            "Telegram send, loopback, via dispatcher",
            via_dispatcher,
            via_naive,
            f">= 20x faster: {verdict(speedup >= TELEGRAM_TARGET)}",
        )
    if pacing is not None:
        intervals, allowed = pacing
        off = abs(pct(intervals, 50) - allowed) / allowed
        row(
            "Telegram pacing, 1 msg/s per chat (default)",
            intervals,
            [allowed] * len(intervals),
            f"1 s apart ±5 %: {verdict(off <= PACING_TOLERANCE)}",
        )
    added = pct(hanging, 99) - pct(plain, 99)
    row(
        "AGENT_STARTED callback, channel hanging",
        hanging,
        plain,
        f"added p99 < 1 ms: {verdict(added < ADDED_TARGET)}",
    )
    print()
    for line in (
        "baselines: submit: a bare SimpleQueue.put of the same object, interleaved",
        "  call by call (one at a time: each submission delivered before the next,",
        "  the put timed right after); loop wake-up: call_soon_threadsafe of",
        "  Event.set into a bare idle loop thread, what submit() paid before the",
        "  doorbell; thread wake-up: SimpleQueue.put to a thread parked in get(),",
        "  the floor of submit() waking its doorbell (both after the submits, each",
        "  waited for before the next call); 1,000 alerts: call_soon_threadsafe into an",
        "  asyncio.Queue on a bare loop thread, one worker task; Telegram:",
        "  asyncio.run with a new telegram.Bot per message (async with: getMe, then",
        "  sendMessage), the dispatcher's rate limits off; pacing: the interval the",
        "  default limit allows (a burst of 5, then 1/s per chat), the row the time",
        "  between deliveries after the burst; AGENT_STARTED: the same orchestrator",
        "  without notifiers.",
    ):
        print(line)
    for name, values in (
        ("back to back", submitted),
        ("one at a time", idle),
        ("bare loop wake-up", idle_wake),
        ("bare thread wake-up", thread_wake),
    ):
        over = sum(v > SUBMIT_TARGET for v in values) / len(values)
        print(
            f"submit(), {name}: {over:.2%} of calls over 10 µs; "
            f"p99.9 {pct(values, 99.9) * 1e6:.1f} µs"
        )
    print(f"submit(), back to back: {submit_dropped} dropped")
    per_alert = pct(batches, 50) / BATCH
    print(
        f"1,000 alerts: {per_alert * 1e6:.1f} µs per alert at p50 "
        f"({1 / per_alert:,.0f} alerts/s); bare bridge "
        f"{pct(bare_batches, 50) / BATCH * 1e6:.1f} µs"
    )
    if telegram is not None:
        via_dispatcher, via_naive = telegram
        print(
            f"Telegram: the dispatcher is {pct(via_naive, 50) / pct(via_dispatcher, 50):.1f}x "
            f"faster at p50, {pct(via_naive, 99) / pct(via_dispatcher, 99):.1f}x at p99"
        )
    print(
        f"hanging channel: added p50 {(pct(hanging, 50) - pct(plain, 50)) * 1e3:.3f} ms, "
        f"p99 {added * 1e3:.3f} ms; alerts submitted {facts['submitted']}, queued "
        f"{facts['queued']}, dropped {facts['dropped']}, abandoned at close "
        f"{facts['abandoned']}"
    )
    return _stats.finish()


if __name__ == "__main__":
    sys.exit(main())
