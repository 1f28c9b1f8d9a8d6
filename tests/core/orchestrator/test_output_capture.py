"""A process agent's stderr: passed on to the orchestrator's stderr, and its last lines
kept for the AGENT_ERROR event (``output_tail``) and ``status NAME``, whatever way the
agent ended, with no descriptor or thread left behind."""

from __future__ import annotations

import faulthandler
import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from pyorchestrate import ConfigError, Orchestrator, OrchestratorEvent
from pyorchestrate.core.agent import OneShotProcessAgent
from pyorchestrate.core.control.commands import COMMAND_TABLE
from pyorchestrate.core.utilities.output import TAIL_BYTES, TAIL_LINES, OutputTail
from pyorchestrate.core.utilities.outputfiles import parse_line
from pyorchestrate.testing import EventRecorder

from .conftest import FAST, MakeOrchestrator

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[3]


class PrintsThenRaises(OneShotProcessAgent):
    def task(self) -> None:
        print("preparing /data", file=sys.stderr)
        print("writing 3 files", file=sys.stderr)
        raise ValueError("disk /data is full")

    def on_close(self) -> None:
        print("closing after the failure", file=sys.stderr)


class WritesThenExits(OneShotProcessAgent):
    def task(self) -> None:
        os.write(2, b"native line 1\nnative line 2\nno newline at the end")
        os._exit(3)


class WritesThenSigkills(OneShotProcessAgent):
    def task(self) -> None:
        os.write(2, b"before the kill\n")
        os.kill(os.getpid(), signal.SIGKILL)


class Segfaults(OneShotProcessAgent):
    def task(self) -> None:
        faulthandler.enable()  # writes its report straight to fd 2, from C
        os.kill(os.getpid(), signal.SIGSEGV)


class Quiet(OneShotProcessAgent):
    def task(self) -> None:
        print(f"agent {self.name} done", file=sys.stderr)


def _error_of(
    make_orchestrator: MakeOrchestrator,
    recorder: EventRecorder,
    agent: type[OneShotProcessAgent],
    **config: Any,
) -> dict[str, Any]:
    # A start may be slow on a loaded machine: only the agent's own end is tested.
    orchestrator = make_orchestrator(**{"agent_start_timeout": 60.0, **config})
    recorder.attach(orchestrator, [OrchestratorEvent.AGENT_ERROR])
    orchestrator.register_agent(agent, "worker")
    orchestrator.start()
    assert orchestrator.join() == []
    [event] = recorder.of(OrchestratorEvent.AGENT_ERROR, "worker")
    return event


@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_an_exception_alert_has_the_lines_printed_before_and_after(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, start_method: str
) -> None:
    event = _error_of(
        make_orchestrator, recorder, PrintsThenRaises, start_method=start_method
    )
    assert event["reason"] == "exception"
    # The event waited for the end, so it says how the process ended.
    assert (event["exit_code"], event["signal"]) == (1, None)
    # on_close printed after the error was reported: the event waited for the end.
    assert event["output_tail"] == (
        "preparing /data\nwriting 3 files\nclosing after the failure"
    )


def test_os_write_then_os_exit_is_in_the_tail(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder
) -> None:
    event = _error_of(make_orchestrator, recorder, WritesThenExits)
    assert event["reason"] == "exited"
    assert event["exit_code"] == 3
    assert event["output_tail"] == (
        "native line 1\nnative line 2\nno newline at the end"
    )


def test_a_sigkilled_agent_keeps_what_reached_the_pipe(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder
) -> None:
    event = _error_of(make_orchestrator, recorder, WritesThenSigkills)
    assert event["signal"] == "SIGKILL"
    assert event["output_tail"] == "before the kill"


def test_a_segfault_report_written_from_c_is_in_the_tail(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder
) -> None:
    event = _error_of(make_orchestrator, recorder, Segfaults)
    assert event["signal"] == "SIGSEGV"
    # faulthandler's report, its last lines: the crashing frame among them.
    tail = event["output_tail"].splitlines()
    assert any(line.endswith(" in task") for line in tail), tail


def test_an_agent_that_could_not_start_has_an_empty_tail(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder
) -> None:
    class Local(OneShotProcessAgent):  # not importable: the child cannot get it
        def task(self) -> None:
            pass

    event = _error_of(make_orchestrator, recorder, Local)
    assert event["reason"] == "start_failed"
    assert event["output_tail"] == ""


