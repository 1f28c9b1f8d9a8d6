"""An AGENT_ERROR alert of a process agent shows the last lines it wrote to stderr,
as a ``<pre>`` block in Telegram (escaped), received by the fake Bot API."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable

import pytest

from notifiers import TelegramNotifier, attach
from notifiers.testing import FakeTelegramServer
from pyorchestrate import OneShotProcessAgent, Orchestrator

pytestmark = pytest.mark.process


class Loader(OneShotProcessAgent):
    def task(self) -> None:
        print("loading batch 7 <of 9> & counting", file=sys.stderr)
        os.write(2, b"libfoo: mmap failed\n")
        raise RuntimeError("batch 7 failed")


def test_telegram_alert_shows_the_stderr_tail_in_pre(
    fake_telegram: FakeTelegramServer,
    make_orchestrator: Callable[..., Orchestrator],
) -> None:
    orchestrator = make_orchestrator("etl-prod", agent_start_timeout=60.0)
    orchestrator.register_agent(Loader, "loader")
    channel = TelegramNotifier("123:abc", chat_id=42, base_url=fake_telegram.base_url)
    alerts = attach(orchestrator, "errors_only", channel, rules=False)
    orchestrator.start()
    orchestrator.join()
    [message] = fake_telegram.wait_for(1)
    alerts.detach()
    text = message["text"]
    assert message["parse_mode"] == "HTML"
    blocks = re.findall(r"<pre>(.*?)</pre>", text, re.S)
    assert (
        "loading batch 7 &lt;of 9&gt; &amp; counting\nlibfoo: mmap failed" in blocks
    ), text
    assert "<of 9>" not in text
    assert "reason: exception, exit code 1, start #1" in text
