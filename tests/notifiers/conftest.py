"""Fixtures of the notifier tests: local fakes of the services, started and stopped."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from notifiers import Dispatcher, Notification, Notifier
from notifiers.testing import FakeTelegramServer, LocalSMTPServer, WebhookSink
from pyorchestrate import Orchestrator


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegramServer]:
    """A fake Telegram Bot API on 127.0.0.1 (``base_url`` for TelegramNotifier)."""
    with FakeTelegramServer() as server:
        yield server


@pytest.fixture
def smtp_server() -> Iterator[LocalSMTPServer]:
    """A running aiosmtpd server on 127.0.0.1 (no auth) that keeps what it gets."""
    with LocalSMTPServer() as server:
        yield server


@pytest.fixture
def webhook_sink() -> Iterator[WebhookSink]:
    """A running HTTP sink on 127.0.0.1 (``json://`` and Slack); script its replies."""
    with WebhookSink() as sink:
        yield sink


# ---------------------------------------------------------------- dispatcher tests


class SleepRecorder:
    """An async ``sleep=`` for dispatchers and retry policies: records, never waits."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def fake_sleep() -> SleepRecorder:
    """An async sleep that records each wait and returns at once."""
    return SleepRecorder()


@pytest.fixture
def make_dispatcher() -> Iterator[Callable[..., Dispatcher]]:
    """Build dispatchers (same arguments as ``Dispatcher``); each is closed afterwards.

    Their threads are named ``notifiers-test-<n>`` (unless ``name=`` is given); the
    test fails if one is still running after its ``close()``.
    """
    made: list[Dispatcher] = []

    def make(notifiers: Iterable[Notifier], **kwargs: Any) -> Dispatcher:
        kwargs.setdefault("name", f"notifiers-test-{len(made)}")
        kwargs.setdefault("rate_limits", False)  # they have their own tests
        dispatcher = Dispatcher(notifiers, **kwargs)
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.close(timeout=1.0)
    alive = [
        t.name for t in threading.enumerate() if t.name.startswith("notifiers-test-")
    ]
    if alive:
        pytest.fail(f"dispatcher threads still running after close(): {alive}")


# ---------------------------------------------------------------- settings and presets
# (fixtures for test_settings.py and presets/test_presets.py)

NOTIFY_FAST: dict[str, Any] = {
    "enable_command_interface": False,
    "check_interval": 0.05,
    "agent_start_timeout": 5.0,
    "agent_stop_timeout": 1.0,
    "termination_grace": 0.5,
}
"""Orchestrator settings for alert tests: no socket, short timeouts."""


@pytest.fixture
def make_orchestrator() -> Iterator[Callable[..., Orchestrator]]:
    """Build real orchestrators (no command socket); every one is shut down."""
    made: list[Orchestrator] = []

    def make(name: str = "alerts", **overrides: Any) -> Orchestrator:
        config = Orchestrator.Config(**{**NOTIFY_FAST, **overrides})
        orchestrator = Orchestrator(name, config)
        made.append(orchestrator)
        return orchestrator

    yield make
    for orchestrator in made:
        orchestrator.shutdown(timeout=2.0)


@pytest.fixture
def notify_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """``monkeypatch`` with every ``PYORCHESTRATE_NOTIFY_*`` variable removed first."""
    for key in list(os.environ):
        if key.upper().startswith("PYORCHESTRATE_NOTIFY_"):
            monkeypatch.delenv(key)
    return monkeypatch


@pytest.fixture
def no_dispatcher_leaks() -> Iterator[None]:
    """Fail a test that leaves a dispatcher thread (``notifiers-…``) running."""
    before = set(threading.enumerate())
    yield
    left = [
        t
        for t in threading.enumerate()
        if t not in before and t.name.startswith("notifiers-")
    ]
    for thread in left:
        thread.join(5)
    alive = [t.name for t in left if t.is_alive()]
    assert not alive, f"dispatcher threads left running: {alive}"


class FakeChannel(Notifier):
    """Stands in for a channel class; keeps what it was built with; never sends."""

    def __init__(self, *args: object, name: str | None = None, **kwargs: object):
        super().__init__(name=name)
        self.args = args
        self.kwargs = kwargs

    async def send(self, notification: Notification) -> None:
        raise AssertionError("a FakeChannel must not be sent to")


@pytest.fixture
def fake_channels(monkeypatch: pytest.MonkeyPatch) -> type[FakeChannel]:
    """Replace the classes the channel sections build (``TelegramNotifier`` in
    :mod:`notifiers.channels.telegram`, ``AppriseNotifier`` in
    :mod:`notifiers.channels.apprise`, the base of e-mail, Slack and webhooks) by
    recording fakes.

    Returns the fakes' base class (both fakes are subclasses of it).
    """
    import notifiers.channels.apprise
    import notifiers.channels.telegram

    for module, cls in (
        (notifiers.channels.telegram, "TelegramNotifier"),
        (notifiers.channels.apprise, "AppriseNotifier"),
    ):
        monkeypatch.setattr(module, cls, type(cls, (FakeChannel,), {}))
    return FakeChannel
