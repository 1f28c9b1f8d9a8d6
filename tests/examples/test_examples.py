"""Every example runs as a user would run it: a script in a fresh interpreter."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, cwd: Path, timeout: float = 60, exit_code: int = 0) -> str:
    """Run an example; it must end with ``exit_code`` (1 where an agent fails on
    purpose: the examples end with ``sys.exit(orchestrator.exit_code)``)."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == exit_code, result.stderr
    return result.stdout


@pytest.mark.process
def test_seed_example_runs_as_written(tmp_path: Path) -> None:
    out = run_example("seed_orchestrator.py", tmp_path)
    for n in range(1, 6):
        assert f"Subscriber got: Publisher: message {n}" in out
    assert (tmp_path / "out.txt").read_text().count("Publisher: message") == 5


def test_seed_example_matches_the_seed_page() -> None:
    """The script is the seed's code with only the package name lower-cased."""
    seed = Path(__file__).resolve().parents[3] / "shared/spec/seed-orchestrator.md"
    if not seed.exists():
        pytest.skip("shared/spec is not beside this checkout")
    block = seed.read_text().split("```python", 1)[1].split("```", 1)[0]
    expected = block.replace("PyOrchestrate", "pyorchestrate").strip().splitlines()
    script = (EXAMPLES / "seed_orchestrator.py").read_text()
    body = [line for line in expected if not line.startswith(("from ", "import "))]
    imports = [line for line in expected if line.startswith(("from ", "import "))]
    for line in imports:
        assert line in script
    assert "\n".join(body).strip() in script


@pytest.mark.process
def test_custom_config_example(tmp_path: Path) -> None:
    out = run_example("custom_config.py", tmp_path)
    assert "Pub3: TERMINATED, wrote custom_file.txt" in out
    assert (tmp_path / "custom_file.txt").read_text().count("message") == 3
    assert (tmp_path / "pub1.txt").read_text().count("message") == 5


def test_events_example(tmp_path: Path) -> None:
    out = run_example("events.py", tmp_path, exit_code=1)
    assert "Agent Report started at" in out
    assert (
        "ALERT Flaky failed: ConnectionError: database unreachable (generation 1)"
        in out
    )
    assert "Agent Flaky terminated: critical" in out
    assert "Agent Report terminated: success" in out
    assert "outcome: exit code 1; failed: Flaky (TERMINATED, exception)" in out


def test_dependencies_example(tmp_path: Path) -> None:
    out = run_example("dependencies.py", tmp_path)
    assert "start order: Extract -> Transform -> Load" in out


@pytest.mark.process
def test_supervision_example(tmp_path: Path) -> None:
    out = run_example("supervision.py", tmp_path, exit_code=1)
    # Callbacks print on several threads, and print() writes its text and its
    # newline apart: two lines may share one, so look for the words, not the lines.
    assert "restarting importer (attempt 1) in 0." in out
    assert "FlakyImport: imported on try 3" in out
    assert "importer: TERMINATED after 2 restarts (success)" in out
    assert "watchdog: poller sent no heartbeat for 0.5 s" in out
    assert (
        "poller: FATAL after 1 restarts (gave up after 1 restart (max_restarts))" in out
    )
    assert "broken: FATAL after 3 restarts (flapping: 3 restarts within 60 s)" in out
    assert out.count("FATAL broken:") == 1
    attempts = re.findall(
        r"restarting broken \(attempt (\d+)\) in [\d.]+ s: exited with code 1", out
    )
    assert attempts == ["1", "2", "3"]
    assert out.count("restarting broken") == 3


def test_commands_example(tmp_path: Path) -> None:
    out = run_example("commands.py", tmp_path)
    # As above: callbacks print on several threads (report and upload become READY
    # together), so the words are looked for, not whole lines.
    assert "[report] rows: 42" in out
    assert out.index("prepare: READY") < out.index("report: READY")
    assert "ERROR upload (exit_code): exited with code 75; printed 'server busy'" in out
    assert "[upload] uploaded" in out
    assert "upload env as shown: {'UPLOAD_TOKEN': '****'}" in out
    assert "outcome: ok" in out


@contextmanager
def daemon_example(cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """The DAEMON example as a subprocess; killed and its pipes closed at the end."""
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "daemon_mode.py")],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_daemon_example_stops_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    with daemon_example(tmp_path) as proc:
        assert proc.stdout is not None
        # The prompt comes from a callback, maybe before the main thread is in
        # join(), where a signal becomes a graceful shutdown: wait for the line the
        # main thread prints just before join(), then for the next tick (0.5 s on).
        # (Lines of two threads may run into each other: look for the words.)
        seen: set[str] = set()
        for line in proc.stdout:
            ready = seen == {"prompt", "socket"}
            if "press Ctrl+C to stop" in line:
                seen.add("prompt")
            if "command socket:" in line:
                seen.add("socket")
            if ready and "tick" in line:
                break
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 128 + sig, err  # 130 for SIGINT, 143 for SIGTERM
    assert "shut down cleanly, survivors: []" in out


def test_daemon_example_is_controlled_from_the_cli(tmp_path: Path) -> None:
    """The README's flow: start the daemon, `pyorchestrate ps`, `pyorchestrate shutdown`."""
    with daemon_example(tmp_path) as proc:
        assert proc.stdout is not None
        socket_path, ready = "", False
        for line in proc.stdout:
            # Threads print too: the line may be glued to another thread's output.
            found = re.search(r"command socket: (\S+?\.sock)", line)
            if found:
                socket_path = found.group(1)
            ready = ready or "press Ctrl+C to stop" in line
            if socket_path and ready:
                break
        assert socket_path
        cli = [sys.executable, "-m", "pyorchestrate"]
        ps = subprocess.run(
            [*cli, "ps", "--socket", socket_path, "--json"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert ps.returncode == 0, ps.stderr
        assert '"lifecycle_state": "READY"' in ps.stdout
        down = subprocess.run(
            [*cli, "shutdown", "--socket", socket_path],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert down.returncode == 0, down.stderr
        assert "Orchestrator shutdown initiated" in down.stdout
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "shut down cleanly, survivors: []" in out


def test_alerts_demo_delivers_on_every_channel(tmp_path: Path) -> None:
    out = run_example("alerts_demo.py", tmp_path, exit_code=1)
    for channel in ("telegram", "email", "slack"):
        assert re.search(rf"{channel}\s+delivered\s+attempts=1", out), out
    assert "abandoned: 0" in out
    assert "ConnectionError: database at db.internal:5432 refused" in out
    assert "Email (local SMTP) to oncall@example.com: ✖ etl failed" in out
    assert "Slack (local webhook)" in out
    # The demo's own secrets never reach its output.
    assert "AAF-demo-token" not in out
    assert "XXXXdemoXXXX" not in out
