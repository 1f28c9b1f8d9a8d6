"""CommandAgent (issue 15, item 1): any program as a supervised agent.

Real programs only (``sh -c``, ``sleep``, ``yes``, ``python -c``, ``cat /dev/urandom |
head -c``). Every process a test starts beyond the orchestrator carries
``PYO_CMD_MARKER=<token>`` in its environment (the commands' ``env``) and is found by
scanning ``/proc/*/environ``: a daemon a command forked belongs to init once the
command ended, where the suite's ``no_leaks`` check cannot see it. The ``marker``
fixture SIGKILLs whatever still carries its token when the test ends.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from pyorchestrate import (
    AgentState,
    CommandAgent,
    CommandConfig,
    ConfigError,
    Orchestrator,
    OrchestratorEvent,
)
from pyorchestrate.core.agent.command import ProcessGroupGuard
from pyorchestrate.core.control.client import ControlClient
from pyorchestrate.testing import EventRecorder, FakeClock, wait_until

ROOT = Path(__file__).resolve().parents[1]
MARKER_ENV = "PYO_CMD_MARKER"
E = OrchestratorEvent

FAST: dict[str, Any] = {
    "enable_command_interface": False,
    "check_interval": 0.05,
    "agent_start_timeout": 5.0,
    "agent_stop_timeout": 2.0,
    "termination_grace": 0.5,
}

MakeOrchestrator = Callable[..., Orchestrator]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[MakeOrchestrator]:
    """Orchestrators with small timeouts and output files in ``tmp_path/logs``,
    all shut down at the end."""
    made: list[Orchestrator] = []

    def build(clock: FakeClock | None = None, **overrides: Any) -> Orchestrator:
        settings = {**FAST, "logs_dir": tmp_path / "logs", **overrides}
        kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
        orchestrator = Orchestrator(
            f"cmd-{len(made)}", Orchestrator.Config(**settings), **kwargs
        )
        made.append(orchestrator)
        return orchestrator

    yield build
    for orchestrator in made:
        assert orchestrator.shutdown(timeout=3.0) == []


def _marked(marker: str) -> set[int]:
    """Live (not zombie) processes whose environment holds ``marker``."""
    needle = f"{MARKER_ENV}={marker}".encode()
    found = set()
    with os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                environ = Path(f"/proc/{entry.name}/environ").read_bytes()
            except OSError:  # gone, a zombie, or not ours
                continue
            if needle in environ.split(b"\0"):
                found.add(int(entry.name))
    return found


@pytest.fixture
def marker() -> Iterator[str]:
    """A token for this test's processes; whatever carries it is SIGKILLed at the end."""
    token = f"cmd-{uuid.uuid4().hex}"
    try:
        yield token
    finally:
        for pid in _marked(token):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("settings", "field", "says"),
    [
        ({"command": 42}, "command", "must be a list of strings or a string"),
        ({"command": {"a": 1}}, "command", "not dict"),
        ({"command": []}, "command", "must not be empty"),
        ({"command": "   "}, "command", "must not be empty"),
        ({"command": ["ls", 3]}, "command", "item 1 must be a string"),
        ({"command": [""]}, "command", "must not be empty"),
        ({"command": "echo 'unclosed"}, "command", "cannot be split"),
        ({"command": ["ls", "-l"], "shell": True}, "command", "one string"),
        ({"command": ["ls"], "env": {"N": 3}}, "env.N", "string"),
        ({"command": ["ls"], "env": {"A=B": "x"}}, "env", "not a valid variable"),
        ({"command": ["ls"], "stop_signal": "SIGNOPE"}, "stop_signal", "no signal"),
        ({"command": ["ls"], "ready_pattern": "(unclosed"}, "ready_pattern", "regular"),
        ({"command": ["ls"], "ready_after": 0}, "ready_after", "greater than 0"),
        (
            {"command": ["ls"], "supervision": {"heartbeat_timeout": 1.0}},
            "supervision.heartbeat_timeout",
            "heartbeat_on_output",
        ),
    ],
)
def test_bad_input_is_refused_at_registration_naming_the_field(
    make: MakeOrchestrator, settings: dict[str, Any], field: str, says: str
) -> None:
    orchestrator = make()
    with pytest.raises(ConfigError) as caught:
        orchestrator.register_agent(CommandAgent, "bad", **settings)
    assert field in str(caught.value)
    assert says in str(caught.value)
    assert "bad" not in orchestrator.registry  # nothing half-registered
    with pytest.raises(ConfigError, match=field.split(".")[0]):  # the Config alike
        CommandAgent.Config(**settings)


