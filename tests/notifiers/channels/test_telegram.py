"""TelegramNotifier through a real Dispatcher against a fake Bot API on 127.0.0.1.

Waits between retries go through a fake async sleep that records them, so a test sees
the wait the policy chose (the server's retry_after, or the backoff) without sleeping.
"""

from __future__ import annotations

import asyncio
import html.parser
import logging
import re
import threading
import warnings
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import respx
import telegram
from pydantic import SecretStr
from telegram.error import NetworkError, RetryAfter, TimedOut
from telegram.warnings import PTBDeprecationWarning

from notifiers import (
    DeliveryResult,
    DeliveryStatus,
    Dispatcher,
    MaybeDelivered,
    Notification,
    NotifierConfigError,
    PermanentDeliveryError,
    RateLimited,
    RetryPolicy,
    TransientDeliveryError,
    format_text,
)
from notifiers.base import TextFormat
from notifiers.telegram import TelegramNotifier
from notifiers.templates import TRUNCATION_MARKER
from notifiers.testing import FakeTelegramServer, RecordingNotifier

TOKEN = "123456789:AAHfakeTokenForNotifierTests_0123456789"
# A valid token that redact()'s bot-token pattern misses (a 2-digit bot id): only
# the registry of secrets can mask it.
ODD_TOKEN = "42:odd-secret-Token-not-shaped-like-a-bot"
CHAT = 42
POLICY = RetryPolicy(max_attempts=3, initial=0.01, max_wait=0.05, jitter=0)

Sleep = Callable[[float], Coroutine[Any, Any, None]]


@pytest.fixture
def waits() -> list[float]:
    """The sleeps the retry policy asked for (filled by ``retry_sleep``)."""
    return []


@pytest.fixture
def retry_sleep(waits: list[float]) -> Sleep:
    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    return sleep


@contextmanager
def dispatching(*notifiers: Any, sleep: Sleep, **kwargs: Any) -> Iterator[Dispatcher]:
    """A real Dispatcher, closed afterwards; fails if its thread outlives close()."""
    name = "notifiers-telegram-test"
    # Rate limits (1/s per chat) have their own tests: test_ratelimit*.py.
    kwargs.setdefault("rate_limits", False)
    dispatcher = Dispatcher(notifiers, policy=POLICY, sleep=sleep, name=name, **kwargs)
    try:
        yield dispatcher
    finally:
        dispatcher.close(timeout=5)
        alive = [t.name for t in threading.enumerate() if t.name == name]
        assert alive == [], "the dispatcher thread outlived close()"


def telegram_for(server: FakeTelegramServer, **kwargs: Any) -> TelegramNotifier:
    kwargs.setdefault("token", TOKEN)
    kwargs.setdefault("chat_id", CHAT)
    return TelegramNotifier(base_url=server.base_url, **kwargs)


def deliver(
    dispatcher: Dispatcher, *notifications: Notification
) -> list[DeliveryResult]:
    for notification in notifications:
        dispatcher.submit(notification)
    assert dispatcher.flush(10), "the dispatcher did not finish in time"
    return list(dispatcher.results)


def note(
    title: str = "backup failed", body: str = "disk <full> & more"
) -> Notification:
    return Notification(title=title, body=body)


# ---------------------------------------------------------------- delivery
def test_delivers_html_text_with_parse_mode(
    fake_telegram: FakeTelegramServer, retry_sleep: Sleep, waits: list[float]
) -> None:
    with dispatching(telegram_for(fake_telegram), sleep=retry_sleep) as dispatcher:
        [result] = deliver(dispatcher, note())

    assert result.status is DeliveryStatus.DELIVERED
    assert result.attempts == 1
    assert waits == []
    [message] = fake_telegram.messages
    assert message["chat_id"] == str(CHAT)
    assert message["parse_mode"] == "HTML"
    assert message["text"] == "<b>backup failed</b>\ndisk &lt;full&gt; &amp; more"


