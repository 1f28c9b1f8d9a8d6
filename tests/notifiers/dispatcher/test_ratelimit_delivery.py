"""Rate limits through a real Dispatcher against the local fakes.

The limiter runs on fake time (a clock that its async sleep advances) unless a test
says otherwise, so a burst that Telegram would take 100 s to accept is checked in
well under a second; each send is stamped with the fake time it was let through.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from notifiers import (
    DeliveryStatus,
    Dispatcher,
    Notification,
    Notifier,
    RateLimiter,
    RetryPolicy,
)
from notifiers.apprise import AppriseNotifier
from notifiers.dispatcher import SendGate
from notifiers.telegram import TelegramNotifier
from notifiers.testing import FakeTelegramServer, WebhookSink

from ..conftest import SleepRecorder
from ..test_ratelimit import FakeTime, gaps, max_in_window

TOKEN = "123456789:AAHfakeTokenForRateLimitTests_012345678"
SLACK_A, SLACK_B, SLACK_C = "T0SLACKAAA", "B0SLACKBBB", "XslackTokenCCCCCCCCCCCC1"
SLACK_URL = f"slack://{SLACK_A}/{SLACK_B}/{SLACK_C}"
POLICY = RetryPolicy(max_attempts=3, initial=0.01, max_wait=0.05, jitter=0)

MakeDispatcher = Callable[..., Dispatcher]
Stamps = list[tuple[str, int, float]]


def stamping(
    limiter: RateLimiter, clock: Callable[[], float], stamps: Stamps
) -> SendGate:
    """The limiter as a gate, noting (channel, notification id, time) of each pass."""

    async def gate(notifier: Notifier, notification: Notification) -> None:
        await limiter(notifier, notification)
        stamps.append((notifier.name, notification.id, clock()))

    return gate


def times_of(stamps: Stamps, channel: str) -> list[float]:
    return [t for name, _, t in stamps if name == channel]


def burst(count: int, title: str = "alert") -> list[Notification]:
    return [Notification(f"{title} {i:03d}", "disk full") for i in range(count)]


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


# ---------------------------------------------------------------- Telegram
def test_a_burst_of_100_alerts_to_one_chat_arrives_whole_in_order_5_then_1_a_second(
    fake_telegram: FakeTelegramServer,
    make_dispatcher: MakeDispatcher,
    fake_sleep: SleepRecorder,
    clock: FakeTime,
) -> None:
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    stamps: Stamps = []
    notifier = TelegramNotifier(TOKEN, 42, base_url=fake_telegram.base_url)
    dispatcher = make_dispatcher(
        [notifier],
        policy=POLICY,
        sleep=fake_sleep,
        gate=stamping(limiter, clock, stamps),
    )
    alerts = burst(100)

    started = time.perf_counter()
    for alert in alerts:
        dispatcher.submit(alert)
    assert dispatcher.flush(30), "the burst was not delivered in time"
    wall = time.perf_counter() - started

    results = list(dispatcher.results)
    assert [r.notification_id for r in results] == [a.id for a in alerts]
    assert {r.status for r in results} == {DeliveryStatus.DELIVERED}
    messages = fake_telegram.messages
    assert [m["text"] for m in messages] == [
        f"<b>alert {i:03d}</b>\ndisk full" for i in range(100)
    ]
    assert {m["chat_id"] for m in messages} == {"42"}
    stats = dispatcher.stats()["telegram"]
    assert (stats.sent, stats.failed, stats.dropped, stats.retried) == (100, 0, 0, 0)
    # Fake time: a burst of 5 (Telegram tolerates short bursts; the bot's 30/s
    # spaces them by 1/30 s), then one per second; real time: no waiting at all.
    sent_at = times_of(stamps, "telegram")
    assert len(sent_at) == 100
    assert sent_at[4] - sent_at[0] == pytest.approx(4 / 30)
    assert min(gaps(sent_at[5:])) >= 1.0 - 1e-9
    assert sent_at[-1] - sent_at[0] == pytest.approx(95.0)
    assert max_in_window(sent_at, 1.0) == 5
    assert wall < 10.0, f"{wall:.2f} s of real time for 95 s of fake waiting"
    waits = limiter.stats()["telegram"]
    assert (waits.passed, waits.waited, waits.waiting) == (100, 99, 0)
    assert fake_sleep.waits == []  # no retry


def test_a_group_chat_gets_at_most_20_alerts_a_minute(
    fake_telegram: FakeTelegramServer,
    make_dispatcher: MakeDispatcher,
    fake_sleep: SleepRecorder,
    clock: FakeTime,
) -> None:
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    stamps: Stamps = []
    notifier = TelegramNotifier(TOKEN, -1001234567890, base_url=fake_telegram.base_url)
    dispatcher = make_dispatcher(
        [notifier],
        policy=POLICY,
        sleep=fake_sleep,
        gate=stamping(limiter, clock, stamps),
    )
    alerts = burst(45)

    for alert in alerts:
        dispatcher.submit(alert)
    assert dispatcher.flush(30)

    assert [r.status for r in dispatcher.results] == [DeliveryStatus.DELIVERED] * 45
    assert [m["text"] for m in fake_telegram.messages] == [
        f"<b>alert {i:03d}</b>\ndisk full" for i in range(45)
    ]
    sent_at = times_of(stamps, "telegram")
    assert max_in_window(sent_at, 60.0 + 1e-6) == 20  # in any minute, both ends
    assert sent_at[4] - sent_at[0] < 1.0  # a burst of 5, then 15/min
    assert min(gaps(sent_at[5:])) >= 4.0 - 1e-9


def test_flood_control_in_a_burst_is_retried_and_loses_nothing(
    fake_telegram: FakeTelegramServer,
    make_dispatcher: MakeDispatcher,
    fake_sleep: SleepRecorder,
    clock: FakeTime,
) -> None:
    fake_telegram.script(["200"] * 5 + ["429:2"])
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    stamps: Stamps = []
    notifier = TelegramNotifier(TOKEN, 42, base_url=fake_telegram.base_url)
    dispatcher = make_dispatcher(
        [notifier],
        policy=POLICY,
        sleep=fake_sleep,
        gate=stamping(limiter, clock, stamps),
    )
    alerts = burst(20)

    for alert in alerts:
        dispatcher.submit(alert)
    assert dispatcher.flush(30)

    results = list(dispatcher.results)
    assert [r.status for r in results] == [DeliveryStatus.DELIVERED] * 20
    assert [r.attempts for r in results] == [1] * 5 + [2] + [1] * 14
    assert fake_sleep.waits == [2.0]  # the server's retry_after
    assert len(fake_telegram.messages) == 20
    sent_at = times_of(stamps, "telegram")
    assert len(sent_at) == 21  # the retry took a token too
    assert max_in_window(sent_at, 1.0) == 5


def test_a_rate_limited_channel_does_not_delay_another(
    fake_telegram: FakeTelegramServer,
    make_dispatcher: MakeDispatcher,
    fake_sleep: SleepRecorder,
) -> None:
    """Real time, short: one chat limited to 5/s, another unlimited, one dispatcher."""
    limiter = RateLimiter()
    stamps: Stamps = []
    slow = TelegramNotifier(
        TOKEN, 1, base_url=fake_telegram.base_url, name="slow", rate_limits="5/s"
    )
    fast = TelegramNotifier(
        TOKEN,
        2,
        base_url=fake_telegram.base_url,
        name="fast",
        rate_limits=(),
        bot_rate_limit=None,
    )
    dispatcher = make_dispatcher(
        [slow, fast],
        policy=POLICY,
        sleep=fake_sleep,
        gate=stamping(limiter, time.monotonic, stamps),
    )
    alerts = burst(5)

    started = time.monotonic()
    for alert in alerts:
        dispatcher.submit(alert)
    fake_telegram.wait_for(6)  # the fast chat's 5 and the slow chat's first
    elapsed = time.monotonic() - started
    by_chat = [m["chat_id"] for m in fake_telegram.messages]

    assert by_chat.count("2") == 5, by_chat
    assert by_chat.count("1") < 5, by_chat  # the slow chat needs 0.8 s for its 5
    assert elapsed < 0.6
    assert dispatcher.flush(10)
    texts = [m["text"] for m in fake_telegram.messages if m["chat_id"] == "1"]
    assert texts == [f"<b>alert {i:03d}</b>\ndisk full" for i in range(5)]
    assert min(gaps(times_of(stamps, "slow"))) >= 0.2 - 1e-3
    stats = limiter.stats()
    assert (stats["slow"].waited, stats["fast"].waited) == (4, 0)


def test_closing_while_alerts_wait_for_a_token_records_them_as_abandoned(
    fake_telegram: FakeTelegramServer, fake_sleep: SleepRecorder
) -> None:
    """Real time: a send waiting on the limiter is cut off by close(), not lost."""
    notifier = TelegramNotifier(
        TOKEN, 42, base_url=fake_telegram.base_url, rate_limits="1/min"
    )
    dispatcher = Dispatcher(
        [notifier],
        policy=POLICY,
        sleep=fake_sleep,
        gate=RateLimiter(),
        name="notifiers-test-ratelimit-close",
    )
    alerts = burst(3)
    for alert in alerts:
        dispatcher.submit(alert)
    fake_telegram.wait_for(1)

    abandoned = dispatcher.close(timeout=0.2)

    assert [r.notification_id for r in abandoned] == [a.id for a in alerts[1:]]
    assert {r.status for r in abandoned} == {DeliveryStatus.ABANDONED}
    assert len(fake_telegram.messages) == 1


# ---------------------------------------------------------------- apprise
def test_slack_webhook_gets_one_post_a_second_and_a_plain_webhook_is_not_held_up(
    webhook_sink: WebhookSink,
    make_dispatcher: MakeDispatcher,
    fake_sleep: SleepRecorder,
    clock: FakeTime,
) -> None:
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    stamps: Stamps = []
    slack = AppriseNotifier(
        SLACK_URL, name="slack", slack_webhook_base=webhook_sink.slack_base
    )
    hook = AppriseNotifier(webhook_sink.json_url("/plain"), name="hook")
    dispatcher = make_dispatcher(
        [slack, hook],
        policy=POLICY,
        sleep=fake_sleep,
        gate=stamping(limiter, clock, stamps),
    )
    alerts = burst(10)

    for alert in alerts:
        dispatcher.submit(alert)
    assert dispatcher.flush(30)

    assert {r.status for r in dispatcher.results} == {DeliveryStatus.DELIVERED}
    requests = webhook_sink.wait_for(20)
    slack_titles = [
        r.json["attachments"][0]["title"]
        for r in requests
        if r.path.startswith("/services/")
    ]
    hook_titles = [r.json["title"] for r in requests if r.path == "/plain"]
    expected = [f"alert {i:03d}" for i in range(10)]
    assert slack_titles == expected
    assert hook_titles == expected
    assert min(gaps(times_of(stamps, "slack"))) >= 1.0 - 1e-9
    stats = limiter.stats()
    assert (stats["slack"].waited, stats["hook"].waited) == (9, 0)
    assert stats["slack"].wait_seconds == pytest.approx(9.0)


def test_an_apprise_retry_waits_only_for_the_urls_it_still_has_to_reach(
    webhook_sink: WebhookSink,
    make_dispatcher: MakeDispatcher,
    fake_sleep: SleepRecorder,
    clock: FakeTime,
) -> None:
    webhook_sink.script(200, 500)  # Slack takes it, the JSON hook fails once
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    channel = AppriseNotifier(
        [SLACK_URL, webhook_sink.json_url("/plain")],
        name="mixed",
        slack_webhook_base=webhook_sink.slack_base,
        rate_limits="1/s",
    )
    slack_key, hook_key = (s.limit_key for s in channel._services)
    asked: list[list[str]] = []

    async def gate(notifier: Notifier, notification: Notification) -> None:
        asked.append([key for key, _ in notifier.rate_limits(notification)])
        await limiter(notifier, notification)

    dispatcher = make_dispatcher([channel], policy=POLICY, sleep=fake_sleep, gate=gate)
    dispatcher.submit(Notification("deploy", "failed"))
    assert dispatcher.flush(15)

    [result] = dispatcher.results
    assert (result.status, result.attempts) == (DeliveryStatus.DELIVERED, 2)
    assert asked == [[slack_key, hook_key], [hook_key]]
    assert len(webhook_sink.wait_for(3)) == 3
    assert [r.reply.status for r in webhook_sink.requests] == [200, 500, 200]
