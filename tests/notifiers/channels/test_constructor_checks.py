"""A channel built in code checks its arguments as the settings check its section.

Each bad value is given twice, to the constructor and to the settings section of the
same channel; both must raise NotifierConfigError with the same reason for the same
field (``chat_id`` there, ``telegram.chat_id`` here), never echoing a secret.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from notifiers import NotifierConfigError
from notifiers.settings import NotifierSettings
from notifiers.testing import FlakyNotifier, RecordingNotifier

TOKEN = "123456789:AAHsecretTokenForConstructorChecks_01"
URL = "json://127.0.0.1:9/constructor-checks-s3cr3t-path"


@pytest.fixture(autouse=True)
def _isolated(notify_env: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No PYORCHESTRATE_NOTIFY_* from the caller's shell."""
    notify_env.chdir(tmp_path)
    yield


def refusal(build: Callable[[], object]) -> NotifierConfigError:
    """The error ``build()`` raises (it must raise our error, nothing else)."""
    with pytest.raises(NotifierConfigError) as info:
        build()
    return info.value


def settings_refusal(section: str, values: dict[str, Any]) -> list[tuple[str, str]]:
    """The settings' errors for ``[section]`` with ``values``, paths made relative."""
    error = refusal(lambda: NotifierSettings(state_path="none", **{section: values}))
    prefix = section + "."
    assert all(loc.startswith(prefix) for loc, _ in error.errors), error.errors
    return [(loc.removeprefix(prefix), msg) for loc, msg in error.errors]


# ---------------------------------------------------------------- Telegram

TELEGRAM_BAD: list[tuple[dict[str, Any], str]] = [
    ({"chat_id": "not a chat"}, "chat_id"),
    ({"chat_id": None}, "chat_id"),
    ({"chat_id": True}, "chat_id"),
    ({"chat_id": "@ab"}, "chat_id"),
    ({"base_url": "not a url"}, "base_url"),
    ({"base_url": "http://"}, "base_url"),
    ({"base_url": 8080}, "base_url"),
    ({"token": 123}, "token"),
    ({"token": None}, "token"),
    ({"token": "no-colon-SECRETvalue"}, "token"),
    ({"token": ""}, "token"),
    ({"read_timeout": 0}, "read_timeout"),
    ({"read_timeout": True}, "read_timeout"),
    ({"connect_timeout": "soon"}, "connect_timeout"),
    ({"message_thread_id": "topic"}, "message_thread_id"),
    ({"message_thread_id": True}, "message_thread_id"),
    ({"disable_notification": "maybe"}, "disable_notification"),
    ({"name": ""}, "name"),
    ({"name": 7}, "name"),
]


@pytest.mark.parametrize(
    ("bad", "field"), TELEGRAM_BAD, ids=[f"{f}={b[f]!r}" for b, f in TELEGRAM_BAD]
)
def test_telegram_refuses_what_the_settings_refuse(
    bad: dict[str, Any], field: str
) -> None:
    from notifiers.telegram import TelegramNotifier

    given = {"token": TOKEN, "chat_id": 42, **bad}
    token, chat_id = given.pop("token"), given.pop("chat_id")

    error = refusal(lambda: TelegramNotifier(token, chat_id, **given))
    expected = settings_refusal(
        "telegram", {"token": token, "chat_id": chat_id, **given}
    )

    assert error.errors == expected
    assert [loc for loc, _ in error.errors] == [field]
    assert error.title == "invalid Telegram settings"
    for secret in (TOKEN, "SECRETvalue"):
        assert secret not in str(error)


def test_an_int_token_is_a_config_error_not_an_attribute_error() -> None:
    from notifiers.telegram import TelegramNotifier

    error = refusal(lambda: TelegramNotifier(123, chat_id=1))  # type: ignore[arg-type]
    assert error.errors == [("token", "Input should be a valid string")]


def test_telegram_takes_what_the_settings_take() -> None:
    from pydantic import SecretStr

    from notifiers.telegram import TelegramNotifier

    class Vault:  # any SecretLike
        def get_secret_value(self) -> str:
            return TOKEN

    for token in (TOKEN, f" {TOKEN}\n", SecretStr(TOKEN), Vault()):
        notifier = TelegramNotifier(
            token, "-1001234", base_url="http://127.0.0.1:9/bot"
        )
        assert notifier.chat_id == -1001234  # as the settings read it
    assert TelegramNotifier(TOKEN, "@alerts").chat_id == "@alerts"
    timeouts = TelegramNotifier(TOKEN, 1, read_timeout=None, connect_timeout="2.5")  # type: ignore[arg-type]
    assert (timeouts.read_timeout, timeouts.connect_timeout) == (10.0, 2.5)


# ---------------------------------------------------------------- apprise

APPRISE_BAD: list[tuple[dict[str, Any], str]] = [
    ({"urls": []}, "urls"),
    ({"urls": 5}, "urls"),
    ({"urls": [URL, 5]}, "urls[1]"),
    ({"urls": None}, "urls"),
    ({"tags": 5}, "tags"),
    ({"tags": ["ops", 3]}, "tags[1]"),
    ({"timeout": 0}, "timeout"),
    ({"timeout": -1.5}, "timeout"),
    ({"timeout": True}, "timeout"),
    ({"timeout": "soon"}, "timeout"),
    ({"name": ""}, "name"),
]


@pytest.mark.parametrize(
    ("bad", "field"),
    APPRISE_BAD,
    ids=[f"{f}={b[f.split('[')[0]]!r}" for b, f in APPRISE_BAD],
)
def test_apprise_refuses_what_the_settings_refuse(
    bad: dict[str, Any], field: str
) -> None:
    from notifiers.apprise import AppriseNotifier

    given = {"urls": [URL], **bad}
    urls = given.pop("urls")

    error = refusal(lambda: AppriseNotifier(urls, **given))
    expected = settings_refusal("apprise", {"urls": urls, **given})

    assert error.errors == expected
    assert [loc for loc, _ in error.errors] == [field]
    assert "s3cr3t" not in str(error)


@pytest.mark.parametrize("base", ["not a url", "ftp://127.0.0.1/services", 5])
def test_apprise_slack_webhook_base_must_be_an_http_url(base: Any) -> None:
    from notifiers.apprise import AppriseNotifier

    slack = "slack://T0AAAAAAA/B0BBBBBBB/XcccccccccccccccccccccC1"
    error = refusal(lambda: AppriseNotifier(slack, slack_webhook_base=base))
    assert [loc for loc, _ in error.errors] == ["slack_webhook_base"]


# ---------------------------------------------------------------- every channel

NAMES_BAD: list[object] = ["", 7, ["ops"]]


@pytest.mark.parametrize("name", NAMES_BAD, ids=repr)
@pytest.mark.parametrize("channel", [RecordingNotifier, FlakyNotifier])
def test_every_channel_checks_its_name_as_the_settings_do(
    channel: Callable[..., object], name: object
) -> None:
    error = refusal(lambda: channel(name=name))
    expected = settings_refusal("apprise", {"urls": [URL], "name": name})
    assert error.errors == expected == [("name", expected[0][1])]


def test_a_channel_without_a_name_takes_its_kind() -> None:
    assert RecordingNotifier().name == "recording"
    assert RecordingNotifier(name="ops").name == "ops"
