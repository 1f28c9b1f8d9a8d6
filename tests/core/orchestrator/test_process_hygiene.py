"""Process hygiene: process groups, stop escalation, grandchildren, orphans, SIGINT.

A process agent leads a process group of its own: a stop (stop event, then SIGTERM to
the group after ``stop_timeout``, then SIGKILL to the group after ``kill_timeout``)
reaches what it started, whatever is left of the group when the agent ends is killed,
and an agent whose orchestrator dies (even by SIGKILL) ends its whole group. A thread
agent cannot be killed: it is QUARANTINED and reported as abandoned.

Every process a test here starts beyond the agents carries ``PYO_HYGIENE_MARKER=<a
token of that test>`` in its environment and is found by scanning ``/proc/*/environ``
(a grandchild whose agent died belongs to init, not to this process, so the suite's
``no_leaks`` check cannot see it). The ``marker`` fixture SIGKILLs whatever still
carries its token when the test ends, pass or fail.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from pyorchestrate import AgentState, OrchestratorEvent
from pyorchestrate.core.agent.flavours import ORPHAN_GRACE
from pyorchestrate.testing import EventRecorder, wait_until
from tests.agents import MARKER_ENV, ForeverProcess, HygieneProcess, StubbornThread

from .conftest import MakeOrchestrator

ROOT = Path(__file__).resolve().parents[3]

MARGIN = 1.5
"""Slack for a loaded 2-core machine on top of the configured budgets (seconds)."""

ORPHAN_BOUND = 2.0
"""Every agent and grandchild is gone this long after the orchestrator is SIGKILLed."""

ORPHAN_MARGIN = 0.5
"""Scheduling slack on top of :data:`ORPHAN_BOUND` (the design needs ~ORPHAN_GRACE)."""

STOP = {"stop_timeout": 0.5, "kill_timeout": 0.5}
"""Per-agent escalation budgets: SIGTERM 0.5 s after the stop, SIGKILL 0.5 s later."""


# ---------------------------------------------------------------- marked processes


def _environ(pid: int) -> bytes | None:
    """The environment of live process ``pid`` (``None``: gone, a zombie, not ours)."""
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone (a zombie raises ESRCH too), or another user's
        return None


def _carries(pid: int, marker: str) -> bool:
    """Whether ``pid`` is alive (not a zombie) and runs with ``marker`` (no pid reuse)."""
    environ = _environ(pid)
    return environ is not None and f"{MARKER_ENV}={marker}".encode() in (
        environ.split(b"\0")
    )


def _marked(marker: str) -> set[int]:
    """Live processes that carry ``marker`` in their environment."""
    with os.scandir("/proc") as entries:
        pids = [int(entry.name) for entry in entries if entry.name.isdigit()]
    return {pid for pid in pids if _carries(pid, marker)}


def _kill_marked(marker: str) -> set[int]:
    """SIGKILL every process that carries ``marker``; return their pids."""
    killed = set()
    for _ in range(3):  # a process may still be forking while we look
        pids = _marked(marker)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed |= pids
        if not pids:
            break
        wait_until(lambda: not _marked(marker), 2.0)
    return killed


@pytest.fixture
def marker() -> Iterator[str]:
    """A token for this test's processes; whatever carries it is SIGKILLed at the end."""
    token = f"hygiene-{uuid.uuid4().hex}"
    try:
        yield token
    finally:
        _kill_marked(token)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temp dir with a short path, for an orchestrator's TMPDIR: multiprocessing puts
    its forkserver's socket there, and a socket path must fit in 107 bytes (pytest's
    own tmp_path under xdist can be too long)."""
    path = Path(tempfile.mkdtemp(prefix="pyo-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- process groups


@pytest.mark.process
def test_each_process_agent_leads_its_own_process_group(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    entries = [orchestrator.register_agent(ForeverProcess, n) for n in ("a", "b")]
    orchestrator.start()
    for name in ("a", "b"):
        recorder.wait_for(OrchestratorEvent.AGENT_READY, name)
    pids = [entry.pid for entry in entries]
    assert all(pid is not None and pid != os.getpid() for pid in pids)
    groups = [os.getpgid(pid) for pid in pids]  # type: ignore[arg-type]
    assert groups == pids  # each leads its group ...
    assert os.getpgrp() not in groups  # ... not the test's (the terminal's) group
    # A group of its own, not a session of its own (setpgid, not setsid).
    assert {os.getsid(pid) for pid in pids} == {os.getsid(0)}  # type: ignore[arg-type]
    assert orchestrator.shutdown() == []


# ---------------------------------------------------------------- stop escalation


def _signal_log(path: Path) -> list[tuple[str, float]]:
    """The ``(what, monotonic time)`` lines a HygieneProcess wrote to ``path``."""
    if not path.exists():
        return []
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return [(what, float(when)) for what, when in lines]


@pytest.mark.process
@pytest.mark.slow
def test_stop_escalates_from_the_stop_event_to_sigterm_to_sigkill(
    make_orchestrator: MakeOrchestrator,
    recorder: EventRecorder,
    tmp_path: Path,
    marker: str,
) -> None:
    """Ignores the stop event and catches (ignores) SIGTERM: only SIGKILL ends it.

    Its two grandchildren get the SIGTERM with it (the one that does not ignore it
    records it and exits), and the SIGKILL. The orchestrator-wide budgets are long:
    the per-agent ``supervision`` must win.
    """
    log = tmp_path / "signals.log"
    orchestrator = make_orchestrator(agent_stop_timeout=20.0, termination_grace=20.0)
    recorder.attach(orchestrator)
    entry = orchestrator.register_agent(
        HygieneProcess,
        "mule",
        supervision=STOP,
        ignore_stop=True,
        catch=("SIGTERM",),
        log=str(log),
        marker=marker,
        children=2,
    )
    orchestrator.start()
    recorder.wait_for(OrchestratorEvent.AGENT_READY, "mule")
    assert len(_marked(marker)) == 2

    began = time.monotonic()
    orchestrator.stop_agent("mule")
    time.sleep(0.3)
    checked = time.monotonic()
    alive, state, caught = entry.is_alive(), entry.state, _signal_log(log)
    assert alive
    assert state is AgentState.STOPPING
    if checked - began < STOP["stop_timeout"]:  # else the machine was too slow to tell
        assert caught == []

    terminated = recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "mule")
    ended = entry.ended_mono
    assert ended is not None
    log_lines = _signal_log(log)
    sigterms = [when for what, when in log_lines if what == "SIGTERM"]
    assert len(sigterms) == 1, log_lines  # one SIGTERM, and nothing else is caught
    sigterm = sigterms[0]
    ticks = [when for what, when in log_lines if what == "tick"]
    grandchild = [when for what, when in log_lines if what == "grandchild-SIGTERM"]

    # SIGTERM came after the stop budget, not before.
    assert STOP["stop_timeout"] <= sigterm - began < STOP["stop_timeout"] + MARGIN
    # It went to the group: the grandchild got it too, long before the end.
    assert len(grandchild) == 1, log_lines
    assert began + STOP["stop_timeout"] <= grandchild[0] < ended - 0.2
    # The agent ran on after SIGTERM ...
    assert ticks and max(ticks) - sigterm > 0.2, (sigterm, ticks[-3:])
    # ... until SIGKILL, kill_timeout after SIGTERM (less the handler's own delay).
    assert ended - sigterm >= STOP["kill_timeout"] - 0.1
    total = ended - began
    assert total < STOP["stop_timeout"] + STOP["kill_timeout"] + MARGIN
    assert terminated["signal"] == "SIGKILL"
    assert terminated["exit_code"] == -signal.SIGKILL
    assert entry.state is AgentState.TERMINATED
    (error,) = recorder.of(OrchestratorEvent.AGENT_ERROR, "mule")
    assert error["reason"] == "killed"
    assert error["signal"] == "SIGKILL"
    # The grandchild that ignored SIGTERM went with the SIGKILL.
    assert wait_until(lambda: not _marked(marker), 2.0), sorted(_marked(marker))


@pytest.mark.process
def test_a_cooperative_agent_ends_before_any_signal(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, tmp_path: Path
) -> None:
    log = tmp_path / "signals.log"
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator)
    budget = {"stop_timeout": 3.0, "kill_timeout": 0.5}
    entry = orchestrator.register_agent(
        HygieneProcess, "polite", supervision=budget, catch=("SIGTERM",), log=str(log)
    )
    orchestrator.start()
    recorder.wait_for(OrchestratorEvent.AGENT_READY, "polite")
    began = time.monotonic()
    orchestrator.stop_agent("polite")
    terminated = recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "polite")
    assert entry.ended_mono is not None
    assert entry.ended_mono - began < budget["stop_timeout"]
    assert _signal_log(log) == []  # no SIGTERM reached it
    assert terminated["exit_code"] == 0
    assert terminated["signal"] is None
    assert terminated["termination_status"] == "success"
    assert recorder.of(OrchestratorEvent.AGENT_ERROR, "polite") == []


# ---------------------------------------------------------------- grandchildren

ENDINGS: dict[str, dict[str, Any]] = {
    # How the agent is made to end, its kwargs, and its exit code.
    "stop": {"kwargs": {}, "exit_code": 0},
    "stop-sigterm": {"kwargs": {"ignore_stop": True}, "exit_code": -signal.SIGTERM},
    "stop-sigkill": {
        "kwargs": {"ignore_stop": True, "catch": ("SIGTERM",)},
        "exit_code": -signal.SIGKILL,
    },
    "crash": {"kwargs": {}, "exit_code": 1},
    "kill-9": {"kwargs": {}, "exit_code": -signal.SIGKILL},
}


@pytest.mark.process
@pytest.mark.parametrize("ending", list(ENDINGS))
def test_grandchildren_never_survive_their_agent(
    make_orchestrator: MakeOrchestrator,
    recorder: EventRecorder,
    tmp_path: Path,
    marker: str,
    ending: str,
) -> None:
    """Two grandchildren (one ignores SIGTERM) are gone once the agent is reported ended.

    Ends: a cooperative stop, a stop escalated to SIGTERM (the agent dies of it, its
    grandchild ignoring SIGTERM does not), to SIGKILL, a crash, and ``kill -9`` of the
    agent alone: each time the orchestrator kills what is left of the group.
    """
    crash_flag = tmp_path / "crash"
    orchestrator = make_orchestrator(agent_stop_timeout=20.0, termination_grace=20.0)
    recorder.attach(orchestrator)
    entry = orchestrator.register_agent(
        HygieneProcess,
        "parent",
        supervision=STOP,
        marker=marker,
        children=2,
        crash_flag=str(crash_flag),
        **ENDINGS[ending]["kwargs"],
    )
    orchestrator.start()
    recorder.wait_for(OrchestratorEvent.AGENT_READY, "parent")
    agent_pid = entry.pid
    assert agent_pid is not None
    grandchildren = _marked(marker)
    assert len(grandchildren) == 2
    for pid in grandchildren:
        assert psutil.Process(pid).ppid() == agent_pid
        assert os.getpgid(pid) == agent_pid  # in the agent's group

    if ending.startswith("stop"):
        orchestrator.stop_agent("parent")
    elif ending == "crash":
        crash_flag.touch()
    else:
        os.kill(agent_pid, signal.SIGKILL)
    terminated = recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "parent")
    reported = time.monotonic()
    assert terminated["exit_code"] == ENDINGS[ending]["exit_code"], terminated
    assert wait_until(lambda: not _marked(marker), 2.0), (
        f"grandchildren left after {ending}: {sorted(_marked(marker))}"
    )
    assert time.monotonic() - reported < 2.0
    if ending == "crash":
        (error,) = recorder.of(OrchestratorEvent.AGENT_ERROR, "parent")
        assert error["reason"] == "exception"


# ---------------------------------------------------------------- a separate orchestrator


def _spawn_orchestrator(
    mode: str, workdir: Path, marker: str, tmpdir: Path
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """Run ``tests.hygiene_orchestrator_main`` in a session of its own.

    Its output goes to files: the agents inherit its stdout and stderr and outlive it.
    Everything it starts carries ``marker`` (it is in its environment).
    """
    stdout, stderr = workdir / "stdout", workdir / "stderr"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.hygiene_orchestrator_main",
                mode,
                str(workdir),
                marker,
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT),
                MARKER_ENV: marker,
                "TMPDIR": str(tmpdir),  # multiprocessing's pymp-* goes there
            },
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its group is its own: signalling it is safe
        )
    return proc, stdout, stderr


def _wait_for_line(
    proc: subprocess.Popen[bytes], stdout: Path, stderr: Path, prefix: str
) -> str:
    """The first line of ``stdout`` starting with ``prefix`` (fails after 60 s)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in stdout.read_text().splitlines():
            if line.startswith(prefix):
                return line
        if proc.poll() is not None and not any(
            line.startswith(prefix) for line in stdout.read_text().splitlines()
        ):
            break
        time.sleep(0.02)
    pytest.fail(
        f"no {prefix!r} line (exit {proc.poll()}): {stdout.read_text()[-2000:]!r} "
        f"{stderr.read_text()[-4000:]!r}"
    )


