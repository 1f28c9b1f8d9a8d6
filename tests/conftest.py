"""Shared fixtures: the agent flavour, recorders, and a leak check on every test."""

from __future__ import annotations

import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pyorchestrate.testing import EventRecorder

# Each test run gets its own runtime directory, so the default per-user socket
# directory ($XDG_RUNTIME_DIR/pyorchestrate) is private to this run: another run on
# the same machine cannot collide with it or trip its leak check. Subprocesses
# (examples, the CLI) inherit it.
_RUNTIME_DIR = Path(tempfile.mkdtemp(prefix="po-run-", dir="/tmp"))
os.environ["XDG_RUNTIME_DIR"] = str(_RUNTIME_DIR)
# Likewise the notifiers' default state file ($XDG_STATE_HOME/pyorchestrate/...): a
# test must never write to the real ~/.local/state.
os.environ["XDG_STATE_HOME"] = str(_RUNTIME_DIR / "state")


# What the user's own state directory holds before the run: no test may add to it
# (a subprocess started with a bare environment would, without XDG_STATE_HOME).
_USER_STATE = Path.home() / ".local" / "state" / "pyorchestrate"


def _user_state() -> set[str]:
    if not _USER_STATE.is_dir():
        return set()
    return {str(p.relative_to(_USER_STATE)) for p in _USER_STATE.rglob("*")}


_USER_STATE_BEFORE = _user_state()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_RUNTIME_DIR, ignore_errors=True)
    added = sorted(_user_state() - _USER_STATE_BEFORE)
    if added:
        print(
            f"\nERROR: the tests wrote into {_USER_STATE} (pass XDG_STATE_HOME to "
            f"subprocesses started with a bare environment): {added[:10]}"
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(params=["thread", "process"])
def flavour(request: pytest.FixtureRequest) -> str:
    """Run a test once with thread agents and once with process agents."""
    if request.param == "process":
        request.applymarker(pytest.mark.process)
    return str(request.param)


@pytest.fixture
def recorder() -> EventRecorder:
    """An EventRecorder to attach to an orchestrator."""
    return EventRecorder()


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short temporary directory (Unix socket paths must stay under 108 bytes).

    Fails the test if a socket file is still in it at the end.
    """
    path = Path(tempfile.mkdtemp(prefix="po-", dir="/tmp"))
    yield path
    leaked = sorted(str(p) for p in path.rglob("*.sock"))
    for child in sorted(path.rglob("*"), reverse=True):
        child.unlink() if not child.is_dir() else child.rmdir()
    path.rmdir()
    if leaked:
        pytest.fail(f"test leaked socket files: {leaked}")


def _helper_pids() -> set[int]:
    """Processes multiprocessing keeps for the whole session (not leaks)."""
    pids = set()
    fs_pid = getattr(multiprocessing.forkserver._forkserver, "_forkserver_pid", None)
    rt_pid = getattr(multiprocessing.resource_tracker._resource_tracker, "_pid", None)
    for pid in (fs_pid, rt_pid):
        if pid:
            pids.add(pid)
    return pids


def _socket_files() -> set[str]:
    """Sockets in the default per-user directory (custom paths live in short_tmp,
    which checks its own; scanning all of /tmp would see other test runs' sockets)."""
    from pyorchestrate.core.control.paths import default_socket_dir

    base = default_socket_dir()
    return {str(p) for p in base.glob("*.sock")} if base.is_dir() else set()


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves a child process, one of our threads, or a socket behind."""
    threads_before = set(threading.enumerate())
    sockets_before = _socket_files()
    yield
    me = psutil.Process()
    deadline = time.monotonic() + 5.0
    while True:
        helpers = _helper_pids()
        children = []
        for child in me.children(recursive=True):
            try:
                if child.pid in helpers or child.status() == psutil.STATUS_ZOMBIE:
                    continue
            except psutil.NoSuchProcess:
                continue
            children.append(child)
        threads = [
            t
            for t in threading.enumerate()
            if t not in threads_before
            and t.is_alive()
            and (not t.daemon or t.name.startswith(("pyorchestrate", "notifiers")))
        ]
        if not children and not threads:
            break
        if time.monotonic() > deadline:
            described = []
            for child in children:
                try:
                    described.append((child.pid, child.cmdline()[-1:]))
                    child.kill()
                except psutil.Error:
                    pass
            pytest.fail(
                f"test leaked: processes {described}, threads {[t.name for t in threads]}"
            )
        time.sleep(0.05)
    leaked_sockets = _socket_files() - sockets_before
    if leaked_sockets:
        pytest.fail(f"test leaked socket files: {sorted(leaked_sockets)}")