def test_a_secret_is_never_echoed_by_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        CommandConfig(command=["ls"], env={"API_TOKEN": "hunter2", "X": 1})
    assert "env.X" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_forms_of_the_command(make: MakeOrchestrator) -> None:
    orchestrator = make()
    split = orchestrator.register_agent(
        CommandAgent, "split", command="rsync -a '/my data' /backup"
    )
    listed = orchestrator.register_agent(
        CommandAgent,
        "listed",
        CommandAgent.Config(command=["restic", "backup", "/data"], cwd=Path("/tmp")),
        stop_signal="INT",
        success_exit_codes={0, 3},
    )
    shell = orchestrator.register_agent(
        CommandAgent, "shell", command="echo a | wc -c", shell=True
    )
    configs = [e.config for e in (split, listed, shell)]
    assert all(isinstance(c, CommandConfig) for c in configs)
    split_c, listed_c, shell_c = configs
    assert isinstance(split_c, CommandConfig)
    assert split_c.argv == ["rsync", "-a", "/my data", "/backup"]
    assert isinstance(listed_c, CommandConfig)
    assert listed_c.argv == ["restic", "backup", "/data"]
    assert listed_c.cwd == "/tmp"
    assert listed_c.stop_signal is signal.SIGINT
    # success_exit_codes is the supervisor's too (restart policy, failed ends).
    assert listed.supervision.success_exit_codes == {0, 3}
    assert isinstance(shell_c, CommandConfig)
    assert shell_c.argv == ["/bin/sh", "-c", "echo a | wc -c"]
    # A program that is not installed yet is accepted at registration.
    orchestrator.register_agent(CommandAgent, "later", command=["not-installed-yet"])


def test_secret_env_values_are_masked_wherever_the_config_is_shown(
    make: MakeOrchestrator, tmp_path: Path
) -> None:
    env = {"API_TOKEN": "t0k3n", "DB_PASSWORD": "pa55", "aws_secret": "s3", "MODE": "x"}
    orchestrator = make()
    orchestrator.register_agent(
        CommandAgent,
        "job",
        command=["sh", "-c", 'echo "$MODE"'],
        cwd=str(tmp_path),
        env={**env, "SSH_KEY_PATH": "/k"},
    )
    shown = orchestrator.agent_details("job").config
    assert shown is not None
    assert shown["command"] == ["sh", "-c", 'echo "$MODE"']
    assert shown["cwd"] == str(tmp_path)
    assert shown["env"] == {
        "API_TOKEN": "****",
        "DB_PASSWORD": "****",
        "aws_secret": "****",
        "MODE": "x",
        "SSH_KEY_PATH": "****",
    }
    report = json.dumps(orchestrator.report(), default=str)
    config = orchestrator.get_agent("job").config
    for secret in ("t0k3n", "pa55", "s3", "/k"):
        assert secret not in report
        assert secret not in repr(config)
    # The program gets the real values.
    assert isinstance(config, CommandConfig)
    assert (config.environment() or {})["API_TOKEN"] == "t0k3n"


# ---------------------------------------------------------------- running