def _end(proc: subprocess.Popen[bytes], marker: str) -> None:
    """Leave nothing behind: the orchestrator, its group, everything it marked."""
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    _kill_marked(marker)


@pytest.mark.process
@pytest.mark.slow
def test_a_sigkilled_orchestrator_leaves_no_orphans(
    tmp_path: Path, marker: str, short_tmp: Path, record_property: Any
) -> None:
    """SIGKILL the orchestrator: its agents' parent watch ends every agent's group.

    ``plain`` and ``mixed`` die of the watch's SIGTERM (and SIGKILL their own group on
    the way out: ``mixed`` has a grandchild that ignores SIGTERM); ``stubborn`` ignores
    SIGTERM and goes with its grandchildren at the SIGKILL ``ORPHAN_GRACE`` later.
    """
    proc, stdout, stderr = _spawn_orchestrator("orphan", tmp_path, marker, short_tmp)
    try:
        agents: dict[str, int] = json.loads(
            _wait_for_line(proc, stdout, stderr, "READY").split(" ", 1)[1]
        )
        helpers = {child.pid: child for child in psutil.Process(proc.pid).children()}
        kinds = {" ".join(child.cmdline()) for child in helpers.values()}
        assert any("forkserver" in cmdline for cmdline in kinds), kinds
        everyone = _marked(marker)
        grandchildren = everyone - set(agents.values()) - set(helpers) - {proc.pid}
        assert len(grandchildren) == 5, (agents, helpers, everyone)
        for pid in agents.values():
            assert os.getpgid(pid) == pid != proc.pid
            assert psutil.Process(pid).ppid() in helpers  # the forkserver
        tracked = set(agents.values()) | grandchildren

        began = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        left = tracked
        while left and time.monotonic() - began < 10:
            time.sleep(0.01)
            left = {pid for pid in left if _carries(pid, marker)}
        elapsed = time.monotonic() - began
        record_property("orphan_exit_seconds", round(elapsed, 3))
        print(f"agents and grandchildren gone {elapsed:.3f} s after SIGKILL")
        assert proc.wait(10) == -signal.SIGKILL
        assert not left, f"still alive 10 s after the orchestrator died: {left}"
        assert ORPHAN_GRACE <= elapsed <= ORPHAN_BOUND + ORPHAN_MARGIN, elapsed

        # The forkserver and the resource tracker go too, and nothing else is left,
        # not even the directory of the forkserver's socket.
        assert wait_until(lambda: not _marked(marker), 10.0), sorted(_marked(marker))
        assert list(short_tmp.glob("pymp-*")) == []
        # The watch's SIGTERM went to the stubborn agent's whole group.
        stubborn = _signal_log(tmp_path / "stubborn.log")
        caught = sorted(what for what, _ in stubborn if what != "tick")
        assert caught == ["SIGTERM", "grandchild-SIGTERM"], stubborn
        said = stderr.read_text()
        assert said.count(f"orchestrator (pid {proc.pid}) is gone") == 3, said[-4000:]
    finally:
        _end(proc, marker)


