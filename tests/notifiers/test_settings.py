"""NotifierSettings: environment, TOML, precedence, secrets, errors, build_notifiers."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from notifiers import (
    NotifierConfigError,
    RetryPolicy,
    Severity,
    redact,
)
from notifiers.settings import (
    CONFIG_FILE_ENV,
    EmailSettings,
    NotifierSettings,
    WebhookSettings,
    build_notifiers,
    load_settings,
)

P = "PYORCHESTRATE_NOTIFY_"
TOKEN = "123456:SECRETtokenVALUE_abc"
SECRET = "SECRETpassword-xyz"


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


needs_telegram = pytest.mark.skipif(
    not _has("notifiers.telegram"), reason="notifiers.telegram is not there yet"
)
needs_apprise = pytest.mark.skipif(
    not _has("notifiers.apprise"), reason="notifiers.apprise is not there yet"
)


@pytest.fixture(autouse=True)
def _isolated(
    notify_env: pytest.MonkeyPatch, tmp_path: Path, no_dispatcher_leaks: None
) -> Iterator[None]:
    """No PYORCHESTRATE_NOTIFY_* from the caller's shell; a clean working directory."""
    notify_env.chdir(tmp_path)
    yield


def write_toml(tmp_path: Path, text: str, name: str = "notify.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


TELEGRAM_TOML = f"""
preset = "lifecycle"
agents = ["web-*", "db"]
min_severity = "warning"
queue_size = 50

[retry]
max_attempts = 2

[telegram]
token = "{TOKEN}"
chat_id = -1001234
"""


def messages(exc: BaseException) -> str:
    """The error's text and that of every exception it chains from."""
    parts = []
    current: BaseException | None = exc
    while current is not None:
        parts.append(str(current))
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


# ---------------------------------------------------------------- sources


def test_defaults_without_any_source() -> None:
    settings = NotifierSettings()
    assert settings.configured() == []
    assert settings.preset == "errors_only"
    assert settings.agents == ["*"]
    assert settings.min_severity is None
    assert settings.retry == RetryPolicy()
    assert settings.queue_size == 1000


def test_environment_with_nested_sections(notify_env: pytest.MonkeyPatch) -> None:
    notify_env.setenv(P + "TELEGRAM__TOKEN", TOKEN)
    notify_env.setenv(P + "TELEGRAM__CHAT_ID", "-1001234")
    notify_env.setenv(P + "TELEGRAM__READ_TIMEOUT", "2.5")
    notify_env.setenv(P + "EMAIL__HOST", "smtp.example.com")
    notify_env.setenv(P + "EMAIL__FROM", "alerts@example.com")
    notify_env.setenv(P + "EMAIL__RECIPIENTS", '["ops@example.com", "dev@example.com"]')
    notify_env.setenv(P + "RETRY__MAX_ATTEMPTS", "3")
    notify_env.setenv(P + "AGENTS", "web-*, db")
    notify_env.setenv(P + "MIN_SEVERITY", "Error")
    notify_env.setenv(P + "PRESET", "lifecycle")
    settings = load_settings()
    assert settings.telegram is not None
    assert settings.telegram.token.get_secret_value() == TOKEN
    assert settings.telegram.chat_id == -1001234
    assert settings.telegram.read_timeout == 2.5
    assert settings.email is not None
    assert settings.email.sender == "alerts@example.com"
    assert settings.email.recipients == ["ops@example.com", "dev@example.com"]
    assert settings.email.mode == "starttls"
    assert settings.retry.max_attempts == 3
    assert settings.agents == ["web-*", "db"]
    assert settings.min_severity is Severity.ERROR
    assert settings.preset == "lifecycle"
    assert settings.configured() == ["telegram", "email"]


def test_agents_from_the_environment_as_a_json_list(
    notify_env: pytest.MonkeyPatch,
) -> None:
    notify_env.setenv(P + "AGENTS", '["a*", "b"]')
    assert load_settings().agents == ["a*", "b"]


def test_channel_username_is_a_valid_chat_id() -> None:
    settings = load_settings(telegram={"token": TOKEN, "chat_id": "@alerts_channel"})
    assert settings.telegram is not None
    assert settings.telegram.chat_id == "@alerts_channel"


def test_toml_file_from_toml(tmp_path: Path) -> None:
    settings = NotifierSettings.from_toml(write_toml(tmp_path, TELEGRAM_TOML))
    assert settings.telegram is not None
    assert settings.telegram.token.get_secret_value() == TOKEN
    assert settings.telegram.chat_id == -1001234
    assert settings.preset == "lifecycle"
    assert settings.agents == ["web-*", "db"]
    assert settings.min_severity is Severity.WARNING
    assert settings.queue_size == 50
    assert settings.retry.max_attempts == 2


def test_toml_file_named_by_the_environment(
    tmp_path: Path, notify_env: pytest.MonkeyPatch
) -> None:
    notify_env.setenv(CONFIG_FILE_ENV, str(write_toml(tmp_path, TELEGRAM_TOML)))
    settings = NotifierSettings()
    assert settings.telegram is not None
    assert settings.telegram.chat_id == -1001234
    assert load_settings().preset == "lifecycle"


def test_load_settings_with_a_config_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, TELEGRAM_TOML)
    settings = load_settings(path, preset="errors_only")
    assert settings.preset == "errors_only"  # the override wins over the file
    assert settings.telegram is not None


