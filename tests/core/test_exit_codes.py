"""A script run from cron, systemd or CI: its exit code and what it prints on stderr.

Each test runs a real script in a subprocess, as a user would: it ends with
``sys.exit(orchestrator.exit_code)``, and sets up no logging unless the test says so.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import logging
    import signal
    import sys
    import threading
    import time

    from pyorchestrate import Orchestrator, RunMode
    from pyorchestrate.core.agent import (
        LoopingProcessAgent,
        LoopingThreadAgent,
        OneShotProcessAgent,
        OneShotThreadAgent,
    )

    FLAVOUR, KIND, LOGGING = sys.argv[1:4]
    ONE_SHOT = OneShotThreadAgent if FLAVOUR == "thread" else OneShotProcessAgent
    LOOPING = LoopingThreadAgent if FLAVOUR == "thread" else LoopingProcessAgent


    class Crasher(ONE_SHOT):
        def task(self):
            raise ValueError("disk /data is full")


    class Quick(ONE_SHOT):
        def task(self):
            return 42


    class Server(LOOPING):
        def cycle(self):
            self.wait(0.01)


    if __name__ == "__main__":
        if LOGGING == "basic":
            logging.basicConfig(format="USER %(levelname)s %(name)s: %(message)s")
        elif LOGGING == "ours":
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("OURS %(message)s"))
            logging.getLogger("pyorchestrate").addHandler(handler)
        daemon = KIND == "daemon"
        orchestrator = Orchestrator(
            "Script",
            Orchestrator.Config(
                enable_command_interface=False,
                run_mode=RunMode.DAEMON if daemon else RunMode.STOP_ON_EMPTY,
            ),
        )
        if KIND == "crash":
            orchestrator.register_agent(Quick, "fine")
            orchestrator.register_agent(Crasher, "crasher")
        elif KIND == "ok":
            orchestrator.register_agent(Quick, "fine")
        else:
            orchestrator.register_agent(Server, "server")
        orchestrator.start()
        if daemon:
            # Tell the test once join() handles SIGINT/SIGTERM (it installs them).
            def announce():
                while signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                    time.sleep(0.01)
                print("joining", flush=True)

            threading.Thread(target=announce, daemon=True).start()
        assert orchestrator.join() == []
        print(orchestrator.outcome(), flush=True)
        sys.exit(orchestrator.exit_code)
    """
)


def _script(tmp_path: Path) -> Path:
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    return script


def _env() -> dict[str, str]:
    # A bare environment, as a user's, but for the run's own state directory:
    # process agents' log files go there, not to ~/.local/state.
    return {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "XDG_STATE_HOME": os.environ["XDG_STATE_HOME"],
    }


def _run(
    tmp_path: Path, flavour: str, kind: str, logging: str = "none"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(_script(tmp_path)), flavour, kind, logging],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_script_whose_agent_fails_exits_1(tmp_path: Path, flavour: str) -> None:
    result = _run(tmp_path, flavour, "crash")
    assert result.returncode == 1, result.stderr
    last = result.stdout.splitlines()[-1]
    assert last.startswith("exit code 1; failed: crasher (TERMINATED, exception)")


def test_a_script_whose_agents_succeed_exits_0(tmp_path: Path, flavour: str) -> None:
    result = _run(tmp_path, flavour, "ok")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "ok"
    assert "Traceback" not in result.stderr


def test_sigterm_exits_143(tmp_path: Path, flavour: str) -> None:
    process = subprocess.Popen(
        [sys.executable, str(_script(tmp_path)), flavour, "daemon", "none"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "joining\n"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 143, stderr
    assert "received SIGTERM: shutting down" in stderr


def test_sigint_exits_130(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, str(_script(tmp_path)), "thread", "daemon", "none"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "joining\n"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr


def test_an_agents_traceback_shows_on_stderr_without_logging(
    tmp_path: Path, flavour: str
) -> None:
    stderr = _run(tmp_path, flavour, "crash").stderr
    assert stderr.count("Traceback (most recent call last):") == 1, stderr
    block = stderr[stderr.index("agent 'crasher' failed") :]
    lines = block.splitlines()
    assert lines[0] == "agent 'crasher' failed: ValueError: disk /data is full"
    assert lines[1] == "Traceback (most recent call last):"
    assert any("job.py" in line and "in task" in line for line in lines), stderr
    assert 'raise ValueError("disk /data is full")' in block
    assert "ValueError: disk /data is full" in lines[-1] or any(
        line == "ValueError: disk /data is full" for line in lines[2:]
    )


@pytest.mark.parametrize("logging", ["basic", "ours"])
def test_logging_set_up_by_the_user_wins(
    tmp_path: Path, flavour: str, logging: str
) -> None:
    result = _run(tmp_path, flavour, "crash", logging)
    assert result.returncode == 1, result.stderr
    stderr = result.stderr
    assert stderr.count("Traceback (most recent call last):") == 1, stderr
    # once in the message, once at the end of the traceback
    assert stderr.count("ValueError: disk /data is full") == 2, stderr
    prefix = "USER ERROR pyorchestrate.lifecycle: " if logging == "basic" else "OURS "
    assert f"{prefix}agent 'crasher' failed: ValueError: disk /data is full" in stderr
    # Every line of ours went through the user's handler: none printed on the side.
    for line in stderr.splitlines():
        if line.startswith("agent "):
            pytest.fail(f"printed outside the user's logging: {line!r}\n{stderr}")