def test_silent_messages_go_to_the_forum_topic(
    fake_telegram: FakeTelegramServer, retry_sleep: Sleep
) -> None:
    notifier = telegram_for(
        fake_telegram, disable_notification=True, message_thread_id=7
    )
    with dispatching(notifier, sleep=retry_sleep) as dispatcher:
        [result] = deliver(dispatcher, note())

    assert result.ok
    [message] = fake_telegram.messages
    assert message["disable_notification"] == "true"
    assert message["message_thread_id"] == "7"


def test_server_error_then_success_is_delivered_after_a_retry(
    fake_telegram: FakeTelegramServer, retry_sleep: Sleep, waits: list[float]
) -> None:
    fake_telegram.script(["500", "200"])
    with dispatching(telegram_for(fake_telegram), sleep=retry_sleep) as dispatcher:
        [result] = deliver(dispatcher, note())
        stats = dispatcher.stats()["telegram"]

    assert result.status is DeliveryStatus.DELIVERED
    assert result.attempts == 2
    assert len(waits) == 1  # the backoff
    assert [r["status"] for r in fake_telegram.requests] == [500, 200]
    assert len(fake_telegram.messages) == 1
    assert (stats.sent, stats.retried, stats.failed) == (1, 1, 0)


def test_flood_control_wait_is_the_servers_retry_after(
    fake_telegram: FakeTelegramServer, retry_sleep: Sleep, waits: list[float]
) -> None:
    # Runs under the suite's warnings-as-errors: PTB's own RetryAfter would warn.
    fake_telegram.script(["429:3"])
    with dispatching(telegram_for(fake_telegram), sleep=retry_sleep) as dispatcher:
        [result] = deliver(dispatcher, note())

    assert result.status is DeliveryStatus.DELIVERED
    assert result.attempts == 2
    assert waits == [3.0]  # not POLICY's backoff (≤ 0.05 s)


def test_flood_wait_beyond_the_cap_is_not_waited(
    fake_telegram: FakeTelegramServer, retry_sleep: Sleep, waits: list[float]
) -> None:
    fake_telegram.script(["429:600"])
    with dispatching(telegram_for(fake_telegram), sleep=retry_sleep) as dispatcher:
        [result] = deliver(dispatcher, note())

    assert result.status is DeliveryStatus.FAILED
    assert result.error_class == "RateLimited"
    assert result.attempts == 1
    assert waits == []


@pytest.mark.parametrize(
    ("reply", "error"),
    [("400", "Chat not found"), ("403", "Forbidden"), ("401", "Unauthorized")],
)
def test_client_errors_are_permanent_and_not_retried(
    fake_telegram: FakeTelegramServer,
    retry_sleep: Sleep,
    waits: list[float],
    reply: str,
    error: str,
) -> None:
    fake_telegram.script([reply])
    with dispatching(telegram_for(fake_telegram), sleep=retry_sleep) as dispatcher:
        [result] = deliver(dispatcher, note())

    assert result.status is DeliveryStatus.PERMANENT
    assert result.attempts == 1
    assert result.error_class == "PermanentDeliveryError"
    assert result.error is not None and error in result.error
    assert waits == []
    assert len(fake_telegram.requests) == 1
    assert fake_telegram.messages == []


def test_no_answer_within_the_read_timeout_is_maybe_delivered(
    fake_telegram: FakeTelegramServer, retry_sleep: Sleep, waits: list[float]
) -> None:
    fake_telegram.script(["hang"])
    notifier = telegram_for(fake_telegram, read_timeout=0.2)
    with dispatching(notifier, sleep=retry_sleep) as dispatcher:
        [result] = deliver(dispatcher, note())
        fake_telegram.release()

    assert result.status is DeliveryStatus.MAYBE_DELIVERED
    assert result.attempts == 1
    assert result.error_class == "MaybeDelivered"
    assert result.error is not None and "ReadTimeout" in result.error
    assert waits == []
    assert len(fake_telegram.wait_for_requests(1)) == 1


