"""Buttons on a Telegram alert: a press restarts the failed agent through the
orchestrator's command layer and edits the message with who did it and the result;
forged, altered, expired or replayed button data does nothing. A real orchestrator,
a real process agent, the fake Bot API on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from notifiers import attach
from notifiers.chatops import CallbackSigner
from notifiers.state import NotifierState
from notifiers.testing import FakeTelegramServer
from pyorchestrate import LoopingProcessAgent, Orchestrator

from .conftest import CHAT, STRANGER, chatops, telegram, wait_polling, wait_until

pytestmark = pytest.mark.process


class FailsOnce(LoopingProcessAgent):
    """Crashes on its first run (no marker file yet), then loops quietly."""

    marker = ""

    def cycle(self) -> None:
        if not Path(self.marker).exists():
            Path(self.marker).write_text("failed once")
            raise RuntimeError("disk full <first run>")
        time.sleep(0.05)


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """The alert's inline keyboard: label -> callback data."""
    markup = message.get("reply_markup") or {}
    return {
        b["text"]: b["callback_data"]
        for row in markup.get("inline_keyboard", [])
        for b in row
    }


def _failed_alert(
    tmp_path: Path,
    fake_telegram: FakeTelegramServer,
    make_orchestrator: Callable[..., Orchestrator],
    **options: Any,
) -> tuple[Orchestrator, Any, Any, int]:
    orchestrator = make_orchestrator("etl-prod", agent_start_timeout=30.0)
    orchestrator.register_agent(FailsOnce, "etl", marker=str(tmp_path / "failed"))
    ops = chatops(**options)
    alerts = attach(
        orchestrator,
        "errors_only",
        telegram(fake_telegram, ops),
        rules=False,
        state=tmp_path / "notify.sqlite3",
    )
    orchestrator.start()
    fake_telegram.wait_for(1, timeout=30)
    wait_polling(fake_telegram, ops)
    message_id = fake_telegram.sent_ids[-1]
    return orchestrator, alerts, ops, message_id


def test_restart_press_restarts_the_failed_agent_and_edits_the_message(
    tmp_path: Path,
    fake_telegram: FakeTelegramServer,
    make_orchestrator: Callable[..., Orchestrator],
) -> None:
    orchestrator, alerts, ops, message_id = _failed_alert(
        tmp_path, fake_telegram, make_orchestrator
    )
    sent = fake_telegram.message(message_id)
    keys = buttons(sent)
    assert set(keys) == {"↻ Restart", "🔕 Mute 1 h", "✔ Ack", "📄 Log"}
    assert all(len(data.encode()) <= 64 for data in keys.values())
    wait_until(
        lambda: (
            orchestrator.run_command("status", "etl")["lifecycle_state"]
            in ("FAILED", "TERMINATED")
        ),
        what="etl failed",
    )

    fake_telegram.press_button(keys["↻ Restart"], message_id=message_id)
    edit = fake_telegram.wait_for_edit(lambda e: "restarted" in e["text"], timeout=30)
    alerts.detach()

    answers = [
        r for r in fake_telegram.requests if r["method"] == "answerCallbackQuery"
    ]
    assert answers and "restarting etl" in answers[0]["fields"]["text"]
    assert "↻ restarted by @alice at " in edit["text"]
    assert edit["text"].endswith("READY again"), edit["text"]
    assert edit["text"].startswith(sent["text"])  # the alert stays, the result below
    assert str(edit["message_id"]) == str(message_id)
    left = {
        b["text"]
        for row in json.loads(edit["reply_markup"])["inline_keyboard"]
        for b in row
    }
    assert "↻ Restart" not in left and "📄 Log" in left  # a button works once
    assert orchestrator.run_command("status", "etl")["restarts"] >= 1
    actions = [
        r.data
        for r in orchestrator.history.last(50, event_name="operator_action")
        if r.data.get("action") == "restart"
    ]
    assert actions and actions[-1]["source"] == "telegram"
    assert actions[-1]["actor"] == "@alice" and str(actions[-1]["chat"]) == str(CHAT)
    assert str(actions[-1]["ok"]) == "True"  # the history keeps context as text
    assert ops.handled == 1 and ops.refused == 0


