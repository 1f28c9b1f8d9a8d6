"""Escalation chains: a notification the primary channel cannot deliver after its
retries goes to the next channel, and the result says which delivered it. Against the
local fakes: a webhook answering 500 forever, then e-mail to a local SMTP server."""

from __future__ import annotations

from typing import Any

import pytest

from notifiers import (
    AppriseNotifier,
    DeliveryStatus,
    Dispatcher,
    Notification,
    NotifierConfigError,
    RetryPolicy,
)
from notifiers.errors import PermanentDeliveryError
from notifiers.testing import (
    FlakyNotifier,
    LocalSMTPServer,
    RecordingNotifier,
    WebhookSink,
)
from notifiers.testing.webhook import Reply

FAST = RetryPolicy(max_attempts=3, initial=0.01, max_wait=0.02, jitter=0)


async def _no_sleep(seconds: float) -> None:
    return None


def test_the_fallback_delivers_when_the_primary_returns_500_forever(
    smtp_server: LocalSMTPServer,
) -> None:
    with WebhookSink(default=Reply(500, "down")) as sink:
        primary = AppriseNotifier(sink.json_url("/primary"), name="webhook")
        email = AppriseNotifier(smtp_server.url(to="ops@example.com"), name="email")
        results: list[Any] = []
        with Dispatcher(
            [primary, email],
            policy=FAST,
            sleep=_no_sleep,
            fallbacks={"webhook": "email"},
            on_result=[results.append],
            rate_limits=False,
        ) as dispatcher:
            for n in range(3):
                dispatcher.submit(Notification(f"✖ worker failed #{n}", "boom"))
            assert dispatcher.flush(20)
        assert len(sink.requests) == 9  # 3 alerts x 3 attempts, all 500
        received = smtp_server.wait_for(3)
        assert sorted(m.subject for m in received) == [
            f"✖ worker failed #{n}" for n in range(3)
        ]
    by_channel = {(r.channel, r.status) for r in results}
    assert by_channel == {
        ("webhook", DeliveryStatus.FAILED),
        ("email", DeliveryStatus.DELIVERED),
    }
    delivered = [r for r in results if r.ok]
    assert len(delivered) == 3
    assert all(r.fallback_for == "webhook" for r in delivered)
    assert all(r.attempts == 3 for r in results if r.channel == "webhook")


def test_a_working_primary_never_touches_the_fallback() -> None:
    primary, spare = RecordingNotifier(name="primary"), RecordingNotifier(name="spare")
    with Dispatcher(
        [primary, spare], fallbacks={"primary": "spare"}, rate_limits=False
    ) as dispatcher:
        dispatcher.submit(Notification("t", "b"))
        assert dispatcher.flush(5)
        (result,) = dispatcher.results
    assert len(primary.sent) == 1 and spare.sent == []
    assert result.channel == "primary" and result.fallback_for is None


def test_a_chain_goes_on_until_one_delivers() -> None:
    first = FlakyNotifier([PermanentDeliveryError("403 bot blocked")], name="first")
    second = FlakyNotifier([PermanentDeliveryError("bad address")], name="second")
    third = RecordingNotifier(name="third")
    with Dispatcher(
        [first, second, third],
        policy=RetryPolicy(max_attempts=1),
        fallbacks={"first": "second", "second": "third"},
        rate_limits=False,
    ) as dispatcher:
        dispatcher.submit(Notification("t", "b"))
        assert dispatcher.flush(5)
        results = list(dispatcher.results)
    assert [(r.channel, r.ok, r.fallback_for) for r in results] == [
        ("first", False, None),
        ("second", False, "first"),
        ("third", True, "second"),
    ]
    assert len(third.sent) == 1
    assert first.sent == [] and second.sent == []


@pytest.mark.parametrize(
    ("fallbacks", "message"),
    [
        ({"a": "nope"}, "no channel named 'nope'"),
        ({"a": "c", "b": "c"}, "c is the fallback of two channels"),
        ({"a": "b", "b": "a"}, "a loop: a -> b -> a"),
    ],
)
def test_bad_chains_are_refused(fallbacks: dict[str, str], message: str) -> None:
    channels = [RecordingNotifier(name=n) for n in "abc"]
    with pytest.raises(ValueError, match=message):
        Dispatcher(channels, fallbacks=fallbacks)


def test_a_fallback_in_settings_names_a_known_channel() -> None:
    from notifiers import attach_from_settings, load_settings

    settings = load_settings(
        webhook={"url": "http://127.0.0.1:9/po-esc-1", "fallback": "pager"},
        state_path="none",
    )

    class Fake:
        def register_event(self, event: object, callback: object) -> None: ...

        def unregister_event(self, event: object, callback: object) -> bool:
            return True

    with pytest.raises(NotifierConfigError) as caught:
        attach_from_settings(Fake(), settings)
    assert caught.value.errors[0][0] == "webhook.fallback"


def test_with_an_outbox_the_fallback_takes_the_row_over(tmp_path: Any) -> None:
    from notifiers.state import NotifierState

    primary = FlakyNotifier([PermanentDeliveryError("403")] * 2, name="primary")
    spare = RecordingNotifier(name="spare")
    state = NotifierState(tmp_path / "notify.sqlite3")
    try:
        with Dispatcher(
            [primary, spare],
            state=state,
            fallbacks={"primary": "spare"},
            rate_limits=False,
        ) as dispatcher:
            dispatcher.submit(Notification("one", "b"))
            dispatcher.submit(Notification("two", "b"))
            assert dispatcher.flush(5)
        assert [n.title for n in spare.sent] == ["one", "two"]
        assert state.rows() == []  # nothing left for a replay to send twice
    finally:
        state.close()
