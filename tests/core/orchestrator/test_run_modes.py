"""Run modes: when join() returns, and SIGINT/SIGTERM during join()."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pyorchestrate import AgentState, Orchestrator, OrchestratorEvent, RunMode
from pyorchestrate.testing import EventRecorder, wait_until
from tests.agents import agent

from .conftest import MakeOrchestrator

ROOT = Path(__file__).resolve().parents[3]


class Joiner:
    """Runs ``orchestrator.join()`` in a thread and keeps what it returned."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(orchestrator,))
        self.thread.start()

    def _run(self, orchestrator: Orchestrator) -> None:
        try:
            self.result = orchestrator.join()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def done_within(self, timeout: float) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def still_running_after(self, seconds: float) -> bool:
        return not wait_until(lambda: not self.thread.is_alive(), seconds)


# ---------------------------------------------------------------- STOP_ON_EMPTY


def test_stop_on_empty_with_no_agents_returns_promptly() -> None:
    orchestrator = Orchestrator(
        "empty", Orchestrator.Config(enable_command_interface=False)
    )  # check_interval 1 s
    began = time.monotonic()
    assert orchestrator.join() == []
    assert time.monotonic() - began < 3.0  # about one tick, not a hang
    assert not orchestrator.router.running
    assert len(orchestrator.events(event_name="SHUTDOWN")) == 1


