"""A channel that goes down and comes back, and close() with a backlog (issue 12, item 7).

Without a state file, when an alert's retries run out the alerts behind it are held
in memory: they do not each run into the outage with retries of their own. The
channel is tried again every ``outbox_retry`` seconds with the oldest held alert;
once that gets through, everything that waited goes at once, in order (as fast as
the destination's rate limit allows: Telegram takes a burst of 5).

``close()`` (and ``detach()``) waits while deliveries keep ending, so a backlog
drained at a rate limit is sent whole; what it gives up is returned and logged with
the count per channel.

Retry waits and rate-limit waits run on a fake clock (their async sleeps advance it)
unless a test says it runs on real time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from notifiers import (
    DeliveryResult,
    DeliveryStatus,
    Dispatcher,
    Notification,
    RateLimit,
    RateLimiter,
    RetryPolicy,
    TransientDeliveryError,
)
from notifiers.presets import attach
from notifiers.ratelimit import TELEGRAM_PER_CHAT
from notifiers.state import NotifierState
from notifiers.telegram import TelegramNotifier
from notifiers.testing import FakeTelegramServer, RecordingNotifier, TelegramReply
from pyorchestrate import OrchestratorEvent
from pyorchestrate.testing import wait_until

from ..presets.test_presets import BlockedNotifier, FakeOrchestrator
from .test_dispatcher import ResultWaiter

MakeDispatcher = Callable[..., Dispatcher]
TOKEN = "123456789:AAHfakeTokenForRecoveryTests_0123456789"
POLICY = RetryPolicy(max_attempts=3, budget=1e9, initial=0.01, max_wait=0.05, jitter=0)
E = OrchestratorEvent


class FakeTime:
    """One fake clock for the retry waits and the rate limiter, each sleep recorded
    apart; a retry wait of ``hang_from`` seconds or more never ends (until close(),
    or until the test calls ``end_hangs()``)."""

    def __init__(self, hang_from: float = float("inf")) -> None:
        self.now = 0.0
        self.retry_waits: list[float] = []
        self.limit_waits: list[float] = []
        self.hang_from = hang_from
        self._hanging: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def __call__(self) -> float:
        return self.now

    async def retry_sleep(self, seconds: float) -> None:
        if seconds >= self.hang_from:
            ended = asyncio.Event()
            self._hanging.append((asyncio.get_running_loop(), ended))
            self.retry_waits.append(seconds)  # seen: end_hangs() can end it
            await ended.wait()
        else:
            self.retry_waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    def end_hangs(self) -> None:
        """From the test's thread: end the retry waits hanging now."""
        hanging, self._hanging = self._hanging, []
        for loop, ended in hanging:
            loop.call_soon_threadsafe(ended.set)

    async def limit_sleep(self, seconds: float) -> None:
        self.limit_waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    def limiter(self) -> RateLimiter:
        return RateLimiter(clock=self, sleep=self.limit_sleep)


class Outage(RecordingNotifier):
    """A Telegram-like chat (1/s, bursts of 5) that refuses every send until the
    fake clock reaches ``up_at``; notes when each alert got through."""

    def __init__(self, clock: FakeTime, up_at: float) -> None:
        super().__init__(name="chat")
        self.clock = clock
        self.up_at = up_at
        self.refused = 0
        self.sent_at: list[float] = []
        self.release = threading.Event()  # the first send waits for it

    def rate_limits(
        self, notification: Notification
    ) -> Sequence[tuple[str, RateLimit]]:
        return [("chat:42", TELEGRAM_PER_CHAT)]

    async def send(self, notification: Notification) -> None:
        if not self.release.is_set():
            await asyncio.to_thread(self.release.wait, 10)
        if self.clock.now < self.up_at:
            self.refused += 1
            raise TransientDeliveryError("connection refused")
        self.sent_at.append(self.clock.now)
        await super().send(notification)


def submit_behind_the_first(
    dispatcher: Dispatcher, notifications: Sequence[Notification], channel: str
) -> None:
    """Submit, and see the first in flight with the others queued behind it (the
    test then lets the first one's send answer)."""
    for notification in notifications:
        dispatcher.submit(notification)
    behind = len(notifications) - 1
    assert wait_until(lambda: dispatcher.stats()[channel].queued == behind)