def test_a_command_runs_with_its_cwd_env_and_null_stdin(
    make: MakeOrchestrator, recorder: EventRecorder, tmp_path: Path
) -> None:
    """Its stdout reaches the tail and its log file; ``cat`` sees end-of-file at once
    (stdin is /dev/null); it leads a process group of its own; the pid is its own."""
    orchestrator = make()
    recorder.attach(orchestrator)
    entry = orchestrator.register_agent(
        CommandAgent,
        "job",
        command=[
            "sh",
            "-c",
            'cat; pwd; echo "$GREETING"; echo oops >&2; ps -o pgid= $$',
        ],
        cwd=tmp_path,
        env={"GREETING": "hello from sh"},
    )
    orchestrator.start()
    ended = recorder.wait_for(E.AGENT_TERMINATED, "job")
    started = recorder.of(E.AGENT_STARTED, "job")[0]
    assert ended["exit_code"] == 0
    assert ended["signal"] is None
    assert ended["termination_status"] == "success"
    assert started["pid"] == ended["pid"] != os.getpid()
    lines = ended["output_tail"].splitlines()
    assert lines[:3] == [str(tmp_path), "hello from sh", "oops"]
    assert int(lines[3]) == ended["pid"]  # its group is its own
    assert recorder.of(E.AGENT_ERROR, "job") == []
    assert recorder.names("job")[:4] == [
        "agent_registered",
        "agent_started",
        "agent_ready",
        "agent_terminated",
    ]
    assert entry.state is AgentState.TERMINATED
    stdout_log = orchestrator.log_files("job", "stdout")[-1].read_text()
    assert "hello from sh" in stdout_log
    assert "oops" not in stdout_log
    assert "oops" in orchestrator.log_files("job", "stderr")[-1].read_text()