def test_toml_is_not_read_unless_named(tmp_path: Path) -> None:
    write_toml(tmp_path, TELEGRAM_TOML)  # in the working directory, but not named
    assert NotifierSettings().telegram is None


def test_precedence_init_over_env_over_dotenv_over_toml(
    tmp_path: Path, notify_env: pytest.MonkeyPatch
) -> None:
    path = write_toml(
        tmp_path,
        f"""
        preset = "lifecycle"
        queue_size = 10
        agents = "from-toml"
        [telegram]
        token = "{TOKEN}"
        chat_id = 1
        [retry]
        max_attempts = 2
        """,
    )
    dotenv = tmp_path / "notify.env"
    dotenv.write_text(f"{P}QUEUE_SIZE=20\n{P}AGENTS=from-dotenv\n", encoding="utf-8")
    notify_env.setenv(P + "TELEGRAM__TOKEN", "999:FROMenv")
    notify_env.setenv(P + "AGENTS", "from-env")
    settings = NotifierSettings.from_toml(
        path, _env_file=dotenv, retry={"max_attempts": 7}
    )
    assert settings.telegram is not None
    assert settings.telegram.token.get_secret_value() == "999:FROMenv"  # env > TOML
    assert settings.telegram.chat_id == 1  # the rest of the section from TOML
    assert settings.agents == ["from-env"]  # env > dotenv
    assert settings.queue_size == 20  # dotenv > TOML
    assert settings.retry.max_attempts == 7  # init > TOML
    assert settings.preset == "lifecycle"  # TOML only

    notify_env.setenv(P + "PRESET", "errors_only")
    assert NotifierSettings.from_toml(path, preset="lifecycle").preset == "lifecycle"


# ---------------------------------------------------------------- secrets


def test_secrets_are_masked_in_repr_str_and_dump() -> None:
    settings = load_settings(
        telegram={"token": TOKEN, "chat_id": 5},
        email={
            "host": "smtp.example.com",
            "username": "alerts",
            "password": SECRET,
            "sender": "alerts@example.com",
            "recipients": ["ops@example.com"],
        },
        slack={"webhook_url": "https://hooks.slack.com/services/T0/B0/SECRETslack"},
        webhook={"url": "https://hooks.example.com/SECREThook"},
        apprise={"urls": ["discord://SECRETdiscord/x"]},
    )
    shown = "\n".join(
        [
            repr(settings),
            str(settings),
            repr(settings.model_dump()),
            settings.model_dump_json(),
            repr(settings.email),
        ]
    )
    assert "SECRET" not in shown
    assert "**********" in shown
    assert settings.email is not None and settings.email.password is not None
    assert settings.email.password.get_secret_value() == SECRET


# ---------------------------------------------------------------- errors


