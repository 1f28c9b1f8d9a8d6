"""Acknowledgement and escalation: an alert that asks for an ack and gets one within
ack_timeout sends no e-mail; one nobody acknowledges goes to the e-mail channel (the
Telegram channel's fallback) saying why. The state file's clock is a test clock, so
"ten minutes later" is a step, not a wait. Real orchestrator, fake Bot API, aiosmtpd."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from notifiers import AppriseNotifier, attach
from notifiers.state import NotifierState
from notifiers.testing import FakeTelegramServer, LocalSMTPServer
from pyorchestrate import OneShotProcessAgent, Orchestrator

from .conftest import CHAT, chatops, telegram, wait_polling, wait_until
from .test_buttons import buttons

pytestmark = pytest.mark.process


class Loader(OneShotProcessAgent):
    def task(self) -> None:
        raise RuntimeError("batch 7 failed")


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def _alert(
    tmp_path: Path,
    fake_telegram: FakeTelegramServer,
    smtp_server: LocalSMTPServer,
    make_orchestrator: Callable[..., Orchestrator],
) -> tuple[Orchestrator, Any, Any, Clock, int]:
    clock = Clock()
    state = NotifierState(tmp_path / "notify.sqlite3", clock=clock)
    orchestrator = make_orchestrator("etl-prod", agent_start_timeout=30.0)
    orchestrator.register_agent(Loader, "loader")
    ops = chatops(ack_timeout=600.0)
    email = AppriseNotifier(smtp_server.url(to="oncall@example.com"), name="email")
    alerts = attach(
        orchestrator,
        "errors_only",
        telegram(fake_telegram, ops),
        email,
        rules=False,
        state=state,
        fallbacks={"telegram": "email"},
    )
    orchestrator.start()
    fake_telegram.wait_for(1, timeout=30)
    wait_polling(fake_telegram, ops)
    message_id = fake_telegram.sent_ids[-1]
    with NotifierState(tmp_path / "notify.sqlite3") as reader:
        wait_until(
            lambda: reader.chatops.next_due(["telegram"]) is not None, what="timer"
        )
    return orchestrator, alerts, ops, clock, message_id


def test_an_ack_in_time_stops_the_escalation(
    tmp_path: Path,
    fake_telegram: FakeTelegramServer,
    smtp_server: LocalSMTPServer,
    make_orchestrator: Callable[..., Orchestrator],
) -> None:
    orchestrator, alerts, ops, clock, message_id = _alert(
        tmp_path, fake_telegram, smtp_server, make_orchestrator
    )
    clock.offset = 9 * 60  # nine minutes later
    assert ops.check_escalations() == 0
    fake_telegram.press_button(buttons(fake_telegram.message(message_id))["✔ Ack"])
    edit = fake_telegram.wait_for_edit(lambda e: "acknowledged" in e["text"])
    clock.offset = 60 * 60  # long after the timeout
    fired = ops.check_escalations()
    alerts.detach()

    assert fired == 0
    assert smtp_server.messages == []
    assert "✔ acknowledged by @alice at " in edit["text"]
    assert "(escalation stopped)" in edit["text"]
    assert "✔ Ack" not in buttons(fake_telegram.message(message_id))
    [ack] = [
        r
        for r in orchestrator.history.last(50, event_name="operator_action")
        if r.data["action"] == "ack"
    ]
    assert ack.agent == "loader" and ack.data["actor"] == "@alice"
    assert str(ack.data["chat"]) == str(CHAT)


def test_no_ack_escalates_to_email_saying_why(
    tmp_path: Path,
    fake_telegram: FakeTelegramServer,
    smtp_server: LocalSMTPServer,
    make_orchestrator: Callable[..., Orchestrator],
) -> None:
    _orchestrator, alerts, ops, clock, message_id = _alert(
        tmp_path, fake_telegram, smtp_server, make_orchestrator
    )
    clock.offset = 10 * 60 + 1
    assert ops.check_escalations() == 1
    [mail] = smtp_server.wait_for(1)
    edit = fake_telegram.wait_for_edit(lambda e: "not acknowledged" in e["text"])
    assert ops.check_escalations() == 1  # once only
    # An ack after the escalation is still shown, but nothing more is sent.
    fake_telegram.send_command("/ack", chat_id=CHAT)
    fake_telegram.wait_for(2)
    report = alerts.detach()

    assert "not acknowledged on Telegram within 10 min" in mail.subject
    assert "loader" in mail.subject
    assert "not acknowledged on Telegram within 10 min" in mail.text
    assert "batch 7 failed" in mail.text
    assert (
        "⏫ not acknowledged on Telegram within 10 min: sent to email" in edit["text"]
    )
    assert fake_telegram.messages[-1]["text"].startswith("✔ acknowledged by @alice")
    assert len(smtp_server.messages) == 1
    assert report.summary["email"].delivered == 1
    assert str(fake_telegram.message(message_id)["text"]).count("⏫") == 1