def held_first(*replies: str) -> list[TelegramReply]:
    """A 500 that waits for ``release()``, then ``replies``."""
    return [
        dataclasses.replace(TelegramReply.error(500), hold=True),
        *map(TelegramReply.parse, replies),
    ]


def alerts(count: int) -> list[Notification]:
    return [Notification(f"alert {i:02d}", "disk full") for i in range(count)]


def texts(server: FakeTelegramServer) -> list[str]:
    return [m["text"].split("\n")[0] for m in server.messages]


def of(results: Sequence[DeliveryResult], notification: Notification) -> list[str]:
    """The results of one notification, as ``status[:error_class]`` (attempts)."""
    return [
        f"{r.status.value}{':' + r.error_class if r.error_class else ''}/{r.attempts}"
        for r in results
        if r.notification_id == notification.id
    ]


def telegram(server: FakeTelegramServer, **kwargs: object) -> TelegramNotifier:
    return TelegramNotifier(TOKEN, 42, base_url=server.base_url, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- recovery


def test_after_an_outage_what_waited_goes_at_once_in_order(
    make_dispatcher: MakeDispatcher,
) -> None:
    """Down for 40 s, 20 alerts: the first one's retries run out (1, 2, 4, 8 s);
    the 19 behind it are held and tried again 30 s later: then all go, at once
    as far as the chat's burst allows, none with a backoff of its own."""
    fake = FakeTime()
    chat = Outage(fake, up_at=40.0)
    waiter = ResultWaiter()
    dispatcher = make_dispatcher(
        [chat],
        policy=RetryPolicy(max_attempts=5, budget=1e9, initial=1, jitter=0),
        sleep=fake.retry_sleep,
        gate=fake.limiter(),
        outbox_retry=30.0,
        on_result=[waiter],
    )
    sent = alerts(20)
    submit_behind_the_first(dispatcher, sent, "chat")
    chat.release.set()

    assert chat.wait_for(19) == sent[1:]  # in order; the first was given up
    assert dispatcher.flush(10)

    results = waiter.results
    assert of(results, sent[0]) == ["failed:TransientDeliveryError/5"]
    for notification in sent[1:]:
        # Held (no attempt of its own while the chat was down), then sent once.
        assert of(results, notification) == ["failed:Held/0", "delivered/1"]
    # The first alert's backoff, then one wait for the channel: no other retry.
    assert fake.retry_waits == [1.0, 2.0, 4.0, 8.0, 30.0]
    assert chat.refused == 5
    # Back at 45 s: the burst of 5 at once, then one a second.
    assert chat.sent_at[:5] == [45.0] * 5
    assert chat.sent_at[5:] == [45.0 + n for n in range(1, 15)]
    stats = dispatcher.stats()["chat"]
    assert (stats.sent, stats.failed, stats.held, stats.queued) == (19, 1, 19, 0)


def test_telegram_back_after_a_failed_try_gets_the_backlog_in_order(
    fake_telegram: FakeTelegramServer, make_dispatcher: MakeDispatcher
) -> None:
    """Against the fake Bot API: three 500s end the first alert, the try 30 s later
    fails too, the next one gets through: the other nine follow at once."""
    fake_telegram.script(held_first("500", "500", "500"))
    fake = FakeTime()
    waiter = ResultWaiter()
    dispatcher = make_dispatcher(
        [telegram(fake_telegram)],
        policy=POLICY,
        sleep=fake.retry_sleep,
        gate=fake.limiter(),
        outbox_retry=30.0,
        on_result=[waiter],
    )
    sent = alerts(10)
    submit_behind_the_first(dispatcher, sent, "telegram")
    fake_telegram.release()

    fake_telegram.wait_for(9)
    assert dispatcher.flush(10)

    assert texts(fake_telegram) == [f"<b>alert {i:02d}</b>" for i in range(1, 10)]
    assert fake.retry_waits == [0.01, 0.02, 30.0, 30.0]
    assert len(fake_telegram.requests) == 3 + 2 + 8  # no request beyond these
    assert of(waiter.results, sent[0]) == ["failed:TransientDeliveryError/3"]
    assert of(waiter.results, sent[1]) == ["failed:Held/0", "delivered/1"]
    for notification in sent[2:]:
        assert of(waiter.results, notification) == ["failed:Held/0", "delivered/1"]
    # 9 deliveries: the chat's burst of 5 passes at once (the bot's 30/s spaces
    # them by 1/30 s), the other 4 at 1/s.
    assert sum(wait > 0.5 for wait in fake.limit_waits) == 4


def test_a_429_beyond_the_cap_holds_the_alerts_behind_for_the_servers_wait(
    fake_telegram: FakeTelegramServer, make_dispatcher: MakeDispatcher
) -> None:
    fake_telegram.script(
        [dataclasses.replace(TelegramReply.retry_after(600), hold=True)]
    )
    fake = FakeTime()
    dispatcher = make_dispatcher(
        [telegram(fake_telegram)],
        policy=POLICY,
        sleep=fake.retry_sleep,
        rate_limits=False,
        outbox_retry=30.0,
    )
    submit_behind_the_first(dispatcher, alerts(3), "telegram")
    fake_telegram.release()
    fake_telegram.wait_for(2)
    assert dispatcher.flush(10)
    assert texts(fake_telegram) == ["<b>alert 01</b>", "<b>alert 02</b>"]
    assert fake.retry_waits == [600.0]  # the server's wait, not outbox_retry


def test_permanent_errors_do_not_hold_the_alerts_behind(
    fake_telegram: FakeTelegramServer, make_dispatcher: MakeDispatcher
) -> None:
    fake_telegram.script(["400"])
    fake = FakeTime()
    dispatcher = make_dispatcher(
        [telegram(fake_telegram)], policy=POLICY, sleep=fake.retry_sleep
    )
    for notification in alerts(3):
        dispatcher.submit(notification)
    fake_telegram.wait_for(2)
    assert dispatcher.flush(10)
    assert fake.retry_waits == []
    assert dispatcher.stats()["telegram"].held == 0


def test_alerts_beyond_queue_size_behind_a_failure_are_dropped_and_logged(
    make_dispatcher: MakeDispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a state, a down channel holds at most ``queue_size`` alerts; each one
    beyond is dropped: counted, logged at ERROR (title redacted), a DROPPED result."""
    fake = FakeTime(hang_from=30.0)  # the channel stays parked until close()
    chat = Outage(fake, up_at=float("inf"))
    waiter = ResultWaiter()
    dispatcher = make_dispatcher(
        [chat],
        policy=POLICY,
        sleep=fake.retry_sleep,
        outbox_retry=30.0,
        queue_size=2,
        on_result=[waiter],
    )
    sent = [*alerts(4), Notification(f"alert 04 {TOKEN}", "disk full")]
    submit_behind_the_first(dispatcher, sent[:2], "chat")
    chat.release.set()
    assert dispatcher.flush(10)  # the first given up, the second held

    with caplog.at_level(logging.ERROR, logger="notifiers.dispatcher"):
        for notification in sent[2:]:  # one at a time: none finds the queue full
            dispatcher.submit(notification)
            assert dispatcher.flush(10)
    dropped = waiter.wait_for(2, DeliveryStatus.DROPPED)

    assert [r.notification_id for r in dropped] == [n.id for n in sent[3:]]
    assert of(waiter.results, sent[3]) == of(waiter.results, sent[4]) == ["dropped/0"]
    assert [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()] == [
        f"channel 'chat': 2 alerts held; dropped notification {sent[3].id} (alert 03)",
        f"channel 'chat': 2 alerts held; dropped notification {sent[4].id} "
        "(alert 04 ***)",
    ]
    stats = dispatcher.stats()["chat"]
    assert (stats.held, stats.dropped, stats.queued) == (2, 2, 2)
    assert [r.notification_id for r in dispatcher.close(timeout=5.0)] == [
        n.id for n in sent[1:3]
    ]  # what was held, after one last try


def test_alerts_purged_from_the_outbox_while_the_channel_is_down_are_dropped(
    make_dispatcher: MakeDispatcher,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With a state: the alerts that wait in the outbox for a down channel, their
    rows purged meanwhile (``notify outbox purge``), are counted and logged as
    dropped when the channel is tried again, each with a DROPPED result."""
    fake = FakeTime(hang_from=30.0)  # the parked channel's wait ends at end_hangs()
    chat = Outage(fake, up_at=1.0)
    waiter = ResultWaiter()
    with NotifierState(tmp_path / "notify.sqlite3") as state:
        dispatcher = make_dispatcher(
            [chat],
            state=state,
            policy=POLICY,
            sleep=fake.retry_sleep,
            outbox_retry=30.0,
            on_result=[waiter],
        )
        sent = alerts(3)
        submit_behind_the_first(dispatcher, sent, "chat")
        chat.release.set()
        assert dispatcher.flush(10)  # the first failed, the others outboxed
        assert wait_until(lambda: fake.retry_waits[-1:] == [30.0])  # parked
        assert state.purge(channels=["chat"]) == 3

        with caplog.at_level(logging.ERROR, logger="notifiers.dispatcher"):
            fake.end_hangs()
            dropped = waiter.wait_for(3, DeliveryStatus.DROPPED)
        dispatcher.close(timeout=5.0)

    assert [r.notification_id for r in dropped] == [n.id for n in sent]
    assert of(waiter.results, sent[0]) == [
        "failed:TransientDeliveryError/3",
        "dropped:Evicted/0",
    ]
    for notification in sent[1:]:
        assert of(waiter.results, notification) == [
            "failed:Outboxed/0",
            "dropped:Evicted/0",
        ]
    assert [r.getMessage() for r in caplog.records if "outbox before" in r.msg] == [
        f"channel 'chat': notification {n.id} ({n.title}) left the outbox before it "
        "was sent (evicted or purged)"
        for n in sent
    ]
    assert chat.sent == []
    assert dispatcher.stats()["chat"].dropped == 3


# ---------------------------------------------------------------- close


def test_close_gives_a_down_channel_one_last_try_then_reports_what_it_held(
    fake_telegram: FakeTelegramServer,
    make_dispatcher: MakeDispatcher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_telegram.script(held_first(*["500"] * 10))
    fake = FakeTime(hang_from=30.0)  # the wait for the channel ends only at close()
    other = RecordingNotifier(name="other")
    dispatcher = make_dispatcher(
        [telegram(fake_telegram), other],
        policy=POLICY,
        sleep=fake.retry_sleep,
        rate_limits=False,
        outbox_retry=30.0,
    )
    sent = alerts(5)
    submit_behind_the_first(dispatcher, sent, "telegram")
    fake_telegram.release()
    assert dispatcher.flush(10)  # held alerts have their result: flush() returns
    assert len(fake_telegram.requests) == 3

    with caplog.at_level(logging.ERROR, logger="notifiers.dispatcher"):
        abandoned = dispatcher.close(timeout=5.0)

    assert [r.notification_id for r in abandoned] == [n.id for n in sent[1:]]
    assert {(r.status, r.channel) for r in abandoned} == {
        (DeliveryStatus.ABANDONED, "telegram")
    }
    assert len(fake_telegram.requests) == 3 + 1  # one last try, no more
    assert other.sent == sent
    assert (
        "dispatcher closed with 4 notification(s) abandoned (telegram: 4); without "
        "a state file they are lost" in caplog.text
    )
    assert dispatcher.stats()["telegram"].abandoned == 4


def test_close_delivers_what_was_held_if_the_channel_is_back(
    fake_telegram: FakeTelegramServer, make_dispatcher: MakeDispatcher
) -> None:
    fake_telegram.script(held_first("500", "500"))  # the first alert's attempts
    fake = FakeTime(hang_from=30.0)
    dispatcher = make_dispatcher(
        [telegram(fake_telegram)],
        policy=POLICY,
        sleep=fake.retry_sleep,
        rate_limits=False,
        outbox_retry=30.0,
    )
    sent = alerts(5)
    submit_behind_the_first(dispatcher, sent, "telegram")
    fake_telegram.release()
    assert dispatcher.flush(10)
    assert fake_telegram.messages == []

    assert dispatcher.close(timeout=5.0) == []
    assert texts(fake_telegram) == [f"<b>alert {i:02d}</b>" for i in range(1, 5)]


def test_close_waits_while_a_rate_limited_backlog_drains(
    fake_telegram: FakeTelegramServer,
) -> None:
    """Real time: 12 alerts at 10/s need about 1.1 s; close(timeout=0.3) sends them
    all, since each delivery moves its deadline on."""
    dispatcher = Dispatcher(
        [telegram(fake_telegram, rate_limits="10/s", bot_rate_limit=None)],
        policy=POLICY,
        name="notifiers-test-recovery-drain",
    )
    sent = alerts(12)
    for notification in sent:
        dispatcher.submit(notification)

    assert dispatcher.close(timeout=0.3) == []

    assert texts(fake_telegram) == [f"<b>alert {i:02d}</b>" for i in range(12)]
    assert dispatcher.stats()["telegram"].sent == 12


def test_close_stops_at_max_wait_and_returns_the_rest_in_order(
    fake_telegram: FakeTelegramServer,
) -> None:
    """Real time: 12 alerts at 4/s need about 2.8 s; max_wait=0.5 ends close()
    long before, with what was not sent returned (and the rest delivered)."""
    dispatcher = Dispatcher(
        [telegram(fake_telegram, rate_limits="4/s", bot_rate_limit=None)],
        policy=POLICY,
        name="notifiers-test-recovery-cap",
    )
    sent = alerts(12)
    for notification in sent:
        dispatcher.submit(notification)

    abandoned = dispatcher.close(timeout=0.4, max_wait=0.5)

    delivered = [
        r.notification_id
        for r in dispatcher.results
        if r.status is DeliveryStatus.DELIVERED
    ]
    assert delivered == [n.id for n in sent[: len(delivered)]]
    assert [r.notification_id for r in abandoned] == [
        n.id for n in sent[len(delivered) :]
    ]
    assert abandoned  # 0.5 s is not enough for 12 at 4/s
    assert {r.status for r in abandoned} == {DeliveryStatus.ABANDONED}


def test_close_gives_up_a_stalled_channel_after_timeout_without_progress(
    make_dispatcher: MakeDispatcher,
) -> None:
    stuck = BlockedNotifier(name="stuck")
    dispatcher = make_dispatcher([stuck])
    sent = alerts(3)
    for notification in sent:
        dispatcher.submit(notification)
    abandoned = dispatcher.close(timeout=0.1)  # max_wait (300 s) is not waited
    assert [r.notification_id for r in abandoned] == [n.id for n in sent]


# ---------------------------------------------------------------- detach


def test_detach_sends_a_rate_limited_burst_whole_and_says_what_it_could_not(
    fake_telegram: FakeTelegramServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's case, on real time: more alerts than the rate lets through within
    detach()'s timeout. They all arrive; and what a stuck channel held is returned
    and logged with the count per channel."""
    orchestrator = FakeOrchestrator()
    chat = telegram(fake_telegram, rate_limits="10/s", bot_rate_limit=None)
    attachment = attach(
        orchestrator, "errors_only", chat, BlockedNotifier(name="stuck")
    )
    for n in range(12):
        orchestrator.emit(E.AGENT_ERROR, agent_name=f"worker-{n}", error_message="x")

    with caplog.at_level(logging.WARNING, logger="notifiers.dispatcher"):
        abandoned = attachment.detach(timeout=0.3)

    assert len(fake_telegram.messages) == 12
    assert sorted(r.agent or "" for r in abandoned) == sorted(
        f"worker-{n}" for n in range(12)
    )
    assert {r.channel for r in abandoned} == {"stuck"}
    assert "12 notification(s) abandoned (stuck: 12)" in caplog.text