def test_status_of_one_agent_shows_its_tail(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator(agent_start_timeout=60.0)
    orchestrator.register_agent(PrintsThenRaises, "worker")
    orchestrator.start()
    orchestrator.join()
    status = COMMAND_TABLE["status"].handler(orchestrator, ["worker"])
    assert status["output_tail"] == (
        "preparing /data\nwriting 3 files\nclosing after the failure"
    )
    # Where all of its output is: the files `pyorchestrate logs` reads.
    logs_dir = orchestrator.logs_dir
    assert logs_dir is not None
    assert status["log_files"] == {
        "stdout": str(logs_dir / "worker.stdout.log"),
        "stderr": str(logs_dir / "worker.stderr.log"),
    }
    assert (
        Path(status["log_files"]["stderr"])
        .read_text()
        .endswith(" closing after the failure\n")
    )


def test_the_tail_is_bounded() -> None:
    tail = OutputTail()
    for index in range(TAIL_LINES + 100):
        tail.feed(f"line {index}")
    assert tail.lines() == [f"line {index}" for index in range(100, TAIL_LINES + 100)]
    assert len(tail.lines()) == TAIL_LINES
    tail.feed("x" * 50_000)
    [line] = tail.lines()
    assert len(line.encode()) == TAIL_BYTES and line.startswith("…x")
    for _ in range(TAIL_LINES):
        tail.feed("y" * 1_500)
    assert len(tail.text().encode()) <= TAIL_BYTES
    assert tail.total_lines == TAIL_LINES + 100 + 1 + TAIL_LINES


def test_the_tail_counts_bytes_and_cuts_between_characters() -> None:
    tail = OutputTail(lines=10, max_bytes=10)
    tail.feed("é" * 20)  # 40 bytes: its end is kept, whole characters only
    [line] = tail.lines()
    assert line == "…" + "é" * 3  # 3 bytes + 6 bytes
    tail.feed_many(["a", "b", "c"], total=7)
    assert tail.lines() == ["a", "b", "c"] and tail.total_lines == 8


def _fds() -> set[str]:
    gc.collect()
    return {path.name for path in Path("/proc/self/fd").iterdir()}


def test_twenty_agents_leave_no_descriptor_and_no_thread(
    make_orchestrator: MakeOrchestrator,
) -> None:
    warm = make_orchestrator("warm")  # the forkserver and its descriptors, once
    warm.register_agent(Quiet, "warm")
    warm.start()
    warm.join()
    before = _fds()
    threads_before = set(threading.enumerate())
    # Built here, not by the fixture, so nothing holds it (and its agents) after.
    orchestrator = Orchestrator(
        "twenty", Orchestrator.Config(**{**FAST, "agent_start_timeout": 60.0})
    )
    for index in range(20):
        orchestrator.register_agent(Quiet, f"quiet{index}")
    orchestrator.start()
    assert orchestrator.join() == []
    assert orchestrator.shutdown() == []
    for index in range(20):
        name = f"quiet{index}"
        tail = orchestrator.lifecycle.output_tail(name)
        assert tail == f"agent {name} done", orchestrator.agent_status(name)
    del orchestrator
    assert set(threading.enumerate()) - threads_before == set()
    left = {fd: str(Path("/proc/self/fd", fd).readlink()) for fd in _fds() - before}
    assert left == {}


SCRIPT = textwrap.dedent(
    """
    import os
    import sys

    from pyorchestrate import Orchestrator, OrchestratorEvent
    from pyorchestrate.core.agent import OneShotProcessAgent


    class Hard(OneShotProcessAgent):
        def task(self):
            print("to stderr by print", file=sys.stderr, flush=True)
            os.write(2, b"to fd 2 by os.write\\n")
            print("to stdout by print")  # no flush: stdout is unbuffered
            os._exit(3)


    def on_error(**kwargs):
        print(f"ALERT {kwargs['agent_name']}: {kwargs['output_tail']!r}", flush=True)


    if __name__ == "__main__":
        logs = {"off": None, "auto": "auto"}[sys.argv[2]]
        orchestrator = Orchestrator(
            "Script",
            Orchestrator.Config(
                enable_command_interface=False,
                start_method=sys.argv[1],
                logs_dir=logs,
            ),
        )
        orchestrator.register_event(OrchestratorEvent.AGENT_ERROR, on_error)
        orchestrator.register_agent(Hard, "hard")
        orchestrator.start()
        orchestrator.join()
        sys.exit(orchestrator.exit_code)
    """
)

ALERT = "ALERT hard: 'to stderr by print\\nto fd 2 by os.write\\nto stdout by print'"


def _run_script(tmp_path: Path, start_method: str, logs: str) -> Any:
    script = tmp_path / "hard.py"
    script.write_text(SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), start_method, logs],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={
            "PYTHONPATH": str(ROOT),
            "PATH": "/usr/bin:/bin",
            "XDG_STATE_HOME": str(tmp_path / "state"),
        },
    )


