"""A process agent's ``logging`` records are logged by the orchestrator, once, with the
agent's name, at the orchestrator's thresholds; a flood of them neither blocks the
router nor goes unnoticed when the orchestrator's logging cannot keep up."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from pyorchestrate import OrchestratorEvent
from pyorchestrate.core.agent import OneShotProcessAgent
from pyorchestrate.core.utilities.agentlog import LogRelay
from pyorchestrate.testing import EventRecorder, wait_until

from .conftest import MakeOrchestrator

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import logging
    import sys

    from pyorchestrate import Orchestrator
    from pyorchestrate.core.agent import OneShotProcessAgent

    log = logging.getLogger("myapp.worker")


    class Talker(OneShotProcessAgent):
        def task(self):
            log.warning("disk nearly full: %d%%", 91)
            log.info("copied %d files", 3)


    if __name__ == "__main__":
        START_METHOD, LOGGING = sys.argv[1:3]
        if LOGGING == "basic":
            logging.basicConfig(level=logging.INFO)
        orchestrator = Orchestrator(
            "Script",
            Orchestrator.Config(
                enable_command_interface=False, start_method=START_METHOD
            ),
        )
        orchestrator.register_agent(Talker, "talker")
        orchestrator.start()
        orchestrator.join()
        sys.exit(orchestrator.exit_code)
    """
)


def _run(tmp_path: Path, start_method: str, logging_mode: str) -> list[str]:
    script = tmp_path / "talk.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), start_method, logging_mode],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={
            "PYTHONPATH": str(ROOT),
            "PATH": "/usr/bin:/bin",
            "XDG_STATE_HOME": os.environ["XDG_STATE_HOME"],  # its log files
        },
    )
    assert result.returncode == 0, result.stderr
    return result.stderr.splitlines()


@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_no_logging_configured_shows_warnings_with_the_agent(
    tmp_path: Path, start_method: str
) -> None:
    lines = _run(tmp_path, start_method, "none")
    # Python's last resort prints the message alone: the agent's name is in it.
    assert lines.count("[talker] disk nearly full: 91%") == 1, lines
    assert not [line for line in lines if "copied" in line], lines


@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_basic_config_in_the_main_block_reaches_the_agent(
    tmp_path: Path, start_method: str
) -> None:
    lines = _run(tmp_path, start_method, "basic")
    assert lines.count("WARNING:myapp.worker:[talker] disk nearly full: 91%") == 1
    assert lines.count("INFO:myapp.worker:[talker] copied 3 files") == 1, lines
    assert len([line for line in lines if "disk nearly full" in line]) == 1


class Failing(OneShotProcessAgent):
    def task(self) -> None:
        try:
            {}["missing"]
        except KeyError:
            logging.getLogger("tests.agentlog").exception("lookup of %s", "missing")
        logging.getLogger("tests.agentlog").debug("hidden at INFO")


def test_a_record_keeps_its_traceback_and_names_the_agent(
    make_orchestrator: MakeOrchestrator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tests.agentlog")
    orchestrator = make_orchestrator(agent_start_timeout=60.0)
    orchestrator.register_agent(Failing, "failing")
    orchestrator.start()
    assert orchestrator.join() == []
    [record] = [r for r in caplog.records if r.name == "tests.agentlog"]
    assert record.levelno == logging.ERROR
    assert getattr(record, "agent", None) == "failing"
    assert record.getMessage() == "[failing] lookup of missing"
    assert record.process not in (None, os.getpid())  # the child's pid
    assert record.exc_text is not None
    assert record.exc_text.startswith("Traceback (most recent call last):")
    assert "in task" in record.exc_text
    assert record.exc_text.rstrip().endswith("KeyError: 'missing'")
    assert record.funcName == "task"
    text = logging.Formatter("%(message)s").format(record)
    assert text.splitlines()[0] == "[failing] lookup of missing"
    assert "KeyError: 'missing'" in text


BURST = 10_000


class Flood(OneShotProcessAgent):
    def task(self) -> None:
        log = logging.getLogger("tests.flood")
        for index in range(BURST):
            log.info("record %d", index)


class _Blocking(logging.Handler):
    """Holds the relay's thread on the first record until released."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.gate.wait(60)
        self.records.append(record)


def test_a_flood_of_records_does_not_block_the_router(
    make_orchestrator: MakeOrchestrator,
    recorder: EventRecorder,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(LogRelay, "MAX_PENDING", 1_000)
    caplog.set_level(logging.WARNING, logger="pyorchestrate.logs")
    flood = logging.getLogger("tests.flood")
    handler = _Blocking()
    monkeypatch.setattr(flood, "propagate", False)
    monkeypatch.setattr(flood, "level", logging.INFO)
    flood.addHandler(handler)
    try:
        orchestrator = make_orchestrator(agent_start_timeout=60.0)
        recorder.attach(orchestrator)
        orchestrator.register_agent(Flood, "flood")
        orchestrator.start()
        # The user's handler is stuck on the first record; the agent's life goes on.
        recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "flood", timeout=60)
        assert recorder.names("flood")[-3:] == [
            "agent_started",
            "agent_ready",
            "agent_terminated",
        ]
        assert handler.records == []
        handler.gate.set()
        relay = orchestrator.lifecycle.log_relay
        assert wait_until(lambda: relay.relayed + relay.dropped == BURST, 60)
        assert orchestrator.join() == []
    finally:
        handler.gate.set()
        flood.removeHandler(handler)
    assert 0 < relay.dropped < BURST
    assert len(handler.records) == relay.relayed == BURST - relay.dropped
    assert all(getattr(r, "agent", None) == "flood" for r in handler.records)
    assert handler.records[0].getMessage() == "[flood] record 0"
    [warning] = [r for r in caplog.records if r.name == "pyorchestrate.logs"]
    assert warning.getMessage().startswith(
        f"dropped {relay.dropped} log record(s) of agents (flood: {relay.dropped})"
    )


def test_long_records_are_bounded_by_their_size_too() -> None:
    relay = LogRelay("sizes")
    relay.MAX_PENDING_CHARS = 100_000
    gate = threading.Event()
    blocked = logging.getLogger("tests.sizes")
    handler = _Blocking()
    handler.gate = gate
    blocked.addHandler(handler)
    blocked.propagate = False
    try:
        big = {"name": "tests.sizes", "levelno": 30, "message": "x" * 16_000}
        accepted = [relay.submit("big", dict(big)) for _ in range(20)]
        # One is being logged (held by the handler), six wait: 96,000 characters.
        assert accepted.count(True) in (6, 7)
        assert relay.dropped == 20 - accepted.count(True)
    finally:
        gate.set()
        assert relay.close(10.0)
        blocked.removeHandler(handler)
        blocked.propagate = True
    assert len(handler.records) == accepted.count(True)
