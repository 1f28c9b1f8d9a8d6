"""[telegram] chat-ops settings: from TOML and the environment, validated with
errors that name the field (and never echo the token); escalate_to becomes the
channel's fallback chain; commands = true builds a channel with chat-ops."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifiers import NotifierConfigError, TelegramNotifier
from notifiers.chatops import ChatOps, Permission
from notifiers.settings import NotifierSettings, build_notifiers

P = "PYORCHESTRATE_NOTIFY_"
TOKEN = "123456:SECRETtoken_abc"


def _toml(tmp_path: Path, telegram: str, extra: str = "") -> Path:
    path = tmp_path / "notify.toml"
    path.write_text(
        f'state_path = "none"\n[telegram]\ntoken = "{TOKEN}"\nchat_id = 42\n'
        f"{telegram}\n{extra}",
        "utf-8",
    )
    return path


def test_chatops_from_toml(tmp_path: Path, notify_env: pytest.MonkeyPatch) -> None:
    path = _toml(
        tmp_path,
        "commands = true\nallowed_users = [42, 7]\nallowed_chats = [-1001]\n"
        'ack_timeout = "10m"\nescalate_to = "email"\naction_ttl = "12h"\n'
        '[telegram.permissions]\n"42" = "operator"\n',
        '[email]\nhost = "127.0.0.1"\nsender = "a@example.com"\nrecipients = ["ops@example.com"]\n',
    )
    settings = NotifierSettings.from_toml(path)
    section = settings.telegram
    assert section is not None
    assert section.ack_timeout == 600 and section.action_ttl == 12 * 3600
    assert section.escalate_to == ["email"]
    [telegram, _email] = build_notifiers(settings)
    assert isinstance(telegram, TelegramNotifier)
    ops = telegram.chatops
    assert isinstance(ops, ChatOps)
    assert ops.ack_timeout == 600 and ops.action_ttl == 12 * 3600
    assert ops.access.users == {42: Permission.OPERATOR, 7: Permission.READ_ONLY}
    assert ops.access.chats == {-1001: Permission.READ_ONLY}


def test_chatops_from_the_environment(notify_env: pytest.MonkeyPatch) -> None:
    notify_env.setenv(P + "STATE_PATH", "none")
    notify_env.setenv(P + "TELEGRAM__TOKEN", TOKEN)
    notify_env.setenv(P + "TELEGRAM__CHAT_ID", "42")
    notify_env.setenv(P + "TELEGRAM__COMMANDS", "true")
    notify_env.setenv(P + "TELEGRAM__ALLOWED_USERS", "[42]")
    notify_env.setenv(P + "TELEGRAM__PERMISSIONS", '{"42": "operator"}')
    notify_env.setenv(P + "TELEGRAM__ACK_TIMEOUT", "90")
    notify_env.setenv(P + "TELEGRAM__ESCALATE_TO", '["email", "webhook"]')
    section = NotifierSettings().telegram
    assert section is not None
    assert section.commands and section.allowed_users == [42]
    assert section.ack_timeout == 90 and section.escalate_to == ["email", "webhook"]


@pytest.mark.parametrize(
    ("telegram", "field", "words"),
    [
        ('ack_timeout = "soon"', "telegram.ack_timeout", "duration"),
        ("action_ttl = 0", "telegram.action_ttl", "greater than 0"),
        ('allowed_users = ["alice"]', "telegram.allowed_users", "integer"),
        ('permissions = {"42" = "admin"}', "telegram.permissions", "read_only"),
        ("escalate_to = []", "telegram.escalate_to", "at least one"),
        ('commands = "maybe"', "telegram.commands", "bool"),
    ],
)
def test_a_bad_value_names_the_field(
    tmp_path: Path,
    notify_env: pytest.MonkeyPatch,
    telegram: str,
    field: str,
    words: str,
) -> None:
    with pytest.raises(NotifierConfigError) as caught:
        NotifierSettings.from_toml(_toml(tmp_path, telegram))
    text = str(caught.value)
    assert field in text and words in text, text
    assert "SECRETtoken" not in text


@pytest.mark.parametrize(
    ("telegram", "words"),
    [
        ("commands = true", "commands: needs allowed_users or allowed_chats"),
        (
            'allowed_users = [1]\npermissions = {"2" = "operator"}',
            "permissions: 1 id(s)",
        ),
        ('ack_timeout = "10m"\nescalate_to = "email"', "ack_timeout: needs commands"),
        (
            'commands = true\nallowed_users = [1]\nack_timeout = "10m"',
            "ack_timeout: needs escalate_to",
        ),
    ],
)
def test_settings_that_do_not_fit_together_are_refused_when_built(
    tmp_path: Path, notify_env: pytest.MonkeyPatch, telegram: str, words: str
) -> None:
    settings = NotifierSettings.from_toml(_toml(tmp_path, telegram))
    with pytest.raises(NotifierConfigError) as caught:
        build_notifiers(settings)
    assert words in str(caught.value) and "telegram" in str(caught.value)


def test_escalate_to_becomes_the_fallback_chain(
    tmp_path: Path, notify_env: pytest.MonkeyPatch
) -> None:
    from notifiers.presets.from_settings import _escalation_chain

    notifiers = [TelegramNotifier(TOKEN, 42), TelegramNotifier(TOKEN, 43, name="email")]
    notifiers.append(TelegramNotifier(TOKEN, 44, name="webhook"))
    links = _escalation_chain(
        "telegram", "telegram", ["email", "webhook"], {}, notifiers
    )
    assert links == {"telegram": "email", "email": "webhook"}
    with pytest.raises(NotifierConfigError, match=r"telegram\.escalate_to"):
        _escalation_chain("telegram", "telegram", ["pager"], {}, notifiers)
    with pytest.raises(NotifierConfigError, match="fallback is 'webhook'"):
        _escalation_chain(
            "telegram", "telegram", ["email"], {"telegram": "webhook"}, notifiers
        )