@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_with_logs_off_the_orchestrators_stdout_and_stderr_show_the_lines(
    tmp_path: Path, start_method: str
) -> None:
    result = _run_script(tmp_path, start_method, "off")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert lines.count("[hard] to stderr by print") == 1, lines
    assert lines.count("[hard] to fd 2 by os.write") == 1, lines
    out = result.stdout.splitlines()
    assert sorted(out) == sorted([ALERT, "[hard] to stdout by print"]), out
    assert not (tmp_path / "state").exists()


def test_by_default_the_lines_go_to_files_under_xdg_state_home(
    tmp_path: Path,
) -> None:
    result = _run_script(tmp_path, "forkserver", "auto")
    assert result.returncode == 1, result.stderr
    assert "to stderr by print" not in result.stderr
    assert result.stdout.splitlines() == [ALERT]
    logs = tmp_path / "state/pyorchestrate/logs/Script"
    assert sorted(p.name for p in logs.iterdir()) == [
        "hard.stderr.log",
        "hard.stdout.log",
    ]
    stored = (logs / "hard.stderr.log").read_text().splitlines()
    stderr = [parse_line(line) for line in stored]
    assert [line.text for line in stderr if line] == [
        "to stderr by print",
        "to fd 2 by os.write",
    ]
    assert all(line and line.timestamp.tzinfo is not None for line in stderr)
    stdout = (logs / "hard.stdout.log").read_text().splitlines()
    assert [line[24:] for line in stdout] == [" to stdout by print"]


def test_a_callback_may_name_output_tail_traceback_and_error_type(
    make_orchestrator: MakeOrchestrator,
) -> None:
    """The new AGENT_ERROR fields are part of the keyword contract: a callback that
    names them is accepted at registration and gets them."""
    seen: list[tuple[str, str, str]] = []
    done = threading.Event()

    def on_error(agent_name: str, error_type: str, traceback: str, output_tail: str):
        seen.append((error_type, traceback, output_tail))
        done.set()

    orchestrator = make_orchestrator(agent_start_timeout=60.0)
    orchestrator.register_event(OrchestratorEvent.AGENT_ERROR, on_error)
    orchestrator.register_agent(PrintsThenRaises, "worker")
    orchestrator.start()
    assert orchestrator.join() == []
    assert done.wait(10)
    [(error_type, trace, tail)] = seen
    assert error_type == "ValueError"
    assert "disk /data is full" in trace and "in task" in trace
    assert tail.startswith("preparing /data")


# ------------------------------------------------ stdout, files, bounds (issue 15)
class PrintsAndSucceeds(OneShotProcessAgent):
    def task(self) -> None:
        for index in range(5):
            print(f"stdout line {index}")  # stdout is unbuffered: no flush needed
        print("stderr line", file=sys.stderr)


