"""The way a user turns it on: a TOML file with [telegram] commands = true,
ack_timeout and escalate_to, read by attach_from_settings: the alert carries
buttons, /ps answers, and the e-mail channel is the Telegram channel's fallback
(so it gets no alert of its own). Real orchestrator, fake Bot API, aiosmtpd."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from notifiers import TelegramNotifier
from notifiers.chatops import ChatOps
from notifiers.presets import attach_from_settings
from notifiers.settings import NotifierSettings
from notifiers.testing import FakeTelegramServer, LocalSMTPServer
from pyorchestrate import OneShotProcessAgent, Orchestrator

from .conftest import CHAT, wait_polling
from .test_buttons import buttons

pytestmark = pytest.mark.process


class Loader(OneShotProcessAgent):
    def task(self) -> None:
        raise RuntimeError("batch 7 failed")


def test_settings_turn_chatops_on(
    tmp_path: Path,
    notify_env: pytest.MonkeyPatch,
    fake_telegram: FakeTelegramServer,
    smtp_server: LocalSMTPServer,
    make_orchestrator: Callable[..., Orchestrator],
) -> None:
    config = tmp_path / "notify.toml"
    config.write_text(
        f'state_path = "{tmp_path / "notify.sqlite3"}"\n'
        "[telegram]\n"
        'token = "123456:SECRETtoken_abc"\n'
        f"chat_id = {CHAT}\n"
        f'base_url = "{fake_telegram.base_url}"\n'
        "commands = true\n"
        f"allowed_users = [{CHAT}]\n"
        f'permissions = {{ "{CHAT}" = "operator" }}\n'
        'ack_timeout = "10m"\n'
        'escalate_to = "email"\n'
        "[email]\n"
        'host = "127.0.0.1"\n'
        f"port = {smtp_server.port}\n"
        'mode = "insecure"\n'
        'sender = "alerts@example.com"\n'
        'recipients = ["oncall@example.com"]\n',
        "utf-8",
    )
    orchestrator = make_orchestrator("etl-prod", agent_start_timeout=30.0)
    orchestrator.register_agent(Loader, "loader")
    alerts = attach_from_settings(orchestrator, NotifierSettings.from_toml(config))
    [channel] = [n for n in alerts.dispatcher.notifiers if n.name == "telegram"]
    assert isinstance(channel, TelegramNotifier)
    ops = channel.chatops
    assert isinstance(ops, ChatOps)
    orchestrator.start()
    fake_telegram.wait_for(1, timeout=30)
    wait_polling(fake_telegram, ops)
    fake_telegram.send_command("/ps", chat_id=CHAT)
    table = fake_telegram.wait_for(2)[-1]["text"]
    alert = fake_telegram.message(fake_telegram.sent_ids[0])
    alerts.detach()

    assert alerts.dispatcher.fallbacks == {"telegram": "email"}
    assert ops.orchestrator is orchestrator and ops.ack_timeout == 600
    assert set(buttons(alert)) == {"↻ Restart", "🔕 Mute 1 h", "✔ Ack", "📄 Log"}
    assert "loader" in table
    assert smtp_server.messages == []  # e-mail waits for an unacknowledged alert
