"""``pyorchestrate notify status`` shows the alerts waiting for an ack before they
are escalated (text and JSON), read from the state file by another process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from notifiers import Notification, Severity
from notifiers.state import NotifierState

pytestmark = pytest.mark.process


def _status(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYORCHESTRATE_")}
    command = ["notify", "status", "--state-path", str(path), *extra]
    return subprocess.run(
        [sys.executable, "-m", "pyorchestrate", *command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**env, "COLUMNS": "200"},
    )


def test_status_lists_escalations_waiting_for_an_ack(tmp_path: Path) -> None:
    path = tmp_path / "notify.sqlite3"
    alert = Notification("loader failed", "batch 7", Severity.ERROR, agent="loader")
    with NotifierState(path) as state:
        row = state.chatops.add_alert(alert, "telegram", 42)
        state.chatops.escalate_later(
            row, alert, channel="telegram", target="email", timeout=600
        )
    text = _status(path)
    data = _status(path, "--json")

    assert text.returncode == 0, text.stderr
    assert "escalations: 1 waiting for an ack on Telegram; next in " in text.stdout
    assert "loader failed to email" in text.stdout
    [waiting] = json.loads(data.stdout)["escalations"]
    assert waiting["title"] == "loader failed" and waiting["to"] == "email"
    assert waiting["channel"] == "telegram" and waiting["alert"] == row