BAD_VALUES = [
    # (environment variable, value, field path, reason fragment)
    ("TELEGRAM__CHAT_ID", "not-an-int", "telegram.chat_id", "integer chat id"),
    ("TELEGRAM__TOKEN", "SECRET-not-a-token", "telegram.token", "bot token"),
    ("TELEGRAM__READ_TIMEOUT", "-3", "telegram.read_timeout", "greater than 0"),
    ("TELEGRAM__BASE_URL", "ftp://SECRET.example", "telegram.base_url", "http"),
    ("EMAIL__PORT", "70000", "email.port", "65535"),
    ("EMAIL__MODE", "SECRETtls", "email.mode", "insecure"),
    ("EMAIL__RECIPIENTS", "[]", "email.recipients", "at least 1"),
    ("EMAIL__RECIPIENTS", "SECRET@x.org", "email.recipients", "JSON"),
    ("EMAIL__RECIPIENTS", '["SECRET-no-at"]', "email.recipients", "e-mail"),
    ("EMAIL__SENDER", "SECRET-no-at", "email.sender", "e-mail address"),
    ("SLACK__WEBHOOK_URL", "https://SECRET.example/x", "slack.webhook_url", "Slack"),
    ("WEBHOOK__URL", "ftp://SECRET.example/x", "webhook.url", "http(s)://"),
    ("APPRISE__URLS", "[]", "apprise.urls", "at least 1"),
    ("RETRY__MAX_ATTEMPTS", "SECRET", "retry.max_attempts", "integer"),
    ("RETRY__BUDGET", "0", "retry.budget", "greater than 0"),
    ("QUEUE_SIZE", "0", "queue_size", "greater than or equal to 1"),
    ("MIN_SEVERITY", "SECRETloud", "min_severity", "debug, info"),
    ("PRESET", "SECRETpreset", "preset", "errors_only, lifecycle"),
    ("AGENTS", ",", "agents", "at least one"),
]
_COMPLETE = {
    "TELEGRAM": {"TOKEN": TOKEN, "CHAT_ID": "1"},
    "EMAIL": {
        "HOST": "smtp.example.com",
        "SENDER": "alerts@example.com",
        "RECIPIENTS": '["ops@example.com"]',
    },
    "SLACK": {"WEBHOOK_URL": "https://hooks.slack.com/services/A/B/C"},
    "WEBHOOK": {"URL": "https://hooks.example.com/x"},
    "APPRISE": {"URLS": '["json://localhost/x"]'},
}


@pytest.mark.parametrize(("var", "value", "path", "reason"), BAD_VALUES)
def test_bad_value_names_the_field_and_hides_the_value(
    notify_env: pytest.MonkeyPatch, var: str, value: str, path: str, reason: str
) -> None:
    section = var.split("__")[0]
    for key, good in _COMPLETE.get(section, {}).items():
        notify_env.setenv(f"{P}{section}__{key}", good)
    notify_env.setenv(P + var, value)
    with pytest.raises(NotifierConfigError) as caught:
        load_settings()
    exc = caught.value
    assert isinstance(exc, ValueError)
    assert [loc for loc, _ in exc.errors] == [path], exc.errors
    assert f"  {path}: " in str(exc)
    assert reason in str(exc)
    assert str(exc).startswith("invalid notifier settings")
    if len(value) > 2:
        assert value not in messages(exc)  # nor in what it chains from
        assert "SECRET" not in messages(exc)


def test_bad_values_in_toml_hide_the_secret(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        f"""
        [telegram]
        token = 12345
        chat_id = "{SECRET}"
        [email]
        host = "smtp.example.com"
        sender = "alerts@example.com"
        recipients = ["ops@example.com"]
        password = "{SECRET}"
        """,
    )
    with pytest.raises(NotifierConfigError) as caught:
        NotifierSettings.from_toml(path)
    locs = [loc for loc, _ in caught.value.errors]
    assert locs == ["telegram.token", "telegram.chat_id", "email"]
    assert "a password needs a username" in str(caught.value)
    assert SECRET not in messages(caught.value)
    assert "12345" not in messages(caught.value)


def test_missing_required_field_is_named(notify_env: pytest.MonkeyPatch) -> None:
    notify_env.setenv(P + "TELEGRAM__TOKEN", TOKEN)
    with pytest.raises(NotifierConfigError) as caught:
        load_settings()
    assert caught.value.errors == [("telegram.chat_id", "required, but not set")]
    assert TOKEN not in messages(caught.value)