def test_a_migrated_group_is_followed_to_its_new_chat(
    fake_telegram: FakeTelegramServer,
    retry_sleep: Sleep,
    caplog: pytest.LogCaptureFixture,
) -> None:
    new_chat = -1001234567890
    fake_telegram.script([f"migrate:{new_chat}"])
    notifier = telegram_for(fake_telegram, chat_id=-4242)
    with dispatching(notifier, sleep=retry_sleep) as dispatcher:
        [first] = deliver(dispatcher, note("first"))
        results = deliver(dispatcher, note("second"))

    assert first.status is DeliveryStatus.DELIVERED
    assert first.attempts == 2
    assert results[1].attempts == 1
    assert notifier.chat_id == new_chat
    assert [r["fields"]["chat_id"] for r in fake_telegram.requests] == [
        "-4242",
        str(new_chat),
        str(new_chat),
    ]
    assert [m["chat_id"] for m in fake_telegram.messages] == [str(new_chat)] * 2
    assert "migrated to -1001234567890" in caplog.text


class _TagChecker(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.open.append(tag)
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"unbalanced </{tag}>"
        self.open.pop()


def test_a_long_body_is_cut_to_4096_characters_of_valid_html(
    fake_telegram: FakeTelegramServer, retry_sleep: Sleep
) -> None:
    body = "\n".join(f'line {i}: <tag> & "quotes" > arrows' for i in range(200))
    assert len(body) > 6000
    notification = note("long <one>", body)
    with dispatching(telegram_for(fake_telegram), sleep=retry_sleep) as dispatcher:
        [result] = deliver(dispatcher, notification)

    assert result.ok
    [message] = fake_telegram.messages
    text = message["text"]
    assert len(text) <= 4096
    assert text == format_text(notification, TextFormat.HTML, 4096)
    assert text.startswith("<b>long &lt;one&gt;</b>\n")
    assert text.endswith(TRUNCATION_MARKER)
    # every "&" starts a whole entity, and the only tag is the balanced title
    assert re.findall(r"&(?!(?:amp|lt|gt|quot);)", text) == []
    checker = _TagChecker()
    checker.feed(text)
    checker.close()
    assert checker.tags == ["b"] and checker.open == []


# ---------------------------------------------------------------- isolation, lifecycle
def test_a_hanging_telegram_does_not_delay_another_channel(
    fake_telegram: FakeTelegramServer, retry_sleep: Sleep
) -> None:
    fake_telegram.script(["hang"])
    recording = RecordingNotifier()
    with dispatching(telegram_for(fake_telegram), recording, sleep=retry_sleep) as d:
        for i in range(3):
            d.submit(note(f"alert {i}"))
        fake_telegram.wait_for_requests(1)  # telegram is stuck on the first one
        assert len(recording.wait_for(3)) == 3
        assert [r.channel for r in d.results] == ["recording"] * 3

        fake_telegram.release()
        assert d.flush(10)
        telegram_results = [r for r in d.results if r.channel == "telegram"]

    assert [r.status for r in telegram_results] == [DeliveryStatus.DELIVERED] * 3
    assert [m["text"].split("\n")[0] for m in fake_telegram.messages] == [
        f"<b>alert {i}</b>" for i in range(3)
    ]


def test_one_bot_and_one_connection_serve_every_message(
    fake_telegram: FakeTelegramServer,
    retry_sleep: Sleep,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[telegram.Bot] = []

    class CountingBot(telegram.Bot):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(telegram, "Bot", CountingBot)
    notifier = telegram_for(fake_telegram)
    with dispatching(notifier, sleep=retry_sleep) as dispatcher:
        results = deliver(dispatcher, *(note(f"n{i}") for i in range(10)))
        bot = notifier.bot

    assert [r.status for r in results] == [DeliveryStatus.DELIVERED] * 10
    assert len(built) == 1 and built[0] is bot
    assert fake_telegram.connections == 1  # one httpx pool, kept alive
    assert {r["method"] for r in fake_telegram.requests} == {"sendMessage"}
    assert notifier.bot is None  # aclose() shut it down


def test_an_unreachable_api_is_transient(
    retry_sleep: Sleep, waits: list[float]
) -> None:
    with FakeTelegramServer() as server:
        base_url = server.base_url  # a port nobody listens on once stopped
    notifier = TelegramNotifier(TOKEN, CHAT, base_url=base_url)
    with dispatching(notifier, sleep=retry_sleep) as dispatcher:
        [result] = deliver(dispatcher, note())

    assert result.status is DeliveryStatus.FAILED
    assert result.attempts == POLICY.max_attempts
    assert result.error_class == "TransientDeliveryError"
    assert len(waits) == POLICY.max_attempts - 1


# ---------------------------------------------------------------- secrets
@pytest.mark.parametrize("token", [TOKEN, ODD_TOKEN], ids=["bot-shaped", "odd"])
def test_the_token_leaks_nowhere(
    fake_telegram: FakeTelegramServer,
    retry_sleep: Sleep,
    caplog: pytest.LogCaptureFixture,
    token: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "telegram", "notifiers"):
        caplog.set_level(logging.DEBUG, logger=name)
    with FakeTelegramServer() as dead:
        dead_url = dead.base_url
    fake_telegram.script(["500", "200", "403", "429:1", "200", "401"])
    notifier = telegram_for(fake_telegram, token=SecretStr(token))
    unreachable = TelegramNotifier(token, CHAT, base_url=dead_url, name="down")
    with dispatching(notifier, unreachable, sleep=retry_sleep) as dispatcher:
        results = deliver(dispatcher, *(note(f"n{i}") for i in range(4)))

    telegram_results = [r for r in results if r.channel == "telegram"]
    assert [r.status for r in telegram_results] == [
        DeliveryStatus.DELIVERED,
        DeliveryStatus.PERMANENT,
        DeliveryStatus.DELIVERED,
        DeliveryStatus.PERMANENT,
    ]
    # the leaky lines were captured, masked
    assert "HTTP Request: POST" in caplog.text
    assert "/***/sendMessage" in caplog.text
    assert "Set Bot API URL" in caplog.text

    errors = [
        str(notifier.classify(NetworkError(f"httpx.ConnectError: {dead_url}{token}"))),
        repr(notifier.classify(TimedOut(f"{token} timed out"))),
    ]
    seen = [
        caplog.text,
        *(r.getMessage() for r in caplog.records),
        *(r.exc_text or "" for r in caplog.records),
        repr(results),
        *(r.error or "" for r in results),
        repr(notifier),
        repr(unreachable),
        str(notifier),
        *errors,
    ]
    leaks = [text for text in seen if token in text]
    assert leaks == []
    assert sum(r.status is DeliveryStatus.FAILED for r in results) == 4  # "down"


def test_secret_str_token_and_config_errors() -> None:
    notifier = TelegramNotifier(SecretStr(TOKEN), "@alerts", name="ops")
    assert repr(notifier) == "<TelegramNotifier 'ops' chat_id='@alerts'>"
    with pytest.raises(NotifierConfigError, match="token"):
        TelegramNotifier(" ", CHAT)
    with pytest.raises(NotifierConfigError, match="chat_id"):
        TelegramNotifier(TOKEN, "")


# ---------------------------------------------------------------- classify (respx)
def _run_send(notifier: TelegramNotifier) -> BaseException | None:
    async def main() -> BaseException | None:
        await notifier.start()
        try:
            await notifier.send(note())
        except Exception as exc:
            return exc
        finally:
            await notifier.aclose()
        return None

    return asyncio.run(main())


def _json(status: int, description: str, **parameters: Any) -> httpx.Response:
    body: dict[str, Any] = {
        "ok": False,
        "error_code": status,
        "description": description,
    }
    if parameters:
        body["parameters"] = parameters
    return httpx.Response(status, json=body)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (_json(429, "Too Many Requests", retry_after=5), RateLimited),
        (_json(429, "Too Many Requests"), TransientDeliveryError),
        (_json(500, "Internal Server Error"), TransientDeliveryError),
        (httpx.Response(502, text="<html>Bad Gateway</html>"), TransientDeliveryError),
        (httpx.Response(200, text="not json"), TransientDeliveryError),
        (_json(400, "Bad Request: chat not found"), PermanentDeliveryError),
        (_json(401, "Unauthorized"), PermanentDeliveryError),
        (_json(403, "Forbidden: bot was kicked"), PermanentDeliveryError),
        (_json(404, "Not Found"), PermanentDeliveryError),
        (_json(409, "Conflict"), PermanentDeliveryError),
        (httpx.ReadTimeout("read"), MaybeDelivered),
        (httpx.WriteTimeout("write"), MaybeDelivered),
        (httpx.ConnectTimeout("connect"), TransientDeliveryError),
        (httpx.PoolTimeout("pool"), TransientDeliveryError),
        (httpx.ConnectError("refused"), TransientDeliveryError),
        (httpx.RemoteProtocolError("dropped"), TransientDeliveryError),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, type) else None,
)
def test_classify(reply: httpx.Response | Exception, expected: type[Exception]) -> None:
    with respx.mock(base_url=f"https://api.telegram.org/bot{TOKEN}") as mock:
        mock.post("/sendMessage").mock(side_effect=[reply])
        notifier = TelegramNotifier(TOKEN, CHAT)
        error = _run_send(notifier)

    assert type(error) is expected
    assert TOKEN not in str(error)
    if isinstance(error, RateLimited):
        assert error.retry_after == 5.0


