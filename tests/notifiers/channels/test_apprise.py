"""AppriseNotifier against real local servers: aiosmtpd and an HTTP sink.

Every test goes through a real Dispatcher with a small retry policy and a fake
sleep; every server and dispatcher is stopped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from notifiers import (
    DeliveryResult,
    DeliveryStatus,
    Dispatcher,
    Notification,
    Notifier,
    NotifierConfigError,
    RetryPolicy,
    Severity,
)
from notifiers.apprise import AppriseNotifier
from notifiers.testing import LocalSMTPServer, RecordingNotifier, Reply, WebhookSink

POLICY = RetryPolicy(max_attempts=3, initial=0.01, jitter=0)
SLACK_A, SLACK_B, SLACK_C = "T0SLACKAAA", "B0SLACKBBB", "XslackTokenCCCCCCCCCCCC1"
SLACK_URL = f"slack://{SLACK_A}/{SLACK_B}/{SLACK_C}"
HOOK_PATH = "/hooks/s3cr3t-h00k-path-9f2c"
PASSWORD = "Pw-d0nt-l3ak-7731"

MakeDispatcher = Callable[..., Dispatcher]


class FakeSleep:
    """Records the retry sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def new_dispatcher() -> Iterator[MakeDispatcher]:
    """Build Dispatchers with POLICY and a fake sleep; every one is closed."""
    made: list[Dispatcher] = []

    def make(*notifiers: Notifier, policy: RetryPolicy = POLICY) -> Dispatcher:
        dispatcher = Dispatcher(  # rate limits: test_ratelimit*.py
            list(notifiers), policy=policy, sleep=FakeSleep(), rate_limits=False
        )
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.close(timeout=5)


def deliver(
    dispatcher: Dispatcher, notification: Notification, channel: str
) -> DeliveryResult:
    """Submit, wait, and return the result of ``channel``."""
    dispatcher.submit(notification)
    assert dispatcher.flush(15), "the dispatcher did not finish in time"
    (result,) = [
        r
        for r in dispatcher.results
        if r.channel == channel and r.notification_id == notification.id
    ]
    return result


# ---------------------------------------------------------------- e-mail


def test_email_arrives_with_title_as_subject_and_body_text(
    smtp_server: LocalSMTPServer, new_dispatcher: MakeDispatcher
) -> None:
    email = AppriseNotifier(smtp_server.url(to="ops@example.com"), name="email")
    dispatcher = new_dispatcher(email)

    result = deliver(
        dispatcher, Notification("✖ worker failed", "boom\nline two"), "email"
    )

    assert result.status is DeliveryStatus.DELIVERED
    assert result.attempts == 1
    (received,) = smtp_server.wait_for(1)
    assert received.subject == "✖ worker failed"
    assert received.text == "boom\nline two"
    assert received.from_ == "alerts@example.com"
    assert received.rcpt_tos == ["ops@example.com"]