def test_every_problem_is_listed(notify_env: pytest.MonkeyPatch) -> None:
    notify_env.setenv(P + "EMAIL__HOST", "smtp.example.com")
    notify_env.setenv(P + "EMAIL__PORT", "0")
    notify_env.setenv(P + "QUEUE_SIZE", "-1")
    with pytest.raises(NotifierConfigError) as caught:
        load_settings()
    locs = {loc for loc, _ in caught.value.errors}
    assert locs == {"email.port", "email.sender", "email.recipients", "queue_size"}
    assert len(str(caught.value).splitlines()) == 1 + len(locs)


def test_unknown_keys_are_named(tmp_path: Path, notify_env: pytest.MonkeyPatch) -> None:
    path = write_toml(
        tmp_path,
        f"""
        colour = "red"
        [telegram]
        token = "{TOKEN}"
        chat_id = 1
        chatid = 2
        [retry]
        attempts = 3
        """,
    )
    with pytest.raises(NotifierConfigError) as caught:
        NotifierSettings.from_toml(path)
    assert sorted(caught.value.errors) == [
        ("colour", "unknown setting"),
        ("retry.attempts", "unknown setting"),
        ("telegram.chatid", "unknown setting"),
    ]


def test_unknown_environment_variable_is_named(notify_env: pytest.MonkeyPatch) -> None:
    notify_env.setenv(P + "TELEGRAMM__TOKEN", TOKEN)  # a typo
    with pytest.raises(NotifierConfigError) as caught:
        load_settings()
    assert [loc for loc, _ in caught.value.errors] == [P + "TELEGRAMM__TOKEN"]
    assert TOKEN not in messages(caught.value)


def test_missing_config_file(tmp_path: Path, notify_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(NotifierConfigError, match="config_file: no such file"):
        NotifierSettings.from_toml(tmp_path / "absent.toml")
    notify_env.setenv(CONFIG_FILE_ENV, str(tmp_path / "absent.toml"))
    with pytest.raises(NotifierConfigError, match="config_file: no such file"):
        load_settings()


def test_config_file_that_is_not_toml(tmp_path: Path) -> None:
    path = write_toml(tmp_path, f'[telegram\ntoken = "{TOKEN}"\n')
    with pytest.raises(NotifierConfigError) as caught:
        NotifierSettings.from_toml(path)
    assert caught.value.errors[0][0] == "config_file"
    assert "not valid TOML" in str(caught.value)
    assert TOKEN not in messages(caught.value)


def test_assignment_is_validated() -> None:
    settings = NotifierSettings()
    with pytest.raises(ValueError, match="queue_size"):
        settings.queue_size = 0


# ---------------------------------------------------------------- channel URLs


@pytest.mark.parametrize(
    ("mode", "port", "expected"),
    [
        ("insecure", 2525, "mailto://smtp.example.com:2525/?"),
        ("ssl", None, "mailtos://smtp.example.com/?"),
        ("starttls", 587, "mailtos://smtp.example.com:587/?"),
    ],
)
def test_email_url(mode: str, port: int | None, expected: str) -> None:
    email = EmailSettings.model_validate(
        {
            "host": "smtp.example.com",
            "port": port,
            "from": "alerts@example.com",
            "recipients": ["ops@example.com", "dev@example.com"],
            "mode": mode,
        }
    )
    url = email.apprise_url().get_secret_value()
    assert url.startswith(expected)
    assert f"mode={mode}" in url
    assert "from=alerts%40example.com" in url
    assert "to=ops%40example.com%2Cdev%40example.com" in url
    assert "**" in str(email.apprise_url())  # a SecretStr


def test_email_url_quotes_credentials() -> None:
    email = EmailSettings(
        host="smtp.example.com",
        username="al@rts",
        password="p@ss:w/rd",
        sender="alerts@example.com",
        recipients=["ops@example.com"],
    )
    url = email.apprise_url().get_secret_value()
    assert url.startswith("mailtos://al%40rts:p%40ss%3Aw%2Frd@smtp.example.com/?")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://hooks.example.com/a?b=1", "jsons://hooks.example.com/a?b=1"),
        ("http://127.0.0.1:8080/x", "json://127.0.0.1:8080/x"),
        ("form://127.0.0.1/x", "form://127.0.0.1/x"),
    ],
)
def test_webhook_url(given: str, expected: str) -> None:
    webhook = WebhookSettings(url=given)
    assert webhook.apprise_url().get_secret_value() == expected