def test_classify_migration_switches_the_chat() -> None:
    with respx.mock(base_url=f"https://api.telegram.org/bot{TOKEN}") as mock:
        mock.post("/sendMessage").mock(
            side_effect=[_json(400, "upgraded", migrate_to_chat_id=-100777)]
        )
        notifier = TelegramNotifier(TOKEN, -5)
        error = _run_send(notifier)

    assert type(error) is TransientDeliveryError
    assert notifier.chat_id == -100777


def test_classify_ptb_exceptions_directly() -> None:
    notifier = TelegramNotifier(TOKEN, CHAT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        flood = RetryAfter(7)
    limited = notifier.classify(flood)
    assert isinstance(limited, RateLimited) and limited.retry_after == 7.0
    assert type(notifier.classify(TimedOut())) is MaybeDelivered  # cause unknown
    assert type(notifier.classify(KeyError("date"))) is TransientDeliveryError
    assert notifier.classify(limited) is limited


def test_ptb_retry_after_still_warns_when_built() -> None:
    """Why notifiers.telegram raises its own RetryAfter subclass for 429 replies.

    PTB 22.8's ``RetryAfter.__init__`` reads its deprecated ``retry_after`` property,
    so merely constructing one warns; under warnings-as-errors the warning replaced the
    RetryAfter. When this fails, PTB fixed it and ``_FloodWait`` can go.
    """
    with pytest.warns(PTBDeprecationWarning):
        RetryAfter(3)


# ---------------------------------------------------------------- the fake itself
def test_fake_answers_get_me_for_an_initialized_bot(
    fake_telegram: FakeTelegramServer,
) -> None:
    async def main() -> str | None:
        async with telegram.Bot(TOKEN, base_url=fake_telegram.base_url) as bot:
            await bot.send_message(CHAT, "hi")
            return bot.username

    assert asyncio.run(main()) == "fake_bot"
    assert [r["method"] for r in fake_telegram.requests] == ["getMe", "sendMessage"]
    assert fake_telegram.wait_for(1)[0]["text"] == "hi"


def test_stopping_the_fake_frees_a_hung_request() -> None:
    outcome: list[BaseException | int] = []
    server = FakeTelegramServer().start()
    server.script(["hang"])

    def post() -> None:
        try:
            reply = httpx.post(f"{server.base_url}x/sendMessage", data={"text": "t"})
            outcome.append(reply.status_code)
        except httpx.HTTPError as exc:
            outcome.append(exc)

    client = threading.Thread(target=post, name="fake-telegram-test-client")
    client.start()
    try:
        server.wait_for_requests(1)
    finally:
        server.stop()
        client.join(5)
    assert not client.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.RemoteProtocolError)
    assert not [t for t in threading.enumerate() if t.name.startswith("fake-telegram")]
