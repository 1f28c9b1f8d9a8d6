"""examples/fleet/fleet.toml, run as the docs tell a user to, with its alerts pointed
at a fake Telegram Bot API and an SMTP server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from notifiers.testing import FakeTelegramServer, LocalSMTPServer
from pyorchestrate.core.control.paths import default_socket_path

from .conftest import fleet_env

pytestmark = pytest.mark.process  # real child processes

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fleet" / "fleet.toml"
TOKEN = "123456789:AAF-fleet-example-token-xyz"


def test_the_example_fleet_runs_and_alerts_by_telegram_and_email(
    run_fleet: Callable[..., Any], short_tmp: Path
) -> None:
    backups = short_tmp / "backups"
    backups.mkdir()
    with FakeTelegramServer() as telegram, LocalSMTPServer() as smtp:
        env = fleet_env(
            TELEGRAM_TOKEN=TOKEN,
            TELEGRAM_CHAT_ID="4242",
            TELEGRAM_API=telegram.base_url,
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(smtp.port),
            SMTP_MODE="insecure",
            BACKUP_FROM=str(short_tmp / "no-such-data"),  # the backup will fail
            BACKUP_TO=str(backups),
        )
        socket_path = Path(default_socket_path("example-fleet"))
        with run_fleet(EXAMPLE, env=env, socket_path=socket_path) as fleet:
            agents = fleet.wait_for(
                lambda a: a["worker"]["lifecycle_state"] == "READY", "worker up"
            )
            assert agents["backup"]["lifecycle_state"] == "REGISTERED"  # due at 03:00
            started = fleet.request("start", "backup")  # run it now, by hand
            assert started["status"] == "success", started
            fleet.wait_for(
                lambda a: a["backup"]["lifecycle_state"] == "TERMINATED",
                "backup ended",
            )
            mails = smtp.wait_for(1)
            assert fleet.request("shutdown")["status"] == "success"
            assert fleet.finish() == 1  # the backup failed
        messages = telegram.messages
    assert any("backup" in m["text"] for m in messages), messages
    assert "backup" in mails[0].subject
    assert TOKEN not in fleet.stderr + fleet.stdout