def test_stop_on_empty_returns_when_every_agent_is_done(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    orchestrator.register_agent(agent("quick", flavour), "quick")
    orchestrator.register_agent(agent("slow", flavour), "slow")
    orchestrator.register_agent(agent("boom", flavour), "boom")
    orchestrator.start()
    assert orchestrator.join() == []
    for name in ("quick", "slow", "boom"):
        assert orchestrator.get_agent(name).state is AgentState.TERMINATED
        assert not orchestrator.get_agent(name).is_alive()
    assert len(orchestrator.events(event_name="agent_terminated")) == 3
    assert not orchestrator.router.running


def test_stop_on_empty_waits_for_a_running_agent_until_stop(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    orchestrator.register_agent(agent("forever", flavour), "f")
    orchestrator.start()
    recorder.wait_for(OrchestratorEvent.AGENT_READY, "f")
    joiner = Joiner(orchestrator)
    assert joiner.still_running_after(0.3)
    orchestrator.stop()
    assert joiner.done_within(10)
    assert joiner.error is None
    assert joiner.result == []
    assert orchestrator.get_agent("f").state is AgentState.TERMINATED


def test_join_without_start_is_safe(make_orchestrator: MakeOrchestrator) -> None:
    orchestrator = make_orchestrator()
    orchestrator.register_agent(agent("quick", "thread"), "never")
    assert orchestrator.join() == []
    assert orchestrator.get_agent("never").generation_id == 0


# ---------------------------------------------------------------- DAEMON


def test_daemon_stays_up_with_zero_agents_until_stop(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator(run_mode=RunMode.DAEMON)
    joiner = Joiner(orchestrator)
    assert joiner.still_running_after(0.3)
    assert orchestrator.router.running
    orchestrator.stop()
    assert joiner.done_within(10)
    assert joiner.error is None
    assert joiner.result == []
    assert not orchestrator.router.running


def test_daemon_stays_up_after_its_agents_end_until_shutdown(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator(run_mode=RunMode.DAEMON)
    recorder.attach(orchestrator)
    orchestrator.register_agent(agent("quick", flavour), "q")
    orchestrator.start()
    joiner = Joiner(orchestrator)
    recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "q")
    assert joiner.still_running_after(0.3)
    # Still serving: an agent can be started again on demand.
    orchestrator.start_agent("q")
    recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "q", count=2)
    assert orchestrator.get_agent("q").generation_id == 2
    assert orchestrator.shutdown() == []
    assert joiner.done_within(10)
    assert joiner.error is None
    assert joiner.result == []


def test_daemon_join_returns_after_stop_from_another_thread(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator(run_mode=RunMode.DAEMON)
    recorder.attach(orchestrator)
    orchestrator.register_agent(agent("forever", flavour), "f")
    orchestrator.start()
    recorder.wait_for(OrchestratorEvent.AGENT_READY, "f")
    stopper = threading.Timer(0.1, orchestrator.stop)
    stopper.start()
    assert orchestrator.join() == []  # in the main thread
    stopper.join()
    assert orchestrator.get_agent("f").state is AgentState.TERMINATED
    recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "f")


def test_join_restores_the_signal_handlers(make_orchestrator: MakeOrchestrator) -> None:
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    orchestrator = make_orchestrator()
    orchestrator.join()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


# ---------------------------------------------------------------- signals during join()

SCRIPT = """
import signal
import sys
import threading

from pyorchestrate import Orchestrator, OrchestratorEvent, RunMode
from pyorchestrate.testing import EventRecorder, wait_until
from tests.agents import agent


def handlers_installed():
    return (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        and signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    )


def main():
    flavour, mode = sys.argv[1], sys.argv[2]
    orchestrator = Orchestrator(
        "sig",
        Orchestrator.Config(
            enable_command_interface=False,
            check_interval=0.05,
            agent_stop_timeout=5.0,
            termination_grace=0.5,
            run_mode=RunMode(mode),
        ),
    )
    recorder = EventRecorder().attach(orchestrator)
    orchestrator.register_agent(agent("forever", flavour), "worker")
    orchestrator.start()
    recorder.wait_for(OrchestratorEvent.AGENT_READY, "worker")

    def announce():
        ok = wait_until(handlers_installed, timeout=10)
        print("ready" if ok else "no handlers", flush=True)

    threading.Thread(target=announce, daemon=True).start()
    survivors = orchestrator.join()
    terminated = recorder.of(OrchestratorEvent.AGENT_TERMINATED, "worker")
    print(
        "shutdown",
        f"survivors={survivors}",
        f"state={orchestrator.get_agent('worker').state.value}",
        f"terminated={len(terminated)}",
        f"status={terminated[0]['termination_status'] if terminated else None}",
        f"records={len(orchestrator.events(event_name='SHUTDOWN'))}",
        flush=True,
    )


if __name__ == "__main__":
    main()
"""


def _spawn(script: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Its own session, so killpg reaches it; its agents lead groups of their own
        # and end by themselves when it dies (their parent watch).
        start_new_session=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "mode"),
    [
        (signal.SIGINT, "daemon"),
        (signal.SIGTERM, "daemon"),
        (signal.SIGINT, "stop_on_empty"),
        (signal.SIGTERM, "stop_on_empty"),
    ],
    ids=[
        "SIGINT-daemon",
        "SIGTERM-daemon",
        "SIGINT-stop_on_empty",
        "SIGTERM-stop_on_empty",
    ],
)
def test_a_signal_during_join_shuts_down_gracefully(
    tmp_path: Path, flavour: str, signum: int, mode: str
) -> None:
    script = tmp_path / "signal_join.py"
    script.write_text(SCRIPT)
    proc = _spawn(script, flavour, mode)
    lines: list[str] = []
    first_line = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())
            first_line.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert first_line.wait(30), proc.poll()
        assert lines[0] == "ready", lines  # join() installed its handlers
        os.kill(proc.pid, signum)
        code = proc.wait(timeout=30)
        reader.join(5)
        stderr = proc.stderr.read() if proc.stderr else ""
        assert code == 0, (code, lines, stderr[-2000:])
        summary = [line for line in lines if line.startswith("shutdown")]
        assert summary, (lines, stderr[-2000:])
        fields = dict(item.split("=", 1) for item in summary[0].split()[1:])
        assert fields == {
            "survivors": "[]",
            "state": "TERMINATED",
            "terminated": "1",
            "status": "success",
            "records": "1",
        }
    finally:
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        reader.join(5)
