"""``pyorchestrate notify``: added through the ``pyorchestrate.cli`` entry-point group,
tried against local fakes only (a loopback webhook sink)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from notifiers.testing import FakeTelegramServer, WebhookSink
from pyorchestrate.cli import _app

from .conftest import Invoke

SECRET_PATH = "/po-notify-cli-9d2e"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as sink:
        yield sink


@pytest.fixture
def webhook_env(sink: WebhookSink, monkeypatch: pytest.MonkeyPatch) -> WebhookSink:
    for name in list(__import__("os").environ):
        if name.startswith("PYORCHESTRATE_NOTIFY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PYORCHESTRATE_NOTIFY_WEBHOOK__URL", sink.json_url(SECRET_PATH))
    monkeypatch.setenv("PYORCHESTRATE_NOTIFY_RETRY__MAX_ATTEMPTS", "2")
    monkeypatch.setenv("PYORCHESTRATE_NOTIFY_RETRY__JITTER", "0")
    monkeypatch.setenv("PYORCHESTRATE_NOTIFY_RETRY__INITIAL", "0.01")
    return sink


def test_the_notify_group_comes_from_the_entry_point_group(cli: Invoke) -> None:
    assert "notify" in _app.plugin_entries()
    assert isinstance(_app.load_plugin(_app.plugin_entries()["notify"]), typer.Typer)
    listed = cli("--help")
    assert "notify" in listed.stdout
    assert "Usage: pyorchestrate notify" in cli("notify", "--help").stdout


def test_a_broken_plugin_is_skipped_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, cli: Invoke
) -> None:
    class Broken:
        name = "broken"
        value = "nowhere.module:app"

        def load(self) -> object:
            raise ImportError("No module named 'nowhere'")

    class NotAnApp(Broken):
        name = "odd"
        value = "json:dumps"

        def load(self) -> object:
            return json.dumps

    monkeypatch.setattr(
        "importlib.metadata.entry_points", lambda group: [Broken(), NotAnApp()]
    )
    broken = cli("broken", "x")
    assert broken.exit_code == 2
    assert "'broken'" in broken.stderr and "ImportError" in broken.stderr
    odd = cli("odd")
    assert odd.exit_code == 2
    assert "json:dumps is not a typer.Typer" in odd.stderr
    # The core commands never load a plugin: a broken one does not touch them.
    assert cli("--version").exit_code == 0
    version = cli("ps", "--version")
    assert version.exit_code == 0 and version.stderr == ""


def test_notify_test_delivers_on_each_channel(
    webhook_env: WebhookSink, cli: Invoke
) -> None:
    result = cli("notify", "test")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "webhook" in result.stdout and "delivered" in result.stdout
    (request,) = webhook_env.wait_for(1)
    assert "pyorchestrate test message" in json.dumps(request.json)
    assert SECRET_PATH not in result.stdout + result.stderr


def test_notify_test_reports_a_failing_channel_without_its_secret(
    webhook_env: WebhookSink, cli: Invoke
) -> None:
    webhook_env.script(500, 500)
    result = cli("notify", "test", "webhook", "--json")
    assert result.exit_code == 1
    (row,) = json.loads(result.stdout)
    assert row["channel"] == "webhook"
    assert row["ok"] is False
    assert row["attempts"] == 2
    assert SECRET_PATH not in result.stdout + result.stderr


def test_notify_test_names_an_unknown_channel(
    webhook_env: WebhookSink, cli: Invoke
) -> None:
    result = cli("notify", "test", "pager")
    assert result.exit_code == 2
    assert "no channel named 'pager'" in result.stderr
    assert "webhook" in result.stderr


def test_notify_test_without_settings_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, cli: Invoke
) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("PYORCHESTRATE_NOTIFY_"):
            monkeypatch.delenv(name)
    result = cli("notify", "test")
    assert result.exit_code == 2
    assert "no notification channel is configured" in result.stderr
    assert "PYORCHESTRATE_NOTIFY_TELEGRAM__TOKEN" in result.stderr


TELEGRAM_TOKEN = "333333333:AAHwrongTokenForNotifyTest_abcdefgh"


def test_notify_test_exits_1_when_one_channel_fails_and_still_tries_the_others(
    webhook_env: WebhookSink, monkeypatch: pytest.MonkeyPatch, cli: Invoke
) -> None:
    """A wrong Telegram token (the fake Bot API answers 401) beside a working
    webhook: the webhook still gets its message, the table says which failed, the
    exit code is 1, and the token is nowhere in the output."""
    with FakeTelegramServer() as telegram:
        telegram.script(["401"] * 5)
        monkeypatch.setenv("PYORCHESTRATE_NOTIFY_TELEGRAM__TOKEN", TELEGRAM_TOKEN)
        monkeypatch.setenv("PYORCHESTRATE_NOTIFY_TELEGRAM__CHAT_ID", "42")
        monkeypatch.setenv("PYORCHESTRATE_NOTIFY_TELEGRAM__BASE_URL", telegram.base_url)
        result = cli("notify", "test", "--json")
    assert result.exit_code == 1, result.stdout + result.stderr
    rows = {row["channel"]: row for row in json.loads(result.stdout)}
    assert rows["webhook"]["ok"] is True
    assert rows["telegram"]["ok"] is False
    assert "InvalidToken" in rows["telegram"]["error"]
    webhook_env.wait_for(1)
    output = result.stdout + result.stderr
    assert TELEGRAM_TOKEN not in output and TELEGRAM_TOKEN.split(":")[1] not in output


def test_notify_test_as_a_process_exits_1_with_one_warning_line_on_stderr(
    tmp_path: Path,
) -> None:
    """``python -m pyorchestrate notify test`` against a wrong token, no logging set
    up: exit 1, and the failure is one line on stderr, without the token."""
    with FakeTelegramServer() as telegram:
        telegram.script(["401"] * 5)
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "XDG_RUNTIME_DIR": str(tmp_path),
            "PYORCHESTRATE_NOTIFY_TELEGRAM__TOKEN": TELEGRAM_TOKEN,
            "PYORCHESTRATE_NOTIFY_TELEGRAM__CHAT_ID": "42",
            "PYORCHESTRATE_NOTIFY_TELEGRAM__BASE_URL": telegram.base_url,
        }
        result = subprocess.run(
            [sys.executable, "-m", "pyorchestrate", "notify", "test"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if "telegram" in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("channel 'telegram': ") and "InvalidToken" in lines[0]
    output = result.stdout + result.stderr
    assert TELEGRAM_TOKEN not in output and TELEGRAM_TOKEN.split(":")[1] not in output