# ---------------------------------------------------------------- build_notifiers


def test_build_without_channels_says_what_to_set() -> None:
    with pytest.raises(NotifierConfigError) as caught:
        build_notifiers(NotifierSettings())
    text = str(caught.value)
    assert "no notification channel is configured" in text
    for section in ("telegram", "email", "slack", "webhook", "apprise"):
        assert section in text
    assert P + "TELEGRAM__TOKEN" in text


@needs_telegram
def test_build_telegram() -> None:
    from notifiers.telegram import TelegramNotifier

    settings = load_settings(
        telegram={
            "token": TOKEN,
            "chat_id": 42,
            "base_url": "http://127.0.0.1:9/bot",
            "read_timeout": 1.5,
        }
    )
    (notifier,) = build_notifiers(settings)
    assert isinstance(notifier, TelegramNotifier)
    assert notifier.name == "telegram"
    assert TOKEN not in repr(notifier)


@needs_apprise
def test_build_apprise_channels() -> None:
    from notifiers.apprise import AppriseNotifier

    settings = load_settings(
        email={
            "host": "127.0.0.1",
            "port": 2525,
            "sender": "alerts@example.com",
            "recipients": ["ops@example.com"],
            "mode": "insecure",
        },
        slack={"webhook_url": "https://hooks.slack.com/services/T0/B0/SECRETslack"},
        webhook={"url": "http://127.0.0.1:9/po-settings-hook-4f1c", "name": "ops-hook"},
        apprise={
            "urls": ["ops=json://127.0.0.1:9/po-settings-other-9b2e"],
            "tags": ["ops"],
        },
    )
    built = build_notifiers(settings)
    assert [n.name for n in built] == ["email", "slack", "ops-hook", "apprise"]
    assert all(isinstance(n, AppriseNotifier) for n in built)
    assert all("SECRET" not in repr(n) for n in built)


def test_an_import_error_inside_a_channel_is_not_disguised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import notifiers.channels.telegram

    def broken(*args: object, **kwargs: object) -> None:
        raise ImportError("No module named 'yaml'", name="yaml")  # a bug, no extra

    monkeypatch.setattr(notifiers.channels.telegram, "TelegramNotifier", broken)
    settings = load_settings(telegram={"token": TOKEN, "chat_id": 1})
    with pytest.raises(ImportError, match="yaml"):
        build_notifiers(settings)


@needs_telegram
def test_missing_extra_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "notifiers.telegram", raising=False)
    monkeypatch.setitem(sys.modules, "telegram", None)  # python-telegram-bot absent
    settings = load_settings(telegram={"token": TOKEN, "chat_id": 1})
    with pytest.raises(NotifierConfigError) as caught:
        build_notifiers(settings)
    assert "pip install 'pyorchestrate[telegram]'" in str(caught.value)


def test_build_passes_each_section_to_its_channel(fake_channels: type[Any]) -> None:
    settings = load_settings(
        telegram={
            "token": TOKEN,
            "chat_id": "42",
            "base_url": "http://127.0.0.1:9/bot",
            "read_timeout": 1.5,
        },
        email={
            "host": "127.0.0.1",
            "port": 2525,
            "username": "alerts",
            "password": SECRET,
            "sender": "alerts@example.com",
            "recipients": ["ops@example.com"],
            "mode": "insecure",
            "timeout": 3,
        },
        slack={"webhook_url": "https://hooks.slack.com/services/T0/B0/SECRETslack"},
        webhook={"url": "https://hooks.example.com/SECREThook", "name": "ops-hook"},
        apprise={
            "urls": ["ops=json://127.0.0.1:9/po-settings-other-9b2e"],
            "tags": ["ops"],
        },
    )
    built = build_notifiers(settings)
    assert all(isinstance(n, fake_channels) for n in built)
    telegram, email, slack, webhook, other = (cast(Any, n) for n in built)
    assert [n.name for n in built] == [
        "telegram",
        "email",
        "slack",
        "ops-hook",
        "apprise",
    ]
    assert telegram.args == (TOKEN, 42)
    assert telegram.kwargs == {
        "base_url": "http://127.0.0.1:9/bot",
        "read_timeout": 1.5,
        "disable_notification": False,
        "message_thread_id": None,
    }
    (email_url,) = email.args[0]  # type: ignore[misc]
    assert email_url.startswith(f"mailto://alerts:{SECRET}@127.0.0.1:2525/?")
    assert email.kwargs == {"timeout": 3.0}
    assert slack.args == (["https://hooks.slack.com/services/T0/B0/SECRETslack"],)
    assert webhook.args == (["jsons://hooks.example.com/SECREThook"],)
    assert other.args == (["ops=json://127.0.0.1:9/po-settings-other-9b2e"],)
    assert other.kwargs == {"tags": ["ops"]}
    # The secrets are registered for redaction before any channel runs.
    assert redact(f"token {TOKEN}, password {SECRET}") == "token ***, password ***"


