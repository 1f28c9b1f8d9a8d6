"""Every channel at DEBUG, delivering and failing: no secret in anything captured."""

from __future__ import annotations

import logging

import pytest

from notifiers import AppriseNotifier, RetryPolicy, TelegramNotifier, attach
from notifiers.testing import FakeTelegramServer, LocalSMTPServer, WebhookSink
from pyorchestrate import Orchestrator
from tests.agents import agent

TOKEN = "987654321:AAHsecretSECRETsecret_token-Value42"
PASSWORD = "sup3r-s3cret-pw"
SLACK = ("TSECRET01", "BSECRET02", "SlackSecretPath03")
HOOK_PATH = "/hooks/webhook-secret-path-04"


def test_no_secret_reaches_logs_results_errors_or_reprs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with (
        FakeTelegramServer() as telegram,
        LocalSMTPServer(username="alerts", password=PASSWORD) as smtp,
        WebhookSink() as sink,
    ):
        # Each channel fails once (a transient error), then delivers.
        telegram.script(["500", "200"])
        sink.script(500, 200, 500, 200)
        channels = [
            TelegramNotifier(TOKEN, chat_id=7, base_url=telegram.base_url),
            AppriseNotifier(smtp.url(to="ops@example.com"), name="email"),
            AppriseNotifier(
                "slack://" + "/".join(SLACK),
                name="slack",
                slack_webhook_base=sink.slack_base,
            ),
            AppriseNotifier(sink.json_url(HOOK_PATH), name="webhook"),
        ]
        orchestrator = Orchestrator(
            "redaction", Orchestrator.Config(enable_command_interface=False)
        )
        orchestrator.register_agent(agent("boom", "thread"), "boom")
        alerts = attach(
            orchestrator,
            "errors_only",
            *channels,
            policy=RetryPolicy(max_attempts=3, initial=0.01, max_wait=0.02, jitter=0),
        )
        orchestrator.start()
        orchestrator.join()
        assert alerts.dispatcher.flush(30)
        results = list(alerts.results)
        reprs = [repr(c) for c in channels] + [repr(alerts), repr(alerts.dispatcher)]
        stats = alerts.dispatcher.stats()
        alerts.detach()
    assert {r.channel: r.status.value for r in results} == {
        "telegram": "delivered",
        "email": "delivered",
        "slack": "delivered",
        "webhook": "delivered",
    }
    assert stats["telegram"].retried == 1
    captured = "\n".join(
        [caplog.text, *map(repr, results), *reprs, *map(repr, stats.values())]
    )
    for secret in (TOKEN, TOKEN.split(":")[1], PASSWORD, *SLACK, HOOK_PATH):
        assert secret not in captured, secret
