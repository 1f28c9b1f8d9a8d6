"""Token buckets, rate limits and the RateLimiter gate, on fake time.

Every wait here goes through an injected async sleep that advances a fake clock, so
nothing sleeps for real; a test that would call ``time.sleep`` fails.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import threading
import time
from collections.abc import Sequence

import pytest

from notifiers import Notification, Notifier, NotifierConfigError
from notifiers.ratelimit import (
    NTFY_PER_URL,
    SLACK_PER_WEBHOOK,
    TELEGRAM_PER_BOT,
    TELEGRAM_PER_CHAT,
    TELEGRAM_PER_GROUP,
    RateLimit,
    RateLimiter,
    TokenBucket,
    coerce_rate_limits,
    destination_id,
)
from notifiers.redact import redact
from notifiers.testing import RecordingNotifier

TOKEN = "123456789:AAHfakeTokenForRateLimitTests_012345678"
OTHER_TOKEN = "987654321:AAHanotherFakeTokenForRateLimits_0123"
SLACK_A, SLACK_B, SLACK_C = "T0SLACKAAA", "B0SLACKBBB", "XslackTokenCCCCCCCCCCCC1"


class FakeTime:
    """A clock (call it) and an async ``sleep`` that advances it instead of waiting."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        assert seconds > 0, f"asked to sleep {seconds!r}"
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class Limited(Notifier):
    """A channel that sends nothing and asks for the given (key, limit) pairs."""

    channel = "limited"

    def __init__(
        self, pairs: Sequence[tuple[str, RateLimit]], *, name: str = "limited"
    ) -> None:
        super().__init__(name=name)
        self.pairs = list(pairs)

    def rate_limits(
        self, notification: Notification
    ) -> Sequence[tuple[str, RateLimit]]:
        return self.pairs

    async def send(self, notification: Notification) -> None:
        raise AssertionError("never sent")


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture(autouse=True)
def no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocking a thread is never how the limiter waits."""

    def forbidden(seconds: float) -> None:
        raise AssertionError(f"time.sleep({seconds}) called")

    monkeypatch.setattr(time, "sleep", forbidden)


def note(i: int = 0) -> Notification:
    return Notification(f"alert {i}", "body")


def gaps(stamps: Sequence[float]) -> list[float]:
    """The time between each stamp and the next."""
    return [b - a for a, b in itertools.pairwise(stamps)]


def max_in_window(stamps: Sequence[float], window: float) -> int:
    """The most stamps in any half-open window ``[t, t + window)``."""
    ordered = sorted(stamps)
    return max(
        (
            sum(1 for s in ordered[i:] if s < start + window)
            for i, start in enumerate(ordered)
        ),
        default=0,
    )


@pytest.mark.parametrize("limit", [TELEGRAM_PER_CHAT, TELEGRAM_PER_GROUP])
def test_telegram_bursts_then_holds_its_documented_rate(
    clock: FakeTime, limit: RateLimit
) -> None:
    """5 at once, then the rate: a group never gets more than 20 in any minute,
    a chat about one a second."""
    bucket = limit.bucket(clock)
    stamps: list[float] = []
    for _ in range(200):
        asyncio.run(bucket.take(clock.sleep))
        stamps.append(clock())
    assert stamps[:5] == [stamps[0]] * 5
    assert max_in_window(stamps, 1.0) == 5
    if limit is TELEGRAM_PER_GROUP:
        assert max_in_window(stamps, 60.0 + 1e-6) == 20  # even counting both ends
    assert min(gaps(stamps[5:])) == pytest.approx(limit.interval)
    span = stamps[-1] - stamps[0]
    assert span == pytest.approx(195 * limit.interval)  # 200 sends: 5 free, then rate


# ---------------------------------------------------------------- TokenBucket
def test_a_bucket_starts_full_and_bursts_up_to_its_capacity(clock: FakeTime) -> None:
    bucket = TokenBucket(2.0, 3, clock=clock)

    assert [bucket.try_take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.try_take() == pytest.approx(0.5)
    assert bucket.tokens == pytest.approx(0.0)


def test_refill_follows_the_clock_and_try_take_takes_nothing_when_empty(
    clock: FakeTime,
) -> None:
    bucket = TokenBucket(2.0, 1, clock=clock)
    assert bucket.try_take() == 0.0

    assert bucket.try_take() == pytest.approx(0.5)
    assert bucket.try_take() == pytest.approx(0.5)  # asking again takes nothing
    clock.advance(0.2)
    assert bucket.try_take() == pytest.approx(0.3)
    assert bucket.tokens == pytest.approx(0.4)
    clock.advance(0.3)
    assert bucket.try_take() == 0.0
    assert bucket.tokens == pytest.approx(0.0)


def test_an_idle_bucket_never_holds_more_than_its_capacity(clock: FakeTime) -> None:
    bucket = TokenBucket(10.0, 4, clock=clock)
    bucket.try_take()
    clock.advance(3600)

    assert bucket.tokens == 4
    assert bucket.full
    assert [bucket.try_take() for _ in range(5)][-1] == pytest.approx(0.1)


def test_fractional_rates_wait_whole_intervals(clock: FakeTime) -> None:
    bucket = TokenBucket(1 / 3, 1, clock=clock)  # 20 per minute
    assert bucket.try_take() == 0.0

    wait = bucket.try_take()
    assert wait == pytest.approx(3.0)
    clock.advance(wait)  # exactly the computed wait: a token, no crumb left to wait
    assert bucket.try_take() == 0.0
    clock.advance(1.0)
    assert bucket.delay() == pytest.approx(2.0)


def test_a_clock_going_back_neither_adds_tokens_nor_gives_negative_waits(
    clock: FakeTime,
) -> None:
    bucket = TokenBucket(1.0, 1, clock=clock)
    bucket.try_take()
    clock.advance(-50)

    assert bucket.delay() == pytest.approx(1.0)
    assert bucket.tokens == pytest.approx(0.0)
    clock.advance(1.0)
    assert bucket.try_take() == 0.0


def test_random_use_never_waits_negative_nor_exceeds_the_limit(clock: FakeTime) -> None:
    rng = random.Random(7)
    rate, capacity = 5.0, 3
    bucket = TokenBucket(rate, capacity, clock=clock)
    stamps: list[float] = []
    for _ in range(2000):
        clock.advance(rng.choice([0.0, 0.0, 0.01, 0.05, 0.3, rng.random()]))
        wait = bucket.try_take()
        assert wait >= 0.0
        if wait == 0.0:
            stamps.append(clock.now)
        else:
            assert wait <= 1 / rate + 1e-9
    # Any window of length w lets through at most capacity + w * rate.
    for window in (0.2, 1.0, 5.0):
        assert max_in_window(stamps, window) <= capacity + window * rate + 1e-9


def test_take_waits_on_the_given_async_sleep_only(clock: FakeTime) -> None:
    bucket = TokenBucket(4.0, 1, clock=clock)

    async def run() -> list[float]:
        return [await bucket.take(clock.sleep) for _ in range(4)]

    waited = asyncio.run(run())

    assert waited == pytest.approx([0.0, 0.25, 0.25, 0.25])
    assert clock.sleeps == pytest.approx([0.25, 0.25, 0.25])


def test_hold_empties_a_bucket_for_that_long_and_never_shortens_a_wait(
    clock: FakeTime,
) -> None:
    bucket = TokenBucket(1.0, 5, clock=clock)
    bucket.hold(30)
    assert bucket.delay() == pytest.approx(30.0)
    bucket.hold(2)  # a shorter hold does not cut the longer one short
    bucket.hold(0)
    bucket.hold(-4)
    assert bucket.delay() == pytest.approx(30.0)
    clock.advance(30)
    assert bucket.try_take() == 0.0
    assert bucket.try_take() == pytest.approx(1.0)  # the burst was spent by the hold


@pytest.mark.parametrize(
    ("rate", "capacity"),
    [(0, 1), (-1, 1), (float("nan"), 1), (float("inf"), 1), (1, 0.5), (1, 0)],
)
def test_impossible_buckets_are_config_errors(rate: float, capacity: float) -> None:
    with pytest.raises(NotifierConfigError, match="invalid rate limit"):
        TokenBucket(rate, capacity)
    with pytest.raises(ValueError, match="invalid rate limit"):
        RateLimit(rate, capacity)


# ---------------------------------------------------------------- RateLimit
def test_rate_limit_constructors_and_their_names() -> None:
    assert RateLimit.per_second(1) == RateLimit(1.0, 1.0)
    assert str(RateLimit.per_second(1)) == "1/s"
    group = RateLimit.per_minute(20)
    assert (group.rate, group.capacity, group.interval) == pytest.approx((1 / 3, 1, 3))
    assert str(group) == "20/min"
    assert str(RateLimit.per_hour(100)) == "100/hour"
    assert str(RateLimit.per_minute(60, burst=10)) == "1/s burst 10"
    assert str(RateLimit(0.2, 60)) == "12/min burst 60"
    assert str(RateLimit(0.7)) == "42/min"
    assert str(RateLimit(1 / 7)) == "0.142857/s"


@pytest.mark.parametrize(
    ("text", "rate", "capacity"),
    [
        ("1/s", 1.0, 1),
        ("20/min", 1 / 3, 1),
        (" 20 / minute ", 1 / 3, 1),
        ("6/m", 0.1, 1),
        ("100/hour", 100 / 3600, 1),
        ("3/hours", 3 / 3600, 1),
        ("0.5/s", 0.5, 1),
        ("60/min burst 10", 1.0, 10),
        ("60/min, burst=10", 1.0, 10),
    ],
)
def test_rate_limits_parse_from_text(text: str, rate: float, capacity: float) -> None:
    limit = RateLimit.parse(text)
    assert (limit.rate, limit.capacity) == pytest.approx((rate, capacity))
    assert RateLimit.parse(str(limit)) == limit


@pytest.mark.parametrize("text", ["fast", "1/day", "0/s", "-1/s", "1/s burst 0", ""])
def test_unreadable_rate_limits_say_how_to_write_them(text: str) -> None:
    with pytest.raises(NotifierConfigError, match="invalid rate limit"):
        RateLimit.parse(text)


def test_rate_limits_compare_by_rate_and_burst_not_name() -> None:
    assert RateLimit(1.0, 1, name="custom") == RateLimit.per_second(1)
    assert len({RateLimit.per_second(1), RateLimit.per_minute(60)}) == 1
    assert RateLimit.per_second(1) != RateLimit.per_second(1, burst=2)


def test_coerce_rate_limits_accepts_one_many_text_or_none() -> None:
    assert coerce_rate_limits(None) is None
    assert coerce_rate_limits(()) == ()
    assert coerce_rate_limits("20/min") == (RateLimit.per_minute(20),)
    assert coerce_rate_limits(RateLimit.per_second(1)) == (RateLimit.per_second(1),)
    assert coerce_rate_limits([RateLimit.per_second(1), "20/min"]) == (
        RateLimit.per_second(1),
        RateLimit.per_minute(20),
    )
    with pytest.raises(NotifierConfigError) as info:
        coerce_rate_limits(["1/s", "often", 3], field_name="telegram.rate_limits")  # type: ignore[list-item]
    assert [loc for loc, _ in info.value.errors] == [
        "telegram.rate_limits[1]",
        "telegram.rate_limits[2]",
    ]


def test_the_documented_defaults() -> None:
    # Telegram's Bot FAQ: ~1/s per chat with short bursts, 20/min per group, ~30/s.
    assert RateLimit.per_second(1, burst=5) == TELEGRAM_PER_CHAT
    assert RateLimit.per_minute(15, burst=5) == TELEGRAM_PER_GROUP
    assert str(TELEGRAM_PER_GROUP) == "15/min burst 5"
    assert RateLimit.per_second(30) == TELEGRAM_PER_BOT
    assert RateLimit.per_second(1) == SLACK_PER_WEBHOOK
    assert (NTFY_PER_URL.rate, NTFY_PER_URL.capacity) == (0.2, 60)


def test_destination_ids_are_stable_short_and_reveal_nothing() -> None:
    first = destination_id("telegram", TOKEN)
    assert first == destination_id("telegram", TOKEN)
    assert first != destination_id("telegram", OTHER_TOKEN)
    assert len(first) == 12
    assert TOKEN.split(":")[1][:6] not in first


# ---------------------------------------------------------------- RateLimiter
def test_a_channel_without_limits_passes_at_once(clock: FakeTime) -> None:
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    channel = RecordingNotifier(name="free")

    async def run() -> None:
        for i in range(50):
            await limiter(channel, note(i))

    asyncio.run(run())

    assert clock.sleeps == []
    stats = limiter.stats()["free"]
    assert (stats.passed, stats.waited, stats.wait_seconds) == (50, 0, 0.0)
    assert limiter.buckets() == {}


def test_a_burst_of_100_waits_on_fake_time_only(clock: FakeTime) -> None:
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    channel = Limited([("chat:42", RateLimit.per_second(1))], name="telegram")
    stamps: list[float] = []

    async def run() -> None:
        for i in range(100):
            await limiter(channel, note(i))
            stamps.append(clock.now)

    started = time.perf_counter()
    asyncio.run(run())
    wall = time.perf_counter() - started

    assert wall < 1.0, f"a burst on fake time took {wall:.2f} s of real time"
    assert stamps[-1] - stamps[0] == pytest.approx(99.0)
    assert min(gaps(stamps)) >= 1.0 - 1e-9
    stats = limiter.stats()["telegram"]
    assert (stats.passed, stats.waited, stats.waiting) == (100, 99, 0)
    assert stats.wait_seconds == pytest.approx(99.0)
    assert stats.max_wait == pytest.approx(1.0)


def test_all_buckets_of_a_send_are_taken_together(clock: FakeTime) -> None:
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    group = Limited(
        [("chat:-100", TELEGRAM_PER_CHAT), ("chat:-100", TELEGRAM_PER_GROUP)]
    )
    stamps: list[float] = []

    async def run() -> None:
        for i in range(45):
            await limiter(group, note(i))
            stamps.append(clock.now)

    asyncio.run(run())

    assert max_in_window(stamps, 60.0 + 1e-6) == 20  # even counting both ends
    assert max_in_window(stamps, 1.0) == 5  # both buckets' burst
    assert min(gaps(stamps[5:])) == pytest.approx(4.0)  # the group's 15/min
    assert set(limiter.buckets()) == {
        ("chat:-100", "1/s burst 5"),
        ("chat:-100", "15/min burst 5"),
    }


def test_channels_sharing_a_destination_share_its_bucket(clock: FakeTime) -> None:
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    ops = Limited([("hook:abc", SLACK_PER_WEBHOOK)], name="ops")
    dev = Limited([("hook:abc", SLACK_PER_WEBHOOK)], name="dev")
    other = Limited([("hook:xyz", SLACK_PER_WEBHOOK)], name="other")
    stamps: dict[str, list[float]] = {"ops": [], "dev": [], "other": []}

    async def run() -> None:
        for i in range(5):
            for channel in (ops, other, dev):
                await limiter(channel, note(i))
                stamps[channel.name].append(clock.now)

    asyncio.run(run())

    shared = sorted(stamps["ops"] + stamps["dev"])
    assert min(gaps(shared)) >= 1 - 1e-9
    stats = limiter.stats()
    assert stats["other"].waited == 0  # its own webhook always had a token by then
    assert stats["ops"].waited + stats["dev"].waited == 9


def test_the_same_limit_listed_twice_takes_one_token(clock: FakeTime) -> None:
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    twice = Limited([("k", RateLimit.per_second(1, burst=2))] * 2)

    async def run() -> None:
        await limiter(twice, note())
        await limiter(twice, note())

    asyncio.run(run())
    assert clock.sleeps == []


def test_stats_count_a_send_waiting_now_and_a_cancelled_wait_takes_nothing() -> None:
    limiter = RateLimiter()  # real clock, asyncio.sleep: cancelled long before 60 s
    slow = Limited([("k", RateLimit.per_minute(1))], name="slow")

    async def run() -> None:
        await limiter(slow, note(1))
        waiter = asyncio.create_task(limiter(slow, note(2)))
        await asyncio.sleep(0.01)
        assert limiter.stats()["slow"].waiting == 1
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter

    asyncio.run(run())
    stats = limiter.stats()["slow"]
    assert (stats.passed, stats.waited, stats.waiting) == (1, 0, 0)
    assert limiter.buckets()[("k", "1/min")] == pytest.approx(0.0, abs=0.01)


def test_only_the_waiting_channel_waits_on_a_shared_loop() -> None:
    limiter = RateLimiter()  # real time, short
    slow = Limited([("slow", RateLimit.per_second(10))], name="slow")
    fast = RecordingNotifier(name="fast")
    done: dict[str, float] = {}

    async def burst(channel: Notifier, count: int) -> None:
        for i in range(count):
            await limiter(channel, note(i))
        done[channel.name] = time.monotonic() - started

    started = time.monotonic()

    async def run() -> None:
        await asyncio.gather(burst(slow, 5), burst(fast, 50))

    asyncio.run(run())

    assert done["fast"] < 0.1
    assert done["slow"] >= 0.4 - 0.02


def test_a_servers_retry_after_holds_every_channel_of_that_destination(
    clock: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = RateLimiter(clock=clock, sleep=clock.sleep, max_hold=100)
    ops = Limited([("chat:7", TELEGRAM_PER_CHAT)], name="ops")
    dev = Limited([("chat:7", TELEGRAM_PER_CHAT)], name="dev")
    other = Limited([("chat:8", TELEGRAM_PER_CHAT)], name="other")
    free = RecordingNotifier(name="free")

    async def run() -> None:
        with caplog.at_level(logging.INFO, logger="notifiers.ratelimit"):
            limiter.hold(ops, note(), 30)
            limiter.hold(free, note(), 30)  # no destinations: nothing to hold
        await limiter(other, note())
        assert clock.sleeps == []
        await limiter(dev, note())
        assert clock.sleeps == pytest.approx([30.0])
        limiter.hold(dev, note(), 1e9)  # capped at max_hold
        await limiter(ops, note())
        assert sum(clock.sleeps) == pytest.approx(130.0)

    asyncio.run(run())
    assert "holding chat:7 for 30.0 s" in caplog.text
    assert caplog.text.count("holding") == 1


def test_a_failing_rate_limits_lets_the_send_through_and_logs_it_redacted(
    clock: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(RecordingNotifier):
        def rate_limits(
            self, notification: Notification
        ) -> Sequence[tuple[str, RateLimit]]:
            raise RuntimeError(f"oops {TOKEN}")

    limiter = RateLimiter(clock=clock, sleep=clock.sleep)

    with caplog.at_level(logging.ERROR, logger="notifiers.ratelimit"):
        asyncio.run(limiter(Broken(name="broken"), note()))

    assert limiter.stats()["broken"].passed == 1
    assert "rate_limits() failed, sending unlimited" in caplog.text
    assert TOKEN not in caplog.text


def test_full_buckets_are_forgotten_past_max_buckets(clock: FakeTime) -> None:
    limiter = RateLimiter(clock=clock, sleep=clock.sleep, max_buckets=2)
    limit = RateLimit.per_second(1)

    async def run() -> None:
        await limiter(Limited([("a", limit)]), note())
        clock.advance(5)  # "a" is full again: as good as new
        await limiter(Limited([("b", limit)]), note())
        await limiter(Limited([("c", limit)]), note())
        await limiter(Limited([("d", limit)]), note())

    asyncio.run(run())

    # "a" (full) went when "c" came; "b" and "c" are empty and were kept, so the
    # limiter grows past max_buckets rather than forget a wait it owes.
    assert {key for key, _ in limiter.buckets()} == {"b", "c", "d"}
    assert clock.sleeps == []


def test_one_limiter_shared_by_two_loops_in_two_threads() -> None:
    limiter = RateLimiter()
    limit = RateLimit.per_second(50)
    channels = [Limited([("shared", limit)], name=f"c{i}") for i in range(2)]
    errors: list[BaseException] = []

    def run(channel: Limited) -> None:
        async def burst() -> None:
            for i in range(10):
                await limiter(channel, note(i))

        try:
            asyncio.run(burst())
        except BaseException as exc:
            errors.append(exc)

    started = time.monotonic()
    threads = [
        threading.Thread(target=run, args=(c,), name=f"notifiers-rl-{c.name}")
        for c in channels
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    elapsed = time.monotonic() - started

    assert errors == []
    assert sum(s.passed for s in limiter.stats().values()) == 20
    assert elapsed >= 19 / 50 - 0.02  # 20 sends, one bucket of 50/s


# ---------------------------------------------------------------- channels' limits
def test_base_notifier_limits_the_whole_channel_only_when_asked() -> None:
    assert RecordingNotifier(name="r").rate_limits(note()) == []

    class Custom(RecordingNotifier):
        def __init__(self) -> None:
            Notifier.__init__(self, name="custom", rate_limits=["6/min", "1/s"])

    assert Custom().rate_limits(note()) == [
        ("recording:custom", RateLimit.per_minute(6)),
        ("recording:custom", RateLimit.per_second(1)),
    ]


def test_telegram_private_chat_group_and_channel_limits() -> None:
    from notifiers.telegram import TelegramNotifier

    private = TelegramNotifier(TOKEN, 42)
    group = TelegramNotifier(TOKEN, -1001234567890)
    channel = TelegramNotifier(TOKEN, "@alerts_channel")
    text_group = TelegramNotifier(TOKEN, "-100123")

    [(chat_key, chat_limit), (bot_key, bot_limit)] = private.rate_limits(note())
    assert (chat_limit, bot_limit) == (TELEGRAM_PER_CHAT, TELEGRAM_PER_BOT)
    assert chat_key == f"{bot_key}:chat:42"
    for notifier in (group, channel, text_group):
        limits = [limit for _, limit in notifier.rate_limits(note())]
        assert limits == [TELEGRAM_PER_CHAT, TELEGRAM_PER_GROUP, TELEGRAM_PER_BOT]
    # Every chat of one bot shares the bot's bucket; another bot has its own.
    bot_keys = {n.rate_limits(note())[-1][0] for n in (private, group, channel)}
    assert bot_keys == {bot_key}
    assert TelegramNotifier(OTHER_TOKEN, 42).rate_limits(note())[-1][0] != bot_key


def test_telegram_keys_hold_no_secret() -> None:
    from notifiers.telegram import TelegramNotifier

    odd = "77:odd-Secret-token-for-rate-limit-keys"  # valid, not shaped for redact()
    for token in (TOKEN, odd):
        for key, _ in TelegramNotifier(token, -5).rate_limits(note()):
            assert token not in key
            assert token.split(":")[-1][:8] not in key
            assert redact(key) == key


def test_telegram_follows_a_migrated_chat() -> None:
    from notifiers.telegram import TelegramNotifier

    notifier = TelegramNotifier(TOKEN, -42)  # a group that becomes a supergroup
    before = notifier.rate_limits(note())
    notifier.chat_id = -1009999  # what send() does on ChatMigrated
    after = notifier.rate_limits(note())

    assert before[0][0].endswith(":chat:-42")
    assert after[0][0].endswith(":chat:-1009999")
    assert [limit for _, limit in after] == [limit for _, limit in before]


def test_telegram_limits_can_be_changed_or_turned_off() -> None:
    from notifiers.telegram import TelegramNotifier

    custom = TelegramNotifier(TOKEN, -42, rate_limits="6/min", bot_rate_limit="10/s")
    assert [limit for _, limit in custom.rate_limits(note())] == [
        RateLimit.per_minute(6),
        RateLimit.per_second(10),
    ]
    chat_off = TelegramNotifier(TOKEN, 42, rate_limits=())
    assert [limit for _, limit in chat_off.rate_limits(note())] == [TELEGRAM_PER_BOT]
    off = TelegramNotifier(TOKEN, 42, rate_limits=(), bot_rate_limit=None)
    assert off.rate_limits(note()) == []


def test_telegram_bad_limits_name_the_field() -> None:
    from notifiers.telegram import TelegramNotifier

    with pytest.raises(NotifierConfigError, match=r"rate_limits\[0\]"):
        TelegramNotifier(TOKEN, 42, rate_limits="quickly")
    with pytest.raises(NotifierConfigError, match=r"bot_rate_limit\[0\]"):
        TelegramNotifier(TOKEN, 42, bot_rate_limit="30/fortnight")


def test_apprise_defaults_per_url_kind() -> None:
    from notifiers.apprise import AppriseNotifier

    cases = {
        f"slack://{SLACK_A}/{SLACK_B}/{SLACK_C}": ("slack:", [SLACK_PER_WEBHOOK]),
        f"https://hooks.slack.com/services/{SLACK_A}/{SLACK_B}/{SLACK_C}": (
            "slack:",
            [SLACK_PER_WEBHOOK],
        ),
        "tgram://123456789:AAHfakeTokenForAppriseTgram_0123456/42": (
            "tgram:",
            [TELEGRAM_PER_CHAT],
        ),
        "ntfys://ntfy.example.com/alerts-topic": ("ntfy:", [NTFY_PER_URL]),
        "json://127.0.0.1:9/hooks/secret-path": ("json:", []),
        "mailto://user:Pw-s3cret@127.0.0.1:25?from=a@example.com&to=ops@example.com": (
            "mailto:",
            [],
        ),
    }
    for url, (prefix, limits) in cases.items():
        notifier = AppriseNotifier(url)
        pairs = notifier.rate_limits(note())
        assert [limit for _, limit in pairs] == limits, url
        key = AppriseNotifier(url)._services[0].limit_key
        assert key.startswith(prefix), (url, key)
        assert redact(key) == key
        assert SLACK_C not in key and "secret" not in key and "s3cret" not in key


def test_the_same_webhook_gets_the_same_key_whatever_its_options() -> None:
    from notifiers.apprise import AppriseNotifier

    plain = AppriseNotifier(f"slack://{SLACK_A}/{SLACK_B}/{SLACK_C}")
    options = AppriseNotifier(f"slack://{SLACK_A}/{SLACK_B}/{SLACK_C}?footer=no")
    other = AppriseNotifier(f"slack://{SLACK_A}/{SLACK_B}/XotherTokenCCCCCCCCCCCC2")

    assert plain.rate_limits(note()) == options.rate_limits(note())
    assert plain.rate_limits(note()) != other.rate_limits(note())


def test_apprise_limits_apply_per_url_and_can_be_changed_or_turned_off() -> None:
    from notifiers.apprise import AppriseNotifier

    urls = [
        f"slack://{SLACK_A}/{SLACK_B}/{SLACK_C}",
        "json://127.0.0.1:9/a",
        "json://127.0.0.1:9/b",
    ]
    custom = AppriseNotifier(urls, rate_limits=["2/s"])
    pairs = custom.rate_limits(note())
    assert [limit for _, limit in pairs] == [RateLimit.per_second(2)] * 3
    assert len({key for key, _ in pairs}) == 3
    assert AppriseNotifier(urls, rate_limits=()).rate_limits(note()) == []
    with pytest.raises(NotifierConfigError, match=r"rate_limits\[0\]"):
        AppriseNotifier(urls, rate_limits=["sometimes"])