def test_clean_env_replaces_the_environment(
    make: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make()
    recorder.attach(orchestrator)
    os.environ["PYO_CMD_INHERITED"] = "yes"
    try:
        for name, replace in (("merged", False), ("clean", True)):
            orchestrator.register_agent(
                CommandAgent,
                name,
                command=[
                    "/bin/sh",
                    "-c",
                    'echo "${PYO_CMD_INHERITED:-none} $ONLY"',
                ],
                env={"ONLY": "given"},
                clean_env=replace,
            )
        orchestrator.start()
        merged = recorder.wait_for(E.AGENT_TERMINATED, "merged")
        clean = recorder.wait_for(E.AGENT_TERMINATED, "clean")
    finally:
        del os.environ["PYO_CMD_INHERITED"]
    assert merged["output_tail"] == "yes given"
    assert clean["output_tail"] == "none given"


def test_exit_codes_decide_success_or_error(
    make: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make()
    recorder.attach(orchestrator)
    for name, codes in (("fails", None), ("tolerated", (0, 3))):
        orchestrator.register_agent(
            CommandAgent,
            name,
            command="sh -c 'echo about to fail; exit 3'",
            success_exit_codes=codes,
        )
    orchestrator.start()
    failed = recorder.wait_for(E.AGENT_TERMINATED, "fails")
    tolerated = recorder.wait_for(E.AGENT_TERMINATED, "tolerated")
    assert failed["exit_code"] == tolerated["exit_code"] == 3
    (error,) = recorder.of(E.AGENT_ERROR, "fails")
    assert error["reason"] == "exit_code"
    assert error["error_message"] == "exited with code 3"
    # The error says the code itself: an alert reads "exit code 3", not "unknown".
    assert (error["exit_code"], error["signal"]) == (3, None)
    assert error["output_tail"] == "about to fail"
    assert failed["termination_status"] == "error"
    assert recorder.of(E.AGENT_ERROR, "tolerated") == []
    assert tolerated["termination_status"] == "success"
    # A failed batch is a failed run: a script ends with exit code 1.
    orchestrator.join()
    assert orchestrator.exit_code == 1
    (failure,) = orchestrator.outcome().failed
    assert (failure.name, failure.reason) == ("fails", "exit_code")


@pytest.mark.parametrize("kind", ["missing", "not-executable", "bad-cwd"])
def test_a_program_that_cannot_start_is_a_spawn_error_without_restarts(
    make: MakeOrchestrator, recorder: EventRecorder, tmp_path: Path, kind: str
) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    command, cwd, says = {
        "missing": (["no-such-program-pyo", "-x"], None, "No such file"),
        "not-executable": ([str(script)], None, "Permission denied"),
        "bad-cwd": (["ls"], str(tmp_path / "nowhere"), "nowhere"),
    }[kind]
    orchestrator = make()
    recorder.attach(orchestrator)
    entry = orchestrator.register_agent(
        CommandAgent,
        "job",
        command=command,
        cwd=cwd,
        supervision={"restart": "always", "backoff_initial": 0.0},
    )
    orchestrator.start()
    error = recorder.wait_for(E.AGENT_ERROR, "job")
    assert error["reason"] == "spawn"
    assert repr(command[0]) in error["error_message"]
    assert says in error["error_message"]
    assert entry.state is AgentState.FAILED
    assert entry.starts == 1
    assert recorder.of(E.AGENT_RESTARTING, "job") == []


def test_sigkill_is_an_error_naming_the_signal_with_the_output_tail(
    make: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make()
    recorder.attach(orchestrator)
    entry = orchestrator.register_agent(
        CommandAgent,
        "victim",
        command=["sh", "-c", "echo last words; exec sleep 30"],
        ready_pattern="last words",
    )
    orchestrator.start()
    recorder.wait_for(E.AGENT_READY, "victim")
    assert entry.pid is not None
    os.kill(entry.pid, signal.SIGKILL)
    ended = recorder.wait_for(E.AGENT_TERMINATED, "victim")
    (error,) = recorder.of(E.AGENT_ERROR, "victim")
    assert error["reason"] == "killed"
    assert error["signal"] == "SIGKILL"
    assert "SIGKILL" in error["error_message"]
    assert error["output_tail"] == "last words"
    assert ended["exit_code"] == -signal.SIGKILL


def test_binary_output_at_speed_is_captured(
    make: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make()
    recorder.attach(orchestrator)
    orchestrator.register_agent(
        CommandAgent,
        "noise",
        command="cat /dev/urandom | head -c 300000; echo; echo done",
        shell=True,
    )
    orchestrator.register_agent(
        CommandAgent, "yes", command="yes pyo | head -n 20000", shell=True
    )
    orchestrator.start()
    noise = recorder.wait_for(E.AGENT_TERMINATED, "noise")
    many = recorder.wait_for(E.AGENT_TERMINATED, "yes")
    assert noise["exit_code"] == many["exit_code"] == 0
    assert noise["output_tail"].endswith("done")
    assert many["output_tail"].splitlines()[-1] == "pyo"


# ---------------------------------------------------------------- stopping


def test_a_stop_sends_stop_signal_and_is_no_error(
    make: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make()
    recorder.attach(orchestrator)
    orchestrator.register_agent(CommandAgent, "sleeper", command=["sleep", "30"])
    orchestrator.register_agent(
        CommandAgent,
        "trapper",
        command=[
            "sh",
            "-c",
            "trap 'echo got INT; exit 0' INT; echo up; while :; do sleep 0.05; done",
        ],
        stop_signal=signal.SIGINT,
        ready_pattern="up",
    )
    orchestrator.start()
    recorder.wait_for(E.AGENT_READY, "sleeper")
    recorder.wait_for(E.AGENT_READY, "trapper")
    orchestrator.stop_agent("sleeper")
    orchestrator.stop_agent("trapper")
    sleeper = recorder.wait_for(E.AGENT_TERMINATED, "sleeper")
    trapper = recorder.wait_for(E.AGENT_TERMINATED, "trapper")
    assert sleeper["signal"] == "SIGTERM"
    assert trapper["exit_code"] == 0
    assert "got INT" in trapper["output_tail"]
    assert recorder.of(E.AGENT_ERROR) == []


def test_a_stop_escalates_to_sigkill_and_no_grandchild_survives(
    make: MakeOrchestrator,
    recorder: EventRecorder,
    marker: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The command ignores SIGTERM and has a child that ignores it too: SIGKILL to
    the group, at the stop deadline (no second SIGTERM first), ends both."""
    caplog.set_level(logging.WARNING, logger="pyorchestrate.lifecycle")
    orchestrator = make(agent_stop_timeout=20.0)
    recorder.attach(orchestrator)
    entry = orchestrator.register_agent(
        CommandAgent,
        "mule",
        command=[
            "sh",
            "-c",
            "trap '' TERM; sleep 30 & echo up; wait",
        ],
        env={MARKER_ENV: marker},
        ready_pattern="up",
        supervision={"stop_timeout": 0.3},
    )
    orchestrator.start()
    recorder.wait_for(E.AGENT_READY, "mule")
    assert wait_until(lambda: len(_marked(marker)) == 2, 5.0)  # sh and its sleep
    assert {os.getpgid(pid) for pid in _marked(marker)} == {entry.pid}
    orchestrator.stop_agent("mule")
    ended = recorder.wait_for(E.AGENT_TERMINATED, "mule")
    assert ended["signal"] == "SIGKILL"
    assert wait_until(lambda: not _marked(marker), 3.0), _marked(marker)
    escalations = [r.getMessage() for r in caplog.records if "'mule'" in r.getMessage()]
    assert any(m.endswith("SIGKILL to its process group") for m in escalations)
    assert not any("SIGTERM" in m for m in escalations), escalations


def test_a_daemon_forked_by_a_job_is_killed_with_its_group(
    make: MakeOrchestrator, recorder: EventRecorder, marker: str
) -> None:
    orchestrator = make()
    recorder.attach(orchestrator)
    orchestrator.register_agent(
        CommandAgent,
        "forker",
        command=["sh", "-c", "sleep 30 & echo forked $!"],
        env={MARKER_ENV: marker},
    )
    orchestrator.start()
    ended = recorder.wait_for(E.AGENT_TERMINATED, "forker")
    assert ended["exit_code"] == 0
    assert ended["output_tail"].startswith("forked ")
    assert wait_until(lambda: not _marked(marker), 3.0), _marked(marker)


def test_a_job_that_closes_its_output_is_still_supervised(
    make: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make()
    recorder.attach(orchestrator)
    entry = orchestrator.register_agent(
        CommandAgent,
        "quiet",
        command=["sh", "-c", "echo bye; exec >&- 2>&-; sleep 0.5; exit 4"],
    )
    orchestrator.start()
    recorder.wait_for(E.AGENT_READY, "quiet")
    ended = recorder.wait_for(E.AGENT_TERMINATED, "quiet")
    assert ended["exit_code"] == 4
    (error,) = recorder.of(E.AGENT_ERROR, "quiet")
    assert error["reason"] == "exit_code"
    assert error["output_tail"] == "bye"
    assert entry.state is AgentState.TERMINATED


# ---------------------------------------------------------------- readiness, watchdog


def test_ready_after_waits_that_long_alive(
    make: MakeOrchestrator, recorder: EventRecorder
) -> None:
    """On a fake clock: READY only once the clock passed ``ready_after``."""
    clock = FakeClock()
    orchestrator = make(clock=clock)
    recorder.attach(orchestrator)
    entry = orchestrator.register_agent(
        CommandAgent, "slow", command=["sleep", "30"], ready_after=5.0
    )
    orchestrator.start()
    recorder.wait_for(E.AGENT_STARTED, "slow")
    clock.advance(4.0)
    time.sleep(0.2)  # several router turns: none may report READY
    assert recorder.of(E.AGENT_READY, "slow") == []
    assert entry.state is AgentState.RUNNING
    clock.advance(1.5)
    recorder.wait_for(E.AGENT_READY, "slow")
    assert orchestrator.get_agent("slow").state.value == "READY"


def test_ready_pattern_gates_dependents(
    make: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make()
    recorder.attach(orchestrator)
    orchestrator.register_agent(
        CommandAgent,
        "server",
        command=[
            sys.executable,
            "-c",
            "import time; print('warming up', flush=True); time.sleep(0.3); "
            "print('listening on 8080', flush=True); time.sleep(30)",
        ],
        ready_pattern=r"listening on \d+",
    )
    orchestrator.register_agent(CommandAgent, "client", command=["sleep", "30"])
    orchestrator.add_dependency("client", "server")
    orchestrator.start()
    recorder.wait_for(E.AGENT_STARTED, "client")
    ready = recorder.wait_for(E.AGENT_READY, "server")
    client = recorder.wait_for(E.AGENT_STARTED, "client")
    assert ready["seq"] < client["seq"]
    tail = orchestrator.output_tail("server")
    assert tail is not None
    assert tail.splitlines()[:2] == ["warming up", "listening on 8080"]


def test_output_lines_are_heartbeats_and_silence_fires_the_watchdog(
    make: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make()
    recorder.attach(orchestrator)
    watchdog = {"heartbeat_timeout": 1.5}
    orchestrator.register_agent(
        CommandAgent,
        "chatty",
        command=["sh", "-c", "while :; do echo tick; sleep 0.05; done"],
        heartbeat_on_output=True,
        supervision=watchdog,
    )
    orchestrator.register_agent(
        CommandAgent,
        "silent",
        command=["sh", "-c", "echo once; exec sleep 30"],
        heartbeat_on_output=True,
        supervision=watchdog,
    )
    orchestrator.start()
    recorder.wait_for(E.AGENT_WATCHDOG_TIMEOUT, "silent")
    ended = recorder.wait_for(E.AGENT_TERMINATED, "silent")
    assert ended["signal"] == "SIGTERM"
    assert len(recorder.of(E.AGENT_HEARTBEAT, "chatty")) >= 2
    assert recorder.of(E.AGENT_WATCHDOG_TIMEOUT, "chatty") == []
    assert orchestrator.get_agent("chatty").state is AgentState.READY


def test_restart_policy_applies_to_commands(
    make: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make()
    recorder.attach(orchestrator)
    entry = orchestrator.register_agent(
        CommandAgent,
        "crasher",
        command=["sh", "-c", "echo crash; exit 2"],
        supervision={
            "restart": "on-failure",
            "max_restarts": 2,
            "backoff_initial": 0.0,
        },
    )
    orchestrator.start()
    fatal = recorder.wait_for(E.AGENT_FATAL, "crasher")
    assert fatal["reason"] == "max_restarts"
    assert entry.starts == 3
    assert len(recorder.of(E.AGENT_RESTARTING, "crasher")) == 2
    assert entry.state is AgentState.FATAL


# ---------------------------------------------------------------- orchestrator death

_ORCHESTRATOR = textwrap.dedent(
    """
    import json, os, sys
    from pyorchestrate import CommandAgent, Orchestrator, OrchestratorEvent
    from pyorchestrate.testing import EventRecorder

    marker = sys.argv[1]
    o = Orchestrator("doomed", Orchestrator.Config(
        enable_command_interface=False, logs_dir=None))
    r = EventRecorder().attach(o)
    e = o.register_agent(
        CommandAgent, "job",
        command=["sh", "-c", "trap '' TERM; sleep 60 & echo up; wait"],
        env={"PYO_CMD_MARKER": marker}, ready_pattern="up")
    o.start()
    r.wait_for(OrchestratorEvent.AGENT_READY, "job")
    guard = o.lifecycle.command_guard.pid
    print("PIDS", json.dumps({"job": e.pid, "guard": guard}), flush=True)
    o.join()
    """
)


def test_commands_end_when_the_orchestrator_is_sigkilled(marker: str) -> None:
    """The guard's pipe closes: SIGTERM to the group (ignored here), then SIGKILL."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _ORCHESTRATOR, marker],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        while line and not line.startswith(b"PIDS "):  # "[job] up" comes first
            line = proc.stdout.readline()
        pids = json.loads(line.removeprefix(b"PIDS "))
        assert wait_until(lambda: len(_marked(marker)) >= 2, 5.0)
        proc.kill()
        proc.wait(10)
        assert wait_until(lambda: not _marked(marker), 5.0), _marked(marker)
        # The guard ended too (it was the orchestrator's child: init reaped it).
        assert wait_until(lambda: not Path(f"/proc/{pids['guard']}").exists(), 5.0)
    finally:
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_ps_and_status_over_the_socket_show_the_command_with_secrets_masked(
    short_tmp: Path, make: MakeOrchestrator, recorder: EventRecorder
) -> None:
    # short_tmp first: it is checked for sockets after the orchestrator shut down.
    socket_path = short_tmp / "o.sock"
    orchestrator = make(
        enable_command_interface=True, command_socket_path=str(socket_path)
    )
    recorder.attach(orchestrator)
    orchestrator.register_agent(
        CommandAgent,
        "backup",
        command=["sleep", "30"],
        cwd=str(short_tmp),
        env={"RESTIC_PASSWORD": "correct horse", "RESTIC_REPOSITORY": "/srv/repo"},
    )
    orchestrator.start()
    recorder.wait_for(E.AGENT_READY, "backup")
    with ControlClient(socket_path, timeout=5.0) as client:
        listing = json.dumps(client.ps())
        status = client.status("backup")
    assert "CommandAgent" in listing
    shown = json.dumps(status)
    assert "correct horse" not in shown
    assert "correct horse" not in listing
    (config,) = _find_key(status, "config")
    assert config["command_line"] == "sleep 30"
    assert config["command"] == ["sleep", "30"]
    assert config["cwd"] == str(short_tmp)
    assert config["env"] == {
        "RESTIC_PASSWORD": "****",
        "RESTIC_REPOSITORY": "/srv/repo",
    }


def _find_key(data: object, key: str) -> list[Any]:
    """Every value stored under ``key`` anywhere in ``data``."""
    found: list[Any] = []
    if isinstance(data, dict):
        for k, value in data.items():
            if k == key:
                found.append(value)
            found.extend(_find_key(value, key))
    elif isinstance(data, list):
        for value in data:
            found.extend(_find_key(value, key))
    return found


def _open_fds() -> dict[str, str]:
    """This process's descriptors and what each is open on."""
    found = {}
    for path in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone
            found[path.name] = str(path.readlink())
    return found


def test_no_descriptor_is_left_behind() -> None:
    """pidfds, link pipes, output pipes and the guard's pipe are all closed once the
    orchestrator is shut down and gone."""
    gc.collect()
    before = _open_fds()
    orchestrator = Orchestrator("fds", Orchestrator.Config(**FAST, logs_dir=None))
    recorder = EventRecorder().attach(orchestrator)
    orchestrator.register_agent(CommandAgent, "ok", command=["true"])
    orchestrator.register_agent(CommandAgent, "bad", command=["sh", "-c", "exit 3"])
    orchestrator.register_agent(CommandAgent, "missing", command=["no-such-pyo"])
    orchestrator.register_agent(CommandAgent, "long", command=["sleep", "30"])
    orchestrator.start()
    for name in ("ok", "bad"):
        recorder.wait_for(E.AGENT_TERMINATED, name)
    recorder.wait_for(E.AGENT_READY, "long")
    assert orchestrator.shutdown(timeout=3.0) == []
    del orchestrator, recorder
    gc.collect()
    left = {fd: what for fd, what in _open_fds().items() if before.get(fd) != what}
    assert left == {}


def test_a_restart_runs_the_program_again_and_no_python_runs_for_it(
    make: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make()
    recorder.attach(orchestrator)
    entry = orchestrator.register_agent(CommandAgent, "svc", command=["sleep", "30"])
    orchestrator.start()
    first = recorder.wait_for(E.AGENT_READY, "svc")
    # The orchestrator's children: the program and the guard's sh, no interpreter.
    helpers = _session_helpers()
    children = [c for c in psutil.Process().children() if c.pid not in helpers]
    assert sorted(c.name() for c in children) == ["sh", "sleep"]
    orchestrator.restart_agent("svc")
    second = recorder.wait_for(E.AGENT_READY, "svc", count=2)
    assert second["pid"] != first["pid"]
    assert second["generation_id"] == first["generation_id"] + 1
    assert entry.state is AgentState.READY
    assert recorder.of(E.AGENT_ERROR, "svc") == []


def _session_helpers() -> set[int]:
    """multiprocessing's forkserver and resource tracker, if an earlier test of the
    session started them (they are not this test's)."""
    import multiprocessing.forkserver
    import multiprocessing.resource_tracker

    found = set()
    for pid in (
        getattr(multiprocessing.forkserver._forkserver, "_forkserver_pid", None),
        getattr(multiprocessing.resource_tracker._resource_tracker, "_pid", None),
    ):
        if pid:
            found.add(pid)
    return found


class SlowToStop(CommandAgent):
    """Its ``on_stop`` returns only after the program has died of the stop signal, so
    the stop event (set after ``on_stop``) comes after the end is seen."""

    def on_stop(self) -> None:
        super().on_stop()
        sentinel = self.sentinel
        assert sentinel is not None
        select.select([sentinel], [], [], 5.0)  # the program has ended
        time.sleep(0.2)  # and the router has seen it


def test_an_end_by_the_stop_signal_is_no_error_even_before_the_stop_event(
    make: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make()
    recorder.attach(orchestrator)
    orchestrator.register_agent(SlowToStop, "slow", command=["sleep", "30"])
    orchestrator.start()
    recorder.wait_for(E.AGENT_READY, "slow")
    orchestrator.stop_agent("slow")
    ended = recorder.wait_for(E.AGENT_TERMINATED, "slow")
    assert ended["signal"] == "SIGTERM"
    assert ended["termination_status"] == "warning"  # ended by a signal, as asked
    assert recorder.of(E.AGENT_ERROR, "slow") == []


def test_a_killed_guard_is_replaced_and_close_ends_what_is_still_listed(
    marker: str,
) -> None:
    """Someone kills the guard: the next change starts another with every group.
    Closing with groups still listed (abandoned commands) ends them."""
    env = {**os.environ, MARKER_ENV: marker}
    sleeps = [
        subprocess.Popen(["sleep", "30"], env=env, process_group=0) for _ in range(3)
    ]
    guard = ProcessGroupGuard("test")
    try:
        guard.add(sleeps[0].pid)
        guard.add(sleeps[1].pid)
        first = guard.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        # A zombie: it has closed its end of the pipe (an empty cmdline comes first).
        assert wait_until(lambda: _exited_child(first))
        guard.add(sleeps[2].pid)  # fails on the dead guard: a new one takes over
        guard.discard(sleeps[1].pid)  # no longer ours to end
        assert guard.pid not in (None, first)
        assert guard.close(timeout=3.0)
        for proc in (sleeps[0], sleeps[2]):
            assert proc.wait(5) == -signal.SIGTERM
        assert sleeps[1].poll() is None
    finally:
        guard.close(timeout=3.0)
        for proc in sleeps:
            proc.kill()
            proc.wait(5)


def _exited_child(pid: int) -> bool:
    """Whether our child ``pid`` has exited (not reaped)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None