def test_rate_limits_in_any_section_reach_the_channel(
    notify_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from notifiers import Notification, RateLimit

    notify_env.setenv(P + "TELEGRAM__RATE_LIMITS", '["20/min"]')  # the README's row
    path = write_toml(
        tmp_path,
        f"""
[telegram]
token = "{TOKEN}"
chat_id = 42

[webhook]
url = "json://127.0.0.1:9/po-rate-limits-hook"
rate_limits = ["2/s", "60/min burst 10"]

[slack]
webhook_url = "https://hooks.slack.com/services/T0/B0/C0"
rate_limits = []
""",
    )
    settings = NotifierSettings.from_toml(path, state_path="none")
    assert settings.telegram is not None and settings.webhook is not None
    assert settings.telegram.rate_limits == ["20/min"]
    assert settings.webhook.rate_limits == ["2/s", "60/min burst 10"]

    telegram, slack, webhook = build_notifiers(settings)
    note = Notification("t", "b")
    chat = [limit for _, limit in telegram.rate_limits(note)][:-1]  # then the bot's
    assert chat == [RateLimit.per_minute(20)]
    assert slack.rate_limits(note) == []  # [] turns Slack's default 1/s off
    assert [limit for _, limit in webhook.rate_limits(note)] == [
        RateLimit.per_second(2),
        RateLimit.per_minute(60, burst=10),
    ]


@pytest.mark.parametrize(
    "section", ["telegram", "email", "slack", "webhook", "apprise"]
)
def test_a_bad_rate_limit_names_its_section(section: str) -> None:
    base: dict[str, dict[str, Any]] = {
        "telegram": {"token": TOKEN, "chat_id": 42},
        "email": {
            "host": "127.0.0.1",
            "sender": "a@example.com",
            "recipients": ["o@example.com"],
        },
        "slack": {"webhook_url": "https://hooks.slack.com/services/T0/B0/C0"},
        "webhook": {"url": "json://127.0.0.1:9/hook"},
        "apprise": {"urls": ["json://127.0.0.1:9/hook"]},
    }
    with pytest.raises(NotifierConfigError) as info:
        NotifierSettings(
            **{section: {**base[section], "rate_limits": ["1/s", "often"]}}
        )
    ((loc, reason),) = info.value.errors
    assert loc == f"{section}.rate_limits"
    assert reason.startswith("entry 1: 'often': use 'N/s', 'N/min' or 'N/hour'")


@pytest.mark.usefixtures("fake_channels")
def test_build_rejects_two_channels_with_one_name() -> None:
    settings = load_settings(
        slack={"webhook_url": "https://hooks.slack.com/services/T0/B0/C0"},
        webhook={"url": "http://127.0.0.1:9/po-settings-hook-4f1c", "name": "slack"},
    )
    with pytest.raises(NotifierConfigError, match=r"webhook\.name: .*'slack'"):
        build_notifiers(settings)


def test_a_channel_rejecting_its_settings_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Rejecting:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise NotifierConfigError("bad apprise URL", [("urls[0]", "unsupported")])

    import notifiers.channels.apprise

    monkeypatch.setattr(notifiers.channels.apprise, "AppriseNotifier", Rejecting)
    settings = load_settings(apprise={"urls": ["nonsense://SECRET"]})
    with pytest.raises(NotifierConfigError) as caught:
        build_notifiers(settings)
    assert caught.value.errors == [("apprise", "urls[0]: unsupported")]