@pytest.mark.process
@pytest.mark.slow
def test_ctrl_c_to_the_orchestrators_group_does_not_reach_process_agents(
    tmp_path: Path, marker: str, short_tmp: Path
) -> None:
    """SIGINT to the orchestrator's group (Ctrl+C) is the orchestrator's to handle.

    The agents record every SIGINT they get. One SIGINT sent to agent ``a`` itself
    shows the recording works; the one sent to the orchestrator's group must reach
    none of them (each leads its own group), and the orchestrator shuts down cleanly.
    """
    proc, stdout, stderr = _spawn_orchestrator("sigint", tmp_path, marker, short_tmp)
    try:
        agents: dict[str, int] = json.loads(
            _wait_for_line(proc, stdout, stderr, "READY").split(" ", 1)[1]
        )
        for pid in agents.values():
            assert os.getpgid(pid) == pid != os.getpgid(proc.pid)

        def sigints(name: str) -> int:
            path = tmp_path / f"{name}.log"
            return sum(what == "SIGINT" for what, _ in _signal_log(path))

        os.kill(agents["a"], signal.SIGINT)
        assert wait_until(lambda: sigints("a") == 1, 10.0)

        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(30) == 0, stderr.read_text()[-4000:]
        summary = json.loads(
            _wait_for_line(proc, stdout, stderr, "SHUTDOWN").split(" ", 1)[1]
        )
        assert summary == {"survivors": [], "exit_codes": {"a": 0, "b": 0, "c": 0}}
        assert {name: sigints(name) for name in agents} == {"a": 1, "b": 0, "c": 0}
        assert wait_until(lambda: not _marked(marker), 10.0), sorted(_marked(marker))
    finally:
        _end(proc, marker)


