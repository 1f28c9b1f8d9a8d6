"""Polling in the dispatcher's loop: it survives the Bot API going down (502s) and
answers again once it is back, while alerts on another channel go out during the
outage; a second poller of the same bot (409 Conflict) stops it with one clear
error; its tasks end with the dispatcher. The fake Bot API on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

from notifiers import AppriseNotifier, Dispatcher, Notification, RetryPolicy
from notifiers.testing import FakeTelegramServer, WebhookSink

from .conftest import CHAT, TOKEN, chatops, telegram, wait_polling, wait_until

OUTAGE = float(os.environ.get("CHATOPS_OUTAGE_SECONDS", "10"))
"""How long the Bot API is down in the outage test (the issue's 10 s by default)."""


@pytest.mark.slow
def test_polling_survives_an_outage_with_502s_and_other_channels_go_on(
    fake_telegram: FakeTelegramServer,
    make_dispatcher: Callable[..., Dispatcher],
) -> None:
    ops = chatops()
    with WebhookSink() as sink:
        dispatcher = make_dispatcher(
            [
                telegram(fake_telegram, ops),
                AppriseNotifier(sink.json_url("/ops"), name="webhook"),
            ],
            policy=RetryPolicy(max_attempts=2, initial=0.05, max_wait=0.1, jitter=0),
        )
        wait_polling(fake_telegram, ops)
        fake_telegram.go_down(502)
        dispatcher.submit(Notification("db down", "while Telegram is down too"))
        [hook] = sink.wait_for(1)  # not held up by Telegram's outage
        deadline = time.monotonic() + OUTAGE
        while time.monotonic() < deadline:
            time.sleep(0.1)
        failed_polls = [
            r
            for r in fake_telegram.requests
            if r["method"] == "getUpdates" and r["status"] == 502
        ]
        fake_telegram.come_back()
        fake_telegram.send_command("/help", chat_id=CHAT)
        reply = fake_telegram.wait_for(1, timeout=60)[-1]
    assert "db down" in str(hook.body)
    assert len(failed_polls) >= 2  # it kept trying through the outage
    assert "/ps" in reply["text"]
    assert ops.polling and ops.polling_error is None


def test_a_second_poller_409_stops_polling_with_one_error(
    fake_telegram: FakeTelegramServer,
    make_dispatcher: Callable[..., Dispatcher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="notifiers.chatops")
    ops = chatops(poll_timeout=30.0)
    dispatcher = make_dispatcher([telegram(fake_telegram, ops)])
    wait_polling(fake_telegram, ops)
    wait_until(lambda: fake_telegram.waiting_polls == 1, what="our long poll")

    def other_instance() -> None:  # the same bot polled from elsewhere
        url = f"{fake_telegram.base_url}{TOKEN}/getUpdates?timeout=1"
        try:
            with urllib.request.urlopen(url, data=b"", timeout=10) as answer:
                answer.read()
        except urllib.error.HTTPError as exc:
            # Ours may have sent one more poll while it learnt of the conflict
            # (PTB's next request was already on its way): then this one got the
            # 409. Either way ours must stop, which is what is checked below.
            assert exc.code == 409

    other = threading.Thread(target=other_instance, name="other-poller")
    other.start()
    wait_until(lambda: ops.polling_error is not None, what="the conflict")
    other.join(10)
    wait_until(lambda: not ops.polling, what="polling stopped")
    polls = len([r for r in fake_telegram.requests if r["method"] == "getUpdates"])
    time.sleep(1.5)  # a poller that went on would retry within about 1 s
    again = len([r for r in fake_telegram.requests if r["method"] == "getUpdates"])
    dispatcher.submit(Notification("still alerting", "after the conflict"))
    [message] = fake_telegram.wait_for(1)

    assert "409 Conflict" in (ops.polling_error or "")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "another process polls this bot" in errors[0]
    assert again == polls
    assert (
        message["text"].startswith("<b>still alerting</b>")
        or "still alerting" in message["text"]
    )


def test_polling_stops_with_the_dispatcher(
    fake_telegram: FakeTelegramServer,
    make_dispatcher: Callable[..., Dispatcher],
) -> None:
    ops = chatops(poll_timeout=30.0)  # a long poll is under way at close
    dispatcher = make_dispatcher(
        [telegram(fake_telegram, ops)], name="notifiers-test-poll"
    )
    wait_polling(fake_telegram, ops)
    dispatcher.close(timeout=5)
    assert not ops.polling
    assert not [t for t in threading.enumerate() if t.name == "notifiers-test-poll"]


def test_polling_starts_once_the_bot_api_is_back(
    fake_telegram: FakeTelegramServer,
    make_dispatcher: Callable[..., Dispatcher],
) -> None:
    fake_telegram.go_down(502)  # down before the dispatcher starts
    ops = chatops()
    make_dispatcher([telegram(fake_telegram, ops)])
    wait_until(
        lambda: any(r["method"] == "getMe" for r in fake_telegram.requests),
        what="a first try",
    )
    assert not ops.polling
    fake_telegram.come_back()
    wait_polling(fake_telegram, ops)
    fake_telegram.send_command("/help", chat_id=CHAT)
    assert "/ps" in fake_telegram.wait_for(1)[-1]["text"]
    assert ops.polling_error is None


def test_a_reply_honours_flood_control_and_a_bad_request_is_not_retried(
    fake_telegram: FakeTelegramServer,
    make_dispatcher: Callable[..., Dispatcher],
) -> None:
    ops = chatops()
    make_dispatcher([telegram(fake_telegram, ops)])
    wait_polling(fake_telegram, ops)
    fake_telegram.script(["429:1"])  # the reply's first try: flood control
    fake_telegram.send_command("/help", chat_id=CHAT)
    [reply] = fake_telegram.wait_for(1, timeout=20)
    fake_telegram.script(["400"])  # then a reply Telegram refuses
    fake_telegram.send_command("/help", chat_id=CHAT)
    sends = fake_telegram.wait_for_requests(3, method="sendMessage")
    fake_telegram.send_command("/help", chat_id=CHAT)  # and the next one goes out
    fake_telegram.wait_for(2)
    statuses = [
        r["status"] for r in fake_telegram.requests if r["method"] == "sendMessage"
    ]
    assert "/ps" in reply["text"]
    assert [s["status"] for s in sends] == [429, 200, 400]
    assert statuses == [429, 200, 400, 200]  # the 400 was not tried again


def test_chatops_frees_its_state_even_when_the_channel_never_started(
    fake_telegram: FakeTelegramServer,
    make_dispatcher: Callable[..., Dispatcher],
) -> None:
    ops = chatops()
    channel = telegram(fake_telegram, ops)

    async def cannot_start() -> None:
        raise RuntimeError("no bot today")

    channel.start = cannot_start  # type: ignore[method-assign]
    dispatcher = make_dispatcher([channel])
    assert ops._state is not None  # an in-memory state: no state file given
    dispatcher.close(timeout=5)
    assert ops._state is None  # closed (Python 3.13 would warn of a leak)