class FloodsStdout(OneShotProcessAgent):
    """Writes ``FLOOD`` bytes without a newline as fast as it can."""

    def task(self) -> None:
        chunk = b"x" * 65_536
        for _ in range(FLOOD // len(chunk)):
            os.write(1, chunk)


FLOOD = 96 * 1024 * 1024


def test_agent_terminated_carries_the_tail_of_both_streams(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, tmp_path: Path
) -> None:
    orchestrator = make_orchestrator(
        agent_start_timeout=60.0, logs_dir=tmp_path, output_tail_lines=4
    )
    recorder.attach(orchestrator, [OrchestratorEvent.AGENT_TERMINATED])
    orchestrator.register_agent(PrintsAndSucceeds, "worker")
    orchestrator.start()
    assert orchestrator.join() == []
    [event] = recorder.of(OrchestratorEvent.AGENT_TERMINATED, "worker")
    tail = event["output_tail"].splitlines()
    assert len(tail) == 4
    assert sorted(tail) == sorted(
        ["stdout line 2", "stdout line 3", "stdout line 4", "stderr line"]
    )
    assert orchestrator.logs_dir == tmp_path
    [stdout] = orchestrator.log_files("worker", "stdout")
    assert stdout == tmp_path / "worker.stdout.log"
    texts = [parse_line(line) for line in stdout.read_text().splitlines()]
    assert [line.text for line in texts if line] == [
        f"stdout line {index}" for index in range(5)
    ]
    assert orchestrator.log_files("worker", "stderr") == [
        tmp_path / "worker.stderr.log"
    ]


def test_a_callback_on_agent_terminated_may_name_output_tail(
    make_orchestrator: MakeOrchestrator, tmp_path: Path
) -> None:
    seen: list[str] = []
    done = threading.Event()

    def on_end(agent_name: str, output_tail: str) -> None:
        seen.append(output_tail)
        done.set()

    orchestrator = make_orchestrator(agent_start_timeout=60.0, logs_dir=tmp_path)
    orchestrator.register_event(OrchestratorEvent.AGENT_TERMINATED, on_end)
    orchestrator.register_agent(Quiet, "worker")
    orchestrator.start()
    assert orchestrator.join() == []
    assert done.wait(10)
    assert seen == ["agent worker done"]


def test_a_log_dir_that_cannot_be_written_fails_the_start_not_the_router(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the directory should be")
    orchestrator = make_orchestrator(
        agent_start_timeout=60.0, logs_dir=blocker / "logs"
    )
    recorder.attach(orchestrator, [OrchestratorEvent.AGENT_ERROR])
    orchestrator.register_agent(Quiet, "first")
    orchestrator.register_agent(Quiet, "second")
    orchestrator.start()
    orchestrator.join()
    for name in ("first", "second"):
        [event] = recorder.of(OrchestratorEvent.AGENT_ERROR, name)
        assert event["reason"] == "start_failed"
        assert str(blocker / "logs" / f"{name}.stdout.log") in event["error_message"]
        assert "Not a directory" in event["error_message"]
        assert event["output_tail"] == ""
    assert orchestrator.lifecycle.output.reopen_logs().reopened == ()


def test_a_job_flooding_stdout_neither_stalls_ps_nor_grows_memory(
    make_orchestrator: MakeOrchestrator, tmp_path: Path
) -> None:
    import psutil

    orchestrator = make_orchestrator(
        agent_start_timeout=60.0,
        logs_dir=tmp_path,
        log_max_bytes=1024 * 1024,
        log_backups=1,
    )
    orchestrator.register_agent(FloodsStdout, "flood")
    me = psutil.Process()
    rss_before = me.memory_info().rss
    orchestrator.start()
    answers = 0
    ps = COMMAND_TABLE["ps"].handler
    assert ps is not None
    while answers == 0 or not orchestrator.lifecycle.is_idle():
        reply = ps(orchestrator, [])
        assert "flood" in str(reply)
        answers += 1
    assert orchestrator.join() == []
    grown = me.memory_info().rss - rss_before
    assert grown < FLOOD // 4, grown  # far less than what went through
    entry = orchestrator.get_agent("flood")
    assert entry.output is not None
    stdout = entry.output.streams["stdout"]
    assert stdout.cut_lines == FLOOD // 65_536
    files = orchestrator.log_files("flood", "stdout")
    assert [path.name for path in files] == ["flood.stdout.log.1", "flood.stdout.log"]
    assert all(path.stat().st_size <= 1024 * 1024 for path in files)
    assert len(entry.output.tail.text().encode()) <= 32 * 1024


def test_logs_can_be_reopened_through_the_orchestrator(
    make_orchestrator: MakeOrchestrator, tmp_path: Path
) -> None:
    orchestrator = make_orchestrator(agent_start_timeout=60.0, logs_dir=tmp_path)
    assert orchestrator.reopen_logs().reopened == ()  # nothing open yet
    orchestrator.register_agent(Quiet, "worker")
    orchestrator.start()
    assert orchestrator.join() == []
    assert orchestrator.reopen_logs().reopened == ()  # its files closed with it


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("logs_dir", "", "logs_dir: "),
        ("logs_dir", 3, "logs_dir: "),
        ("logs_dir", True, "logs_dir: "),
        ("log_max_bytes", -1, "log_max_bytes: "),
        ("log_max_bytes", True, "log_max_bytes: "),
        ("log_backups", -1, "log_backups: "),
        ("log_backups", "5", "log_backups: "),
        ("output_tail_lines", 0, "output_tail_lines: "),
        ("output_tail_bytes", 0, "output_tail_bytes: "),
    ],
)
def test_bad_output_settings_are_refused_naming_the_field(
    field: str, value: object, message: str
) -> None:
    settings: dict[str, Any] = {field: value}
    with pytest.raises(ConfigError, match=message):
        Orchestrator.Config(**settings)


def test_logs_dir_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    config = Orchestrator.Config()
    assert config.logs_dir == "auto"
    assert config.resolve_logs_dir("my app") == (
        tmp_path / "state/pyorchestrate/logs/my_app"
    )
    monkeypatch.delenv("XDG_STATE_HOME")
    assert (
        config.resolve_logs_dir("x")
        == Path.home() / ".local/state/pyorchestrate/logs/x"
    )
    for off in (None, False, "off"):
        assert Orchestrator.Config(logs_dir=off).resolve_logs_dir("x") is None
    monkeypatch.chdir(tmp_path)
    assert Orchestrator.Config(logs_dir="logs").resolve_logs_dir("x") == (
        tmp_path / "logs"
    )
    assert Orchestrator.Config(logs_dir="~/l").logs_dir == Path.home() / "l"
    assert Orchestrator.Config(logs_dir=tmp_path).to_dict()["logs_dir"] == str(tmp_path)
