"""A channel that fails for good is visible with no logging configured: a script with
a wrong Telegram token prints one line naming the channel and the error class on
stderr, never the token (the ``notifiers`` logger has no ``NullHandler``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECRET = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"

SCRIPT = textwrap.dedent(
    f"""
    import sys

    from notifiers import TelegramNotifier, attach
    from notifiers.testing import FakeTelegramServer
    from pyorchestrate import OneShotThreadAgent, Orchestrator


    class Etl(OneShotThreadAgent):
        def task(self):
            raise RuntimeError("the source database is down")


    if __name__ == "__main__":
        with FakeTelegramServer() as server:
            server.script(["401"] * 10)  # what Telegram answers a wrong token
            orchestrator = Orchestrator("tok", {{"enable_command_interface": False}})
            orchestrator.register_agent(Etl, "etl")
            channel = TelegramNotifier(
                {SECRET!r}, chat_id=42, base_url=server.base_url
            )
            alerts = attach(orchestrator, "errors_only", channel)
            orchestrator.start()
            assert orchestrator.join() == []
            alerts.detach()
        sys.exit(orchestrator.exit_code)
    """
)


def test_a_wrong_token_prints_one_line_without_the_secret(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "XDG_RUNTIME_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if "telegram" in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("channel 'telegram': "), lines
    assert "InvalidToken" in lines[0]
    assert SECRET not in result.stderr + result.stdout
    assert SECRET.split(":")[1] not in result.stderr + result.stdout