def test_forged_altered_expired_and_replayed_button_data_is_refused(
    tmp_path: Path,
    fake_telegram: FakeTelegramServer,
    make_orchestrator: Callable[..., Orchestrator],
) -> None:
    orchestrator, alerts, ops, message_id = _failed_alert(
        tmp_path, fake_telegram, make_orchestrator
    )
    keys = buttons(fake_telegram.message(message_id))
    real = keys["🔕 Mute 1 h"]
    body, _, mac = real.rpartition(".")
    head, _, issued = body.partition(".")
    forged = CallbackSigner(b"x" * 32).sign("restart", int(head[2:], 16))
    altered = f"1r{head[2:]}.{issued}.{mac}"  # mute's signature on a restart
    old = CallbackSigner(b"y" * 32, clock=lambda: time.time() - 2 * 86_400)
    expired_signer = ops.signer
    stale = CallbackSigner(
        expired_signer._secret,  # the real key, an old timestamp
        clock=lambda: time.time() - 86_400 - 60,
    ).sign("restart", int(head[2:], 16))
    for data in (forged, altered, stale, old.sign("ack", 1), "nonsense", "1r1.0.x"):
        fake_telegram.press_button(data, message_id=message_id)
    wait_until(lambda: ops.refused >= 6, what="6 refusals")
    # The real Mute works once; pressed again (a replay), it does nothing.
    fake_telegram.press_button(real, message_id=message_id)
    fake_telegram.wait_for_edit(lambda e: "muted for 1 h" in e["text"])
    fake_telegram.press_button(real, message_id=message_id)
    wait_until(lambda: ops.refused >= 7, what="the replay refused")
    # A stranger's press of a real button is ignored: no answer at all.
    fake_telegram.press_button(
        keys["↻ Restart"], message_id=message_id, user_id=STRANGER
    )
    wait_until(lambda: ops.ignored >= 1, what="the stranger ignored")
    alerts.detach()

    assert orchestrator.run_command("status", "etl")["restarts"] == 0
    names = [
        r.data.get("action")
        for r in orchestrator.history.last(100, event_name="operator_action")
    ]
    assert names == ["mute"]
    answers = [
        r["fields"]["text"]
        for r in fake_telegram.requests
        if r["method"] == "answerCallbackQuery"
    ]
    assert sum("not valid" in a for a in answers) == 6
    assert answers.count("already done") == 1
    assert len(answers) == 8  # the stranger got none
    assert ops.handled == 1
    with NotifierState(
        tmp_path / "notify.sqlite3"
    ) as state:  # as `notify mute` keeps it
        [mute] = state.mutes()
    assert (mute.kind, mute.value) == ("agent", "etl")
    assert mute.reason == "muted from Telegram by @alice"


class Chatty(LoopingProcessAgent):
    """Writes numbered lines, then crashes once (no marker file yet)."""

    marker = ""

    def cycle(self) -> None:
        for number in range(30):
            print(f"line {number} <of 30> & more", flush=True)
        if not Path(self.marker).exists():
            Path(self.marker).write_text("failed once")
            raise RuntimeError("crashed after 30 lines")
        time.sleep(0.05)


def test_log_press_replies_with_the_last_output_lines_escaped(
    tmp_path: Path,
    fake_telegram: FakeTelegramServer,
    make_orchestrator: Callable[..., Orchestrator],
) -> None:
    orchestrator = make_orchestrator("etl-prod", agent_start_timeout=30.0)
    orchestrator.register_agent(Chatty, "chatty", marker=str(tmp_path / "failed"))
    ops = chatops()
    alerts = attach(
        orchestrator,
        "errors_only",
        telegram(fake_telegram, ops),
        rules=False,
        state=tmp_path / "notify.sqlite3",
    )
    orchestrator.start()
    fake_telegram.wait_for(1, timeout=30)
    wait_polling(fake_telegram, ops)
    message_id = fake_telegram.sent_ids[-1]
    log = buttons(fake_telegram.message(message_id))["📄 Log"]
    fake_telegram.press_button(log, message_id=message_id)
    reply = fake_telegram.wait_for(2)[-1]["text"]
    fake_telegram.press_button(log, message_id=message_id)  # Log works again
    again = fake_telegram.wait_for(3)[-1]["text"]
    alerts.detach()

    assert reply.startswith("📄 <b>chatty</b>: last output")
    assert "line 29 &lt;of 30&gt; &amp; more" in reply and "<of 30>" not in reply
    assert "<pre>" in reply and len(reply) <= 4096
    assert again == reply
    assert fake_telegram.edits == []  # the alert itself is unchanged


