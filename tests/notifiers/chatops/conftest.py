"""Fixtures of the chat-ops tests: a real orchestrator, the fake Bot API, helpers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from notifiers import TelegramNotifier
from notifiers.chatops import Access, ChatOps, Permission
from notifiers.testing import FakeTelegramServer

TOKEN = "123:abc"
CHAT = 42
"""The on-call engineer's private chat with the bot (her user id too)."""
STRANGER = 666
GROUP = -1001


def chatops(**overrides: Any) -> ChatOps:
    """Chat-ops with ALICE (42) an operator, 7 read-only, and short waits."""
    options: dict[str, Any] = {"poll_timeout": 2.0, "ready_timeout": 20.0}
    options.update(overrides)
    access = options.pop(
        "access",
        Access(users={CHAT: Permission.OPERATOR, 7: Permission.READ_ONLY}),
    )
    return ChatOps(access, **options)


def telegram(
    server: FakeTelegramServer, ops: ChatOps, **kwargs: Any
) -> TelegramNotifier:
    return TelegramNotifier(
        TOKEN, CHAT, base_url=server.base_url, chatops=ops, **kwargs
    )


def wait_until(
    condition: Callable[[], object], timeout: float = 15.0, what: str = "condition"
) -> None:
    """Poll ``condition`` until it is true (no timing assert: a deadline only)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout} s")
        time.sleep(0.02)


def wait_polling(server: FakeTelegramServer, ops: ChatOps) -> None:
    wait_until(lambda: ops.polling, what="polling")
    wait_until(
        lambda: (
            server.waiting_polls
            or any(r["method"] == "getUpdates" for r in server.requests)
        ),
        what="a getUpdates",
    )


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer() as server:
        yield server
    leftover = [
        t.name for t in threading.enumerate() if t.name.startswith("fake-telegram")
    ]
    assert not leftover, leftover
