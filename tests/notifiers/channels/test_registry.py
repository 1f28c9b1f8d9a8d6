"""The channel registry: a channel is one module (issue 14, item 5).

A channel module holds its notifier, its settings section (a ``ChannelSection`` that
builds it), its rate limits and its extra, and registers itself; the settings compose
their sections from the registry. The proof: a channel module written here, outside
the package, declared in the ``notifiers.channels`` entry-point group as another
distribution would, is configured through ``PYORCHESTRATE_NOTIFY_PAGER__*`` and
delivers through a real dispatcher, with nothing else changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from notifiers import Notification, Notifier
from notifiers.channels import (
    ChannelSection,
    register_channel,
    registered_channels,
    sealed_channels,
)
from notifiers.settings import NotifierSettings

ROOT = Path(__file__).resolve().parents[3]

PAGER_MODULE = '''
"""A pager channel: each alert becomes a line in a file. The whole channel."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from notifiers import Notification, Notifier, RateLimit
from notifiers.channels import ChannelSection, register_channel

PAGER_LIMIT = RateLimit.per_minute(6)  # its rate limit


class PagerNotifier(Notifier):
    channel = "pager"

    def __init__(self, path: Path, **options: object) -> None:
        super().__init__(**options)  # name=, rate_limits=
        self.path = path

    async def send(self, notification: Notification) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(f"{notification.severity.name} {notification.title}\\n")


@register_channel
class PagerSettings(ChannelSection):
    """A file that pages someone (``[pager]``)."""

    section = "pager"

    path: Path = Field(description="The file each alert is appended to.")

    def build(self) -> PagerNotifier:
        limits = self.rate_limits if self.rate_limits is not None else [PAGER_LIMIT]
        return PagerNotifier(self.path, name=self.channel_name, rate_limits=limits)