def test_email_with_auth_delivers_and_a_wrong_password_is_permanent(
    new_dispatcher: MakeDispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with LocalSMTPServer(username="alice", password=PASSWORD) as server:
        good = AppriseNotifier(server.url(), name="email", timeout=5)
        bad = AppriseNotifier(
            server.url(password="Wr0ng-" + PASSWORD), name="bad-email", timeout=5
        )
        dispatcher = new_dispatcher(good, bad)
        note = Notification("disk full", "on host a")
        dispatcher.submit(note)
        assert dispatcher.flush(15)
        results = {r.channel: r for r in dispatcher.results}

        assert results["email"].status is DeliveryStatus.DELIVERED
        assert [m.subject for m in server.wait_for(1)] == ["disk full"]
        # 535 from the server: not worth retrying, and no 15 s hang either.
        assert results["bad-email"].status is DeliveryStatus.PERMANENT
        assert results["bad-email"].attempts == 1
        assert "SMTP login refused (535)" in (results["bad-email"].error or "")
        assert server.auth_failures >= 1
        assert len(server.messages) == 1

    shown = [caplog.text, repr(good), repr(bad), *map(repr, dispatcher.results)]
    shown += [str(s.last_error) for s in dispatcher.stats().values()]
    for text in shown:
        assert PASSWORD not in text


def test_a_login_the_server_leaves_unanswered_is_permanent(
    new_dispatcher: MakeDispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    # A server that answers a bad login late (a tarpit) or never looks, from the
    # client, like a timeout: it is still a refused login, not worth a retry (and
    # retried logins can lock the account out).
    caplog.set_level(logging.DEBUG)
    with LocalSMTPServer(
        username="dave", password=PASSWORD, auth_failure="silent"
    ) as server:
        bad = AppriseNotifier(
            server.url(password="Wr0ng-" + PASSWORD), name="bad-email", timeout=0.5
        )
        dispatcher = new_dispatcher(bad)

        result = deliver(
            dispatcher, Notification("disk full", "on host a"), "bad-email"
        )

        assert result.status is DeliveryStatus.PERMANENT
        assert result.attempts == 1
        assert server.auth_failures == 1
        assert server.messages == []
    error = result.error or ""
    assert "login" in error and "timed out" in error
    for text in (caplog.text, error, repr(result)):
        assert PASSWORD not in text


def test_a_temporary_login_failure_is_retried(
    new_dispatcher: MakeDispatcher,
) -> None:
    with LocalSMTPServer(
        username="fay", password=PASSWORD, auth_failure="temporary"
    ) as server:
        email = AppriseNotifier(server.url(password="x"), name="email", timeout=2)
        dispatcher = new_dispatcher(email)

        result = deliver(dispatcher, Notification("t", "b"), "email")

    assert result.status is DeliveryStatus.FAILED
    assert result.attempts == POLICY.max_attempts
    assert "SMTP login refused for now (454)" in (result.error or "")


def test_a_refused_login_through_the_settings_does_not_park_the_channel(
    tmp_path: Path,
) -> None:
    # The reported case: settings → email channel with a wrong password, a state
    # file; the login is refused (535) or left unanswered. Each alert ends as
    # PERMANENT (kept as "dead"), none waits in the outbox for a retry.
    from notifiers.settings import build_notifiers, load_settings
    from notifiers.state import NotifierState, OutboxState

    for mode in ("reply", "silent"):
        with (
            LocalSMTPServer(
                username="erin", password=PASSWORD, auth_failure=mode
            ) as server,
            NotifierState(tmp_path / f"{mode}.sqlite3") as state,
        ):
            settings = load_settings(
                state_path="none",
                email={
                    "host": server.host,
                    "port": server.port,
                    "mode": "insecure",
                    "username": "erin",
                    "password": "Wr0ng-" + PASSWORD,
                    "sender": "alerts@example.com",
                    "recipients": ["ops@example.com"],
                    "timeout": 0.5,
                },
            )
            dispatcher = Dispatcher(
                build_notifiers(settings),
                policy=POLICY,
                sleep=FakeSleep(),
                rate_limits=False,
                state=state,
            )
            try:
                for title in ("first", "second"):
                    dispatcher.submit(Notification(title, "body"))
                assert dispatcher.flush(15)
                results = list(dispatcher.results)
            finally:
                dispatcher.close(timeout=5)
            assert [(r.status, r.attempts) for r in results] == [
                (DeliveryStatus.PERMANENT, 1)
            ] * 2, mode
            assert [row.state for row in state.rows()] == [OutboxState.DEAD] * 2
            # one login per alert (smtplib tries PLAIN, then LOGIN, after a 535)
            assert server.auth_failures == (2 if mode == "silent" else 4)
            assert server.messages == []


def test_starttls_that_the_server_does_not_offer_is_permanent(
    smtp_server: LocalSMTPServer, new_dispatcher: MakeDispatcher
) -> None:
    # mode=starttls against a plain server (a common mistake): no retry can help.
    url = smtp_server.url().replace("mailto://", "mailtos://") + "&mode=starttls"
    email = AppriseNotifier(url, name="email", timeout=2)
    dispatcher = new_dispatcher(email)

    result = deliver(dispatcher, Notification("t", "b"), "email")

    assert (result.status, result.attempts) == (DeliveryStatus.PERMANENT, 1)
    assert "STARTTLS extension not supported" in (result.error or "")
    assert smtp_server.messages == []


def test_unreachable_smtp_server_is_transient_and_retried(
    new_dispatcher: MakeDispatcher,
) -> None:
    with LocalSMTPServer() as server:
        url = server.url()
    email = AppriseNotifier(url, name="email", timeout=2)  # nothing listens now
    dispatcher = new_dispatcher(email)

    result = deliver(dispatcher, Notification("t", "b"), "email")

    assert result.status is DeliveryStatus.FAILED
    assert result.attempts == POLICY.max_attempts
    assert result.error_class == "TransientDeliveryError"


# ---------------------------------------------------------------- json:// and Slack


def test_json_webhook_gets_title_message_and_type(
    webhook_sink: WebhookSink, new_dispatcher: MakeDispatcher
) -> None:
    hook = AppriseNotifier(webhook_sink.json_url("/alerts"), name="webhook")
    dispatcher = new_dispatcher(hook)

    result = deliver(
        dispatcher,
        Notification("agent down", "exit code 3", severity=Severity.ERROR),
        "webhook",
    )

    assert result.status is DeliveryStatus.DELIVERED
    (request,) = webhook_sink.wait_for(1)
    assert (request.method, request.path) == ("POST", "/alerts")
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.json["title"] == "agent down"
    assert request.json["message"] == "exit code 3"
    assert request.json["type"] == "failure"


def test_an_empty_body_sends_the_title(
    webhook_sink: WebhookSink, new_dispatcher: MakeDispatcher
) -> None:
    dispatcher = new_dispatcher(AppriseNotifier(webhook_sink.json_url(), name="w"))

    result = deliver(dispatcher, Notification("only a title", ""), "w")

    assert result.status is DeliveryStatus.DELIVERED
    assert webhook_sink.wait_for(1)[0].json["message"] == "only a title"


def test_slack_webhook_pointed_at_loopback_without_throttling(
    webhook_sink: WebhookSink,
    new_dispatcher: MakeDispatcher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="apprise")
    slack = AppriseNotifier(
        SLACK_URL, name="slack", slack_webhook_base=webhook_sink.slack_base
    )
    dispatcher = new_dispatcher(slack)

    first = deliver(dispatcher, Notification("deploy done", "all green"), "slack")
    second = deliver(dispatcher, Notification("again", "no throttle"), "slack")

    assert first.status is DeliveryStatus.DELIVERED
    assert second.status is DeliveryStatus.DELIVERED
    requests = webhook_sink.wait_for(2)
    assert {r.path for r in requests} == {f"/services/{SLACK_A}/{SLACK_B}/{SLACK_C}"}
    attachment = requests[0].json["attachments"][0]
    assert (attachment["title"], attachment["text"]) == ("deploy done", "all green")
    # apprise's per-plugin throttle (1.2 s between Slack posts) is off: it logs
    # "Throttling for …s" at DEBUG whenever it sleeps.
    assert "Slack send() completed" in caplog.text
    assert "Throttling" not in caplog.text


def test_slack_webhook_base_without_a_slack_url_is_a_config_error(
    webhook_sink: WebhookSink,
) -> None:
    with pytest.raises(NotifierConfigError, match="slack_webhook_base"):
        AppriseNotifier(
            webhook_sink.json_url(), slack_webhook_base=webhook_sink.slack_base
        )


# ---------------------------------------------------------------- faults


def test_500_then_200_is_delivered_by_our_retry_not_apprises(
    webhook_sink: WebhookSink, new_dispatcher: MakeDispatcher
) -> None:
    webhook_sink.script(500, 200)
    # ?retry=3 would make apprise retry on its own: the notifier forces it to 0.
    hook = AppriseNotifier(webhook_sink.json_url("/h") + "?retry=3", name="webhook")
    dispatcher = new_dispatcher(hook)

    result = deliver(dispatcher, Notification("t", "b"), "webhook")

    assert result.status is DeliveryStatus.DELIVERED
    assert result.attempts == 2
    assert [r.reply.status for r in webhook_sink.requests] == [500, 200]
    assert dispatcher.stats()["webhook"].retried == 1


@pytest.mark.parametrize("status", [400, 403, 404])
def test_client_errors_are_permanent_after_one_attempt(
    status: int, webhook_sink: WebhookSink, new_dispatcher: MakeDispatcher
) -> None:
    webhook_sink.script(status)
    dispatcher = new_dispatcher(AppriseNotifier(webhook_sink.json_url(), name="w"))

    result = deliver(dispatcher, Notification("t", "b"), "w")

    assert result.status is DeliveryStatus.PERMANENT
    assert result.attempts == 1
    assert result.error_class == "PermanentDeliveryError"
    assert f"HTTP {status}" in (result.error or "")
    assert len(webhook_sink.requests) == 1


def test_slack_403_is_permanent(
    webhook_sink: WebhookSink, new_dispatcher: MakeDispatcher
) -> None:
    webhook_sink.script(Reply(403, "invalid_token"))
    slack = AppriseNotifier(
        SLACK_URL, name="slack", slack_webhook_base=webhook_sink.slack_base
    )
    dispatcher = new_dispatcher(slack)

    result = deliver(dispatcher, Notification("t", "b"), "slack")

    assert (result.status, result.attempts) == (DeliveryStatus.PERMANENT, 1)


def test_429_is_transient_and_retried(
    webhook_sink: WebhookSink, new_dispatcher: MakeDispatcher
) -> None:
    webhook_sink.script(Reply(429, "rate_limited", headers={"Retry-After": "1"}), 200)
    dispatcher = new_dispatcher(AppriseNotifier(webhook_sink.json_url(), name="w"))

    result = deliver(dispatcher, Notification("t", "b"), "w")

    assert (result.status, result.attempts) == (DeliveryStatus.DELIVERED, 2)


def test_500_every_time_fails_after_max_attempts(
    webhook_sink: WebhookSink, new_dispatcher: MakeDispatcher
) -> None:
    webhook_sink.default = Reply(503, "busy")
    dispatcher = new_dispatcher(AppriseNotifier(webhook_sink.json_url(), name="w"))

    result = deliver(dispatcher, Notification("t", "b"), "w")

    assert result.status is DeliveryStatus.FAILED
    assert result.attempts == POLICY.max_attempts
    assert "HTTP 503" in (result.error or "")
    assert len(webhook_sink.requests) == POLICY.max_attempts


def test_a_hanging_webhook_does_not_hold_up_other_channels(
    webhook_sink: WebhookSink, new_dispatcher: MakeDispatcher
) -> None:
    webhook_sink.script(Reply(delay=60))  # cut short by the sink's stop()
    hook = AppriseNotifier(webhook_sink.json_url(), name="webhook", timeout=1.0)
    recorder = RecordingNotifier(name="recorder")
    dispatcher = new_dispatcher(hook, recorder)
    note = Notification("t", "b")

    dispatcher.submit(note)
    webhook_sink.wait_for(1)  # the webhook request is in flight, unanswered
    recorder.wait_for(1)  # ... and the other channel delivered meanwhile
    assert not [r for r in dispatcher.results if r.channel == "webhook"]
    assert dispatcher.flush(15)

    (result,) = [r for r in dispatcher.results if r.channel == "webhook"]
    # The request went out and no answer came: it may have arrived, so it is
    # recorded as such and not retried (RetryPolicy.retry_maybe_delivered=False).
    assert result.status is DeliveryStatus.MAYBE_DELIVERED
    assert result.attempts == 1
    assert "timed out" in (result.error or "")
    assert len(webhook_sink.requests) == 1


def test_a_call_stuck_beyond_its_socket_timeouts_is_abandoned(
    webhook_sink: WebhookSink,
    new_dispatcher: MakeDispatcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Socket timeouts bound every real apprise call; the outer guard (2 * timeout
    # + 1 s) is the backstop for anything they miss. Simulate such a call.
    release = threading.Event()
    hook = AppriseNotifier(webhook_sink.json_url(), name="stuck", timeout=0.1)

    def stuck(indexes: list[int], notification: Notification) -> list[object]:
        release.wait(10)
        return []

    monkeypatch.setattr(hook, "_notify_all", stuck)
    dispatcher = new_dispatcher(hook)
    try:
        result = deliver(dispatcher, Notification("t", "b"), "stuck")
    finally:
        release.set()  # let the executor thread finish

    assert (result.status, result.attempts) == (DeliveryStatus.MAYBE_DELIVERED, 1)
    assert "no answer from apprise" in (result.error or "")


def test_a_retry_only_resends_to_the_services_that_failed(
    webhook_sink: WebhookSink, new_dispatcher: MakeDispatcher
) -> None:
    webhook_sink.script(200, 500, 200)  # /a ok; /b 500, then ok
    both = AppriseNotifier(
        [webhook_sink.json_url("/a"), webhook_sink.json_url("/b")], name="both"
    )
    dispatcher = new_dispatcher(both)

    result = deliver(dispatcher, Notification("t", "b"), "both")

    assert (result.status, result.attempts) == (DeliveryStatus.DELIVERED, 2)
    assert [r.path for r in webhook_sink.requests] == ["/a", "/b", "/b"]


def test_one_permanent_service_among_several_is_reported(
    webhook_sink: WebhookSink, new_dispatcher: MakeDispatcher
) -> None:
    webhook_sink.script(403, 500, 200)  # /a forbidden; /b 500, then ok
    both = AppriseNotifier(
        [webhook_sink.json_url("/a"), webhook_sink.json_url("/b")], name="both"
    )
    dispatcher = new_dispatcher(both)

    result = deliver(dispatcher, Notification("t", "b"), "both")

    assert (result.status, result.attempts) == (DeliveryStatus.PERMANENT, 2)
    assert "HTTP 403" in (result.error or "")
    assert "delivered to 1 of 2" in (result.error or "")
    assert [r.path for r in webhook_sink.requests] == ["/a", "/b", "/b"]


# ---------------------------------------------------------------- tags


def test_tags_select_services(
    webhook_sink: WebhookSink, new_dispatcher: MakeDispatcher
) -> None:
    urls = [
        "ops=" + webhook_sink.json_url("/ops"),
        "dev, qa=" + webhook_sink.json_url("/dev"),
        webhook_sink.json_url("/untagged"),
    ]
    # A URL tagged otherwise is left out; an untagged URL takes the channel's tags.
    ops = AppriseNotifier(urls, name="ops", tags="ops")
    dev_or_qa = AppriseNotifier(urls, name="qa", tags=["nope", "qa"])
    every = AppriseNotifier(urls, name="all")
    for channel in (ops, dev_or_qa, every):  # one dispatcher (and title) each
        note = Notification(channel.name, "b")
        assert deliver(new_dispatcher(channel), note, channel.name).ok
    paths: dict[str, list[str]] = {}
    for request in webhook_sink.requests:
        paths.setdefault(request.json["title"], []).append(request.path)
    assert sorted(paths["ops"]) == ["/ops", "/untagged"]
    assert sorted(paths["qa"]) == ["/dev", "/untagged"]
    assert sorted(paths["all"]) == ["/dev", "/ops", "/untagged"]


def test_tags_that_match_nothing_are_a_config_error(
    webhook_sink: WebhookSink,
) -> None:
    with pytest.raises(NotifierConfigError, match="tags") as info:
        AppriseNotifier(["ops=" + webhook_sink.json_url()], tags="prod")
    assert info.value.errors[0][0] == "tags"


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("url", "scheme", "secrets"),
    [
        (
            "nonsense://admin:Unkn0wnSchemePW@example.com/x",
            "nonsense",
            ["Unkn0wnSchemePW"],
        ),
        # A Slack URL with a missing token: the scheme is known, the URL is not valid.
        (
            "slack://TbadTokenAAAA/BbadTokenBBBB",
            "slack",
            ["TbadTokenAAAA", "BbadTokenBBBB"],
        ),
        ("mailto://bob:MailtoPW-1234@", "mailto", ["MailtoPW-1234"]),
    ],
)
def test_a_bad_url_names_the_scheme_never_the_secret(
    url: str, scheme: str, secrets: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(NotifierConfigError) as info:
        AppriseNotifier(["json://127.0.0.1:9/ok", url], name="bad")

    message = str(info.value)
    assert f"scheme {scheme!r}" in message
    assert info.value.errors[0][0] == "urls[1]"
    assert isinstance(info.value, ValueError)
    for text in (message, repr(info.value), caplog.text):
        for secret in secrets:
            assert secret not in text


def test_a_string_without_a_scheme_is_a_config_error() -> None:
    with pytest.raises(NotifierConfigError, match="no scheme"):
        AppriseNotifier("just some text")


@pytest.mark.parametrize("timeout", [0, -1.0])
def test_a_bad_timeout_is_a_config_error(timeout: float) -> None:
    with pytest.raises(NotifierConfigError, match="timeout"):
        AppriseNotifier("json://127.0.0.1:9/ok", timeout=timeout)


def test_repr_shows_the_schemes_only() -> None:
    notifier = AppriseNotifier(
        [
            f"mailto://alice:{PASSWORD}@127.0.0.1:9?from=a@example.com&to=d@example.com",
            SLACK_URL,
        ],
        name="mixed",
    )
    text = repr(notifier)
    assert text == "<AppriseNotifier 'mixed' [mailto://, slack://]>"
    for secret in (PASSWORD, SLACK_A, SLACK_B, SLACK_C):
        assert secret not in text


# ---------------------------------------------------------------- redaction


def test_no_secret_in_logs_results_errors_or_reprs(
    smtp_server: LocalSMTPServer,
    webhook_sink: WebhookSink,
    new_dispatcher: MakeDispatcher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("apprise", "notifiers", "urllib3"):
        caplog.set_level(logging.DEBUG, logger=name)
    webhook_sink.script(200, 200, 500, 403, 500)  # slack ok, json ok, then failures
    with LocalSMTPServer(username="carol", password=PASSWORD) as auth_server:
        channels: list[Notifier] = [
            AppriseNotifier(auth_server.url(), name="email"),
            AppriseNotifier(auth_server.url(password="x" + PASSWORD), name="email-bad"),
            AppriseNotifier(
                SLACK_URL, name="slack", slack_webhook_base=webhook_sink.slack_base
            ),
            AppriseNotifier(webhook_sink.json_url(HOOK_PATH), name="webhook"),
        ]
        single = RetryPolicy(max_attempts=1)
        dispatcher = new_dispatcher(*channels, policy=single)
        dispatcher.submit(Notification("first", "ok for most"))
        assert dispatcher.flush(15)
        dispatcher.submit(Notification("second", "fails everywhere"))
        assert dispatcher.flush(15)
        dispatcher.close(timeout=5)
        auth_server.wait_for(1)

    statuses = {(r.channel, r.notification_id): r.status for r in dispatcher.results}
    assert DeliveryStatus.DELIVERED in statuses.values()
    assert DeliveryStatus.PERMANENT in statuses.values()
    paths = [r.path for r in webhook_sink.requests]
    assert f"/services/{SLACK_A}/{SLACK_B}/{SLACK_C}" in paths  # it did go there
    assert HOOK_PATH in paths

    with pytest.raises(NotifierConfigError) as bad_url:
        AppriseNotifier(f"slack://{SLACK_A}/{SLACK_B}", name="broken")

    shown = [
        caplog.text,
        *(repr(r) for r in dispatcher.results),
        *(str(s.last_error) for s in dispatcher.stats().values()),
        *(repr(c) for c in channels),
        str(bad_url.value),
    ]
    secrets = [
        PASSWORD,
        SLACK_A,
        SLACK_B,
        SLACK_C,
        HOOK_PATH,
        HOOK_PATH.strip("/"),
        f"{SLACK_A}/{SLACK_B}/{SLACK_C}",
    ]
    for text in shown:
        for secret in secrets:
            assert secret not in text, f"{secret!r} leaked in {text[:200]!r}"