def test_a_refused_restart_says_why_and_the_button_works_again(
    tmp_path: Path,
    fake_telegram: FakeTelegramServer,
    make_orchestrator: Callable[..., Orchestrator],
) -> None:
    # The orchestrator itself allows no restart: the same check as over its socket.
    orchestrator = make_orchestrator(
        "etl-prod",
        agent_start_timeout=30.0,
        allowed_commands=frozenset({"ps", "status", "history"}),
    )
    orchestrator.register_agent(FailsOnce, "etl", marker=str(tmp_path / "failed"))
    ops = chatops()
    alerts = attach(
        orchestrator,
        "errors_only",
        telegram(fake_telegram, ops),
        rules=False,
        state=tmp_path / "notify.sqlite3",
    )
    orchestrator.start()
    fake_telegram.wait_for(1, timeout=30)
    wait_polling(fake_telegram, ops)
    message_id = fake_telegram.sent_ids[-1]
    restart = buttons(fake_telegram.message(message_id))["↻ Restart"]
    fake_telegram.press_button(restart, message_id=message_id)
    edit = fake_telegram.wait_for_edit()
    alerts.detach()

    assert "⚠ " in edit["text"] and "not allowed" in edit["text"]
    assert "↻ Restart" in buttons(fake_telegram.message(message_id))
    assert orchestrator.run_command("status", "etl")["restarts"] == 0


def test_detach_waits_for_a_restart_under_way(
    tmp_path: Path,
    fake_telegram: FakeTelegramServer,
    make_orchestrator: Callable[..., Orchestrator],
) -> None:
    orchestrator, alerts, _ops, message_id = _failed_alert(
        tmp_path, fake_telegram, make_orchestrator
    )
    wait_until(
        lambda: (
            orchestrator.run_command("status", "etl")["lifecycle_state"]
            in ("FAILED", "TERMINATED")
        ),
        what="etl failed",
    )
    restart = buttons(fake_telegram.message(message_id))["↻ Restart"]
    fake_telegram.press_button(restart, message_id=message_id)
    fake_telegram.wait_for_requests(1, method="answerCallbackQuery")
    alerts.detach()  # while the restart runs: it ends first, then polling stops
    [edit] = fake_telegram.edits
    assert "↻ restarted by @alice" in edit["text"]


def test_without_a_state_file_mute_goes_to_the_alert_rules(
    tmp_path: Path,
    fake_telegram: FakeTelegramServer,
    make_orchestrator: Callable[..., Orchestrator],
    caplog: pytest.LogCaptureFixture,
) -> None:
    orchestrator = make_orchestrator("etl-prod", agent_start_timeout=30.0)
    orchestrator.register_agent(FailsOnce, "etl", marker=str(tmp_path / "failed"))
    ops = chatops()
    alerts = attach(orchestrator, "errors_only", telegram(fake_telegram, ops))
    orchestrator.start()
    fake_telegram.wait_for(1, timeout=30)
    message_id = fake_telegram.sent_ids[-1]
    mute = buttons(fake_telegram.message(message_id))["🔕 Mute 1 h"]
    fake_telegram.press_button(mute, message_id=message_id)
    edit = fake_telegram.wait_for_edit()
    assert alerts.pipeline is not None
    [held] = alerts.pipeline.mutes()
    alerts.detach()

    assert "🔕 etl muted for 1 h" in edit["text"]
    assert held.agent == "etl" and held.reason == "muted from Telegram by @alice"
    assert "secret of this process" in caplog.text  # said once, at WARNING