'''

PROBE = """
import json, os
from notifiers import (
    Dispatcher, Notification, NotifierConfigError, Severity, build_notifiers,
    load_settings,
)
from notifiers.settings import NotifierSettings

out = {"sections": [k for k in NotifierSettings.model_fields][:6]}
try:  # a required field missing: named, like any built-in section's
    load_settings()
except NotifierConfigError as exc:
    out["error"] = exc.errors
os.environ["PYORCHESTRATE_NOTIFY_PAGER__PATH"] = os.environ["PAGER_FILE"]
settings = load_settings()
(channel,) = build_notifiers(settings)
out["channel"] = [type(channel).__name__, channel.name]
out["limits"] = [str(limit) for _, limit in channel.rate_limits(Notification("t", "b"))]
dispatcher = Dispatcher([channel])
try:
    result = dispatcher.send_now(
        Notification("disk full", "on db-1", Severity.ERROR), channel.name
    )
finally:
    dispatcher.close()
out["status"] = result.status.value
print(json.dumps(out))
"""


def test_a_channel_module_of_another_distribution_is_configured_from_the_environment(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "pager_channel.py").write_text(PAGER_MODULE, encoding="utf-8")
    dist = site / "pager_channel-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: pager-channel\nVersion: 1.0\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        "[notifiers.channels]\npager = pager_channel\nbroken = no_such_channel\n",
        encoding="utf-8",
    )
    pages = tmp_path / "pages.txt"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PYORCHESTRATE_NOTIFY_")
    }
    env.update(
        PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]),
        PYORCHESTRATE_NOTIFY_PAGER__NAME="on-call",
        PYORCHESTRATE_NOTIFY_STATE_PATH="none",
        PAGER_FILE=str(pages),
    )
    run = subprocess.run(
        [sys.executable, "-W", "error", "-c", PROBE],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    out: dict[str, Any] = json.loads(run.stdout)
    assert out["sections"] == [
        "telegram",
        "email",
        "slack",
        "webhook",
        "apprise",
        "pager",
    ]
    assert out["error"] == [["pager.path", "required, but not set"]]
    assert out["channel"] == ["PagerNotifier", "on-call"]
    assert out["limits"] == ["6/min"]
    assert out["status"] == "delivered"
    assert pages.read_text(encoding="utf-8") == "ERROR disk full\n"
    # A channel module that cannot load is reported, and the others still work.
    assert "cannot load the channel module of entry point 'broken'" in run.stderr


def test_the_built_in_channels_register_in_order() -> None:
    keys = list(sealed_channels())
    assert keys[:5] == ["telegram", "email", "slack", "webhook", "apprise"]
    assert list(NotifierSettings.model_fields)[:5] == keys[:5]
    for key, section in registered_channels().items():
        assert section.section == key
        assert NotifierSettings.model_fields[key].default is None


def test_no_section_key_is_a_settings_field() -> None:
    from notifiers.channels import _registry

    own = set(NotifierSettings.model_fields) - set(registered_channels())
    assert own | {"config_file"} == _registry._RESERVED


class _Section(ChannelSection):
    section = "late"
    path: str = Field(default="x")

    def build(self) -> Notifier:
        raise AssertionError("never built")


def test_register_channel_refuses_what_the_settings_could_not_read() -> None:
    sealed_channels()  # notifiers.settings composed its fields already

    with pytest.raises(TypeError, match="not a ChannelSection"):
        register_channel(Notification)  # type: ignore[type-var]
    for key, reason in (
        ("Late", "lower-case identifier"),
        ("two words", "lower-case identifier"),
        ("_hidden", "lower-case identifier"),
        ("retry", "is a settings field"),
        ("telegram", "already registered by notifiers.channels.telegram"),
        ("late", "settings were already composed"),
    ):
        section = type("Probe", (_Section,), {"section": key})
        error = RuntimeError if key == "late" else ValueError
        with pytest.raises(error, match=reason):
            register_channel(section)
    assert "late" not in registered_channels()
    # The same class again (a module imported twice) is no error.
    telegram = registered_channels()["telegram"]
    assert register_channel(telegram) is telegram


LIGHT_PROBE = """
import sys
for blocked in ("telegram", "apprise"):
    sys.modules[blocked] = None  # as if the extras were not installed
from notifiers import NotifierConfigError, build_notifiers, load_settings
settings = load_settings(
    telegram={"token": "123:abc", "chat_id": 1},
    email={"host": "127.0.0.1", "sender": "a@example.com", "recipients": ["o@example.com"]},
    state_path="none",
)
try:
    build_notifiers(settings)
except NotifierConfigError as exc:
    print(exc.errors)
print(sorted(m for m in sys.modules if m.startswith(("httpx", "apprise.", "telegram."))))
"""


def test_the_settings_load_without_the_channels_extras() -> None:
    """Every channel module is imported with the settings, so none may import its
    library before it is used; a missing extra is named when the channel is built."""
    run = subprocess.run(
        [sys.executable, "-c", LIGHT_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    errors, loaded = run.stdout.splitlines()
    assert errors == (
        "[('telegram', \"needs python-telegram-bot: pip install "
        "'pyorchestrate[telegram]'\")]"
    )
    assert loaded == "[]"


def test_the_old_import_paths_still_work() -> None:
    import notifiers
    import notifiers.apprise
    import notifiers.channels.apprise as apprise_channel
    import notifiers.channels.telegram as telegram_channel
    import notifiers.ratelimit
    import notifiers.settings
    import notifiers.telegram

    assert notifiers.TelegramNotifier is telegram_channel.TelegramNotifier
    assert notifiers.telegram.TelegramNotifier is telegram_channel.TelegramNotifier
    assert notifiers.AppriseNotifier is apprise_channel.AppriseNotifier
    assert notifiers.apprise.AppriseNotifier is apprise_channel.AppriseNotifier
    assert notifiers.settings.TelegramSettings is telegram_channel.TelegramSettings
    assert notifiers.ratelimit.TELEGRAM_PER_CHAT is telegram_channel.TELEGRAM_PER_CHAT
    assert notifiers.ratelimit.SLACK_PER_WEBHOOK is apprise_channel.SLACK_PER_WEBHOOK
    assert str(notifiers.ratelimit.NTFY_PER_URL) == "12/min burst 60"
