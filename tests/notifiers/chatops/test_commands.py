"""Chat commands from allowed chats, denied to everyone else: /ps gets the table,
a stranger gets nothing (counted, logged with his user id), a group the bot was
added to without being allowed gets no reply, a read-only user may look but not
act; the replies are escaped HTML within 4,096 characters. A real orchestrator, real
process agents, the fake Bot API on 127.0.0.1."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from notifiers import attach
from notifiers.chatops import Access, ChatOps, Permission
from notifiers.testing import FakeTelegramServer
from pyorchestrate import LoopingProcessAgent, Orchestrator

from .conftest import CHAT, GROUP, STRANGER, chatops, telegram, wait_polling, wait_until

pytestmark = pytest.mark.process


class Worker(LoopingProcessAgent):
    def cycle(self) -> None:
        time.sleep(0.05)


def replies(server: FakeTelegramServer, chat: int) -> list[str]:
    return [m["text"] for m in server.messages if str(m["chat_id"]) == str(chat)]


@pytest.fixture
def ops_on(
    tmp_path: Path,
    fake_telegram: FakeTelegramServer,
    make_orchestrator: Callable[..., Orchestrator],
) -> Iterator[tuple[Orchestrator, ChatOps]]:
    """Two process agents ``etl<1>`` and ``web``, READY; chat-ops polling."""
    orchestrator = make_orchestrator("prod", agent_start_timeout=30.0)
    orchestrator.register_agent(Worker, "etl<1>")
    orchestrator.register_agent(Worker, "web")
    ops = chatops(
        access=Access(
            users={CHAT: Permission.OPERATOR, 7: Permission.READ_ONLY},
            chats={-1002: Permission.READ_ONLY},
        )
    )
    alerts = attach(
        orchestrator,
        "errors_only",
        telegram(fake_telegram, ops),
        rules=False,
        state=tmp_path / "notify.sqlite3",
    )
    orchestrator.start()
    wait_until(
        lambda: all(
            a["lifecycle_state"] == "READY"
            for a in orchestrator.run_command("ps")["agents"]
        ),
        what="both agents READY",
    )
    wait_polling(fake_telegram, ops)
    yield orchestrator, ops
    alerts.detach()


def test_ps_from_an_allowed_chat_gets_the_table(
    fake_telegram: FakeTelegramServer, ops_on: tuple[Orchestrator, ChatOps]
) -> None:
    _orchestrator, ops = ops_on
    fake_telegram.send_command("/ps", chat_id=CHAT)
    [reply] = fake_telegram.wait_for(1)
    assert reply["parse_mode"] == "HTML"
    text = reply["text"]
    assert "<b>2 agent(s)</b>" in text
    assert "<pre>NAME" in text and "STATE" in text
    assert "etl&lt;1&gt;" in text and "<1>" not in text  # escaped
    assert text.count("READY") == 2
    assert len(text) <= 4096
    assert ops.handled == 1 and ops.ignored == 0


def test_a_stranger_gets_nothing_and_is_counted(
    fake_telegram: FakeTelegramServer,
    ops_on: tuple[Orchestrator, ChatOps],
    caplog: pytest.LogCaptureFixture,
) -> None:
    orchestrator, ops = ops_on
    caplog.set_level(logging.WARNING, logger="notifiers.chatops")
    fake_telegram.send_command("/ps", chat_id=STRANGER)
    fake_telegram.send_command("/restart web", chat_id=STRANGER)
    fake_telegram.send_command("/ps", chat_id=GROUP, user_id=CHAT)  # not allowed group
    wait_until(lambda: ops.ignored == 3, what="3 updates ignored")
    # Then an allowed /help: its reply is the only message sent.
    fake_telegram.send_command("/help", chat_id=CHAT)
    [reply] = fake_telegram.wait_for(1)
    assert str(reply["chat_id"]) == str(CHAT)
    assert "/restart" in reply["text"]
    assert replies(fake_telegram, STRANGER) == replies(fake_telegram, GROUP) == []
    assert orchestrator.run_command("status", "web")["restarts"] == 0
    assert not orchestrator.history.last(100, event_name="operator_action")
    warnings = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert len(warnings) == 3
    assert f"from user {STRANGER} in chat {STRANGER}" in warnings[0]
    assert all("restart web" not in w for w in warnings)  # nothing echoed


def test_read_only_may_look_but_not_act(
    fake_telegram: FakeTelegramServer, ops_on: tuple[Orchestrator, ChatOps]
) -> None:
    orchestrator, ops = ops_on
    fake_telegram.send_command("/status web", chat_id=7)
    fake_telegram.wait_for(1)
    fake_telegram.send_command("/restart web", chat_id=7)
    fake_telegram.wait_for(2)
    fake_telegram.send_command("/history 5", chat_id=-1002, user_id=99)  # allowed group
    fake_telegram.wait_for(3)
    status, refused, history = replies(fake_telegram, 7) + replies(fake_telegram, -1002)
    assert status.startswith("<b>web</b>: READY") and "restarts: 0" in status
    assert "needs operator permission" in refused
    assert "last 5 event(s)" in history and "agent_ready" in history
    assert ops.refused == 1
    assert orchestrator.run_command("status", "web")["restarts"] == 0


def test_operator_restarts_and_mutes_by_command_and_history_shows_it(
    tmp_path: Path,
    fake_telegram: FakeTelegramServer,
    ops_on: tuple[Orchestrator, ChatOps],
) -> None:
    orchestrator, _ops = ops_on
    for number, command in enumerate(
        (
            "/restart web",
            "/mute etl<1> 2h",
            "/unmute etl<1>",
            "/history 8",
            "/frobnicate",
            "/status nosuch",
        )
    ):
        fake_telegram.send_command(command, chat_id=CHAT)
        fake_telegram.wait_for(number + 1, timeout=30)
    restarted, muted, unmuted, history, unknown, missing = replies(fake_telegram, CHAT)
    assert restarted.startswith("↻ restarted by @alice at ")
    assert restarted.endswith("READY again")
    assert "🔕 etl&lt;1&gt; muted for 2 h (until " in muted
    assert unmuted == "🔔 etl&lt;1&gt; unmuted"
    assert "restart by @alice (telegram, ok)" in history
    assert "unmute by @alice" in history
    assert unknown == "unknown command; /help lists them"
    assert missing.startswith("⚠ ") and "nosuch" in missing
    actions = [
        (r.data["action"], r.agent or r.data.get("target"))
        for r in orchestrator.history.last(100, event_name="operator_action")
    ]
    assert actions == [("restart", "web"), ("mute", "etl<1>"), ("unmute", "etl<1>")]


def test_a_command_for_another_bot_in_a_group_is_left_alone(
    fake_telegram: FakeTelegramServer, ops_on: tuple[Orchestrator, ChatOps]
) -> None:
    _orchestrator, ops = ops_on
    fake_telegram.send_command("/ps@other_bot", chat_id=-1002, user_id=99)
    fake_telegram.send_command("good morning", chat_id=-1002, user_id=99)
    fake_telegram.send_command("/frobnicate", chat_id=-1002, user_id=99)  # not ours
    fake_telegram.send_command("/help", chat_id=-1002, user_id=99)
    [help_text] = (m["text"] for m in fake_telegram.wait_for(1))
    fake_telegram.send_command("/ps@Fake_Bot", chat_id=-1002, user_id=99)  # ours
    table = fake_telegram.wait_for(2)[-1]["text"]
    assert help_text.startswith("<b>commands</b> (read_only)")
    assert "/restart" not in help_text  # a read-only group sees what it may use
    assert table.startswith("<b>2 agent(s)</b>")
    assert len(fake_telegram.messages) == 2
    assert ops.ignored == 0


def test_operator_stops_and_starts_an_agent(
    fake_telegram: FakeTelegramServer, ops_on: tuple[Orchestrator, ChatOps]
) -> None:
    orchestrator, _ops = ops_on
    fake_telegram.send_command("/stop web", chat_id=CHAT)
    stopped = fake_telegram.wait_for(1, timeout=30)[-1]["text"]
    state = orchestrator.run_command("status", "web")["lifecycle_state"]
    fake_telegram.send_command("/start web", chat_id=CHAT)
    started = fake_telegram.wait_for(2, timeout=30)[-1]["text"]
    fake_telegram.send_command("/stop", chat_id=CHAT)  # no NAME
    usage = fake_telegram.wait_for(3)[-1]["text"]

    assert stopped.startswith("■ stopped by @alice at ")
    assert stopped.endswith(", TERMINATED") and state == "TERMINATED"
    assert started.startswith("▶ started by @alice at ") and started.endswith(", READY")
    assert orchestrator.run_command("status", "web")["lifecycle_state"] == "READY"
    assert usage == "usage: /stop NAME"
    actions = [
        r.data["action"]
        for r in orchestrator.history.last(50, event_name="operator_action")
    ]
    assert actions == ["stop", "start"]
