"""Escalation timers live in the state file: the process is SIGKILLed while an alert
waits for its ack; the next process on the same file escalates it, once; a third
start escalates nothing. Three real processes, the fake Bot API and aiosmtpd."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from notifiers.state import NotifierState
from notifiers.testing import FakeTelegramServer, LocalSMTPServer

pytestmark = [pytest.mark.process, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]


def _child(
    mode: str,
    state: Path,
    server: FakeTelegramServer,
    smtp: LocalSMTPServer,
    timeout: str,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.notifiers.chatops.escalation_main",
            mode,
            str(state),
            server.base_url,
            smtp.url(to="oncall@example.com"),
            timeout,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _line(child: subprocess.Popen[str], seconds: float = 60) -> str:
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], seconds)
    return child.stdout.readline().strip() if ready else ""


def _finish(child: subprocess.Popen[str]) -> str:
    try:
        _out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return err


def test_a_pending_escalation_survives_sigkill_and_fires_once(
    tmp_path: Path, fake_telegram: FakeTelegramServer, smtp_server: LocalSMTPServer
) -> None:
    state = tmp_path / "notify.sqlite3"
    first = _child("alert", state, fake_telegram, smtp_server, "4")
    try:
        line = _line(first)
        assert line == "PENDING", first.stderr.read() if first.stderr else ""
        first.send_signal(signal.SIGKILL)
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()  # reaps it and closes its pipes
    assert first.returncode == -signal.SIGKILL
    fake_telegram.wait_for(1)  # the alert went out before the kill
    with NotifierState(state) as reader:
        [before] = reader.chatops.due(["telegram"], now=float("inf"))
    assert before.state == "pending"
    assert smtp_server.messages == []

    second = _child("serve", state, fake_telegram, smtp_server, "4")
    line = _line(second)
    err = _finish(second)
    assert line == "FIRED 1", err
    [mail] = smtp_server.wait_for(1)
    assert "not acknowledged on Telegram within 4 s" in mail.subject
    edit = fake_telegram.wait_for_edit(lambda e: "not acknowledged" in e["text"])
    assert "sent to email" in edit["text"]

    third = _child("serve", state, fake_telegram, smtp_server, "check:4")
    line = _line(third)
    err = _finish(third)
    assert line == "FIRED 0", err
    assert len(smtp_server.messages) == 1, (
        err,
        [m.subject for m in smtp_server.messages],
    )
    with NotifierState(state) as reader:
        assert reader.chatops.due(["telegram"], now=float("inf")) == []
        assert reader.chatops.escalation(before.alert).state == "fired"
        assert reader.rows() == []  # the e-mail's outbox row is gone: delivered