# ---------------------------------------------------------------- thread agents


def test_a_thread_agent_that_will_not_stop_is_abandoned_by_name(
    make_orchestrator: MakeOrchestrator,
    recorder: EventRecorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    orchestrator = make_orchestrator(agent_stop_timeout=20.0)
    recorder.attach(orchestrator)
    release = threading.Event()
    entry = orchestrator.register_agent(
        StubbornThread, "deaf", supervision={"stop_timeout": 0.3}, release=release
    )
    try:
        orchestrator.start()
        recorder.wait_for(OrchestratorEvent.AGENT_READY, "deaf")
        began = time.monotonic()
        orchestrator.stop_agent("deaf")
        error = recorder.wait_for(OrchestratorEvent.AGENT_ERROR, "deaf")
        elapsed = time.monotonic() - began
        assert 0.3 <= elapsed < 0.3 + MARGIN
        assert error["agent_name"] == "deaf"
        assert error["reason"] == "abandoned"
        assert "abandoned" in error["error_message"]
        assert entry.state is AgentState.QUARANTINED
        assert entry.is_alive()

        def logged() -> bool:  # the router logs it just after the event is emitted
            return any(
                r.levelno == logging.CRITICAL
                and "'deaf'" in r.getMessage()
                and "abandoned" in r.getMessage()
                for r in caplog.records
            )

        assert wait_until(logged, 5.0), caplog.text

        began = time.monotonic()
        assert orchestrator.shutdown(timeout=0.3) == ["deaf"]
        assert time.monotonic() - began < 0.3 + MARGIN
        assert entry.state is AgentState.QUARANTINED
        # Reported once, not again by the shutdown.
        assert len(recorder.of(OrchestratorEvent.AGENT_ERROR, "deaf")) == 1
    finally:
        release.set()
        if entry.is_initialized:
            entry.require_instance().join(10)
    assert not entry.is_alive()
