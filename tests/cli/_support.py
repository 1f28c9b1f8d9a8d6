"""Helpers for the CLI tests: a running orchestrator, and CLI processes to talk to it.

``Fleet`` is a real DAEMON orchestrator with three thread agents, started, with
``join()`` running in a background thread (as a real application would run it):

* ``forever`` loops until stopped (READY);
* ``boom`` raised ``ValueError("boom")`` at once (TERMINATED, last error set);
* ``quick`` depends on ``forever``, returned at once (TERMINATED).

``register`` adds more agents before the start.

``CliProcess`` runs the real ``pyorchestrate`` script (or ``python -m pyorchestrate``)
with its output on a pipe or a pseudo-terminal, and reads it with deadlines;
``invoke_cli`` runs one command line in this process, its output captured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import io
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pyorchestrate import Orchestrator, RunMode
from pyorchestrate.cli._app import run
from pyorchestrate.core.control.client import ControlClient
from pyorchestrate.core.errors import ControlError
from pyorchestrate.testing import wait_until
from tests.agents import agent

FAST: dict[str, Any] = {
    "check_interval": 0.05,
    "agent_start_timeout": 5.0,
    "agent_stop_timeout": 1.0,
    "termination_grace": 0.5,
}
"""Small timeouts so a test never waits long for a stop."""

SCRIPT = Path(sys.executable).with_name("pyorchestrate")
"""The console script installed beside this interpreter."""

ENTRY_POINTS: dict[str, list[str]] = {
    "script": [str(SCRIPT)],
    "module": [sys.executable, "-m", "pyorchestrate"],
}
"""The two ways to run the CLI as a process."""

WIDTH = 200
"""Terminal width for every CLI output (so tables never fold a cell)."""


class Fleet:
    """A running orchestrator with ``join()`` in a background thread."""

    def __init__(
        self,
        socket_path: Path | None,
        *,
        name: str = "cli-test",
        agents: bool = True,
        join: bool = True,
        register: Callable[[Orchestrator], None] | None = None,
        **config: Any,
    ) -> None:
        settings: dict[str, Any] = {"run_mode": RunMode.DAEMON, **FAST, **config}
        if socket_path is not None:
            settings["command_socket_path"] = str(socket_path)
        self.orchestrator = Orchestrator(name, Orchestrator.Config(**settings))
        self.socket = self.orchestrator.command_socket_path
        self.joined: list[str] | None = None
        self.join_error: BaseException | None = None
        self.thread: threading.Thread | None = None
        if agents:
            self.orchestrator.register_agent(agent("forever", "thread"), "forever")
            self.orchestrator.register_agent(agent("boom", "thread"), "boom")
            self.orchestrator.register_agent(agent("quick", "thread"), "quick")
            self.orchestrator.add_dependency("quick", ["forever"])
        if register is not None:
            register(self.orchestrator)
        self.orchestrator.start()
        if join:
            self.thread = threading.Thread(target=self._join, name="cli-test-join")
            self.thread.start()
            assert wait_until(self.answers, 10), f"nothing answers on {self.socket}"
        if agents:
            self.wait_state("forever", "READY")
            self.wait_state("boom", "TERMINATED")
            self.wait_state("quick", "TERMINATED")

    def _join(self) -> None:
        try:
            self.joined = self.orchestrator.join()
        except BaseException as exc:  # reported by the test
            self.join_error = exc

    def answers(self) -> bool:
        """Whether the command socket answers a request (any reply counts)."""
        try:
            with ControlClient(self.socket, timeout=1.0) as client:
                client.request("status")
        except ControlError:
            return False
        return True

    def status(self, name: str) -> dict[str, Any]:
        return self.orchestrator.agent_status(name)

    def wait_state(self, name: str, state: str, timeout: float = 10.0) -> None:
        assert wait_until(
            lambda: self.status(name)["lifecycle_state"] == state, timeout
        ), f"{name} is {self.status(name)['lifecycle_state']}, not {state}"

    def join_returned(self, timeout: float = 10.0) -> bool:
        """Whether the background ``join()`` has returned (waiting up to ``timeout``)."""
        assert self.thread is not None
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def close(self) -> None:
        """Shut everything down (idempotent); fail if ``join()`` does not return."""
        self.orchestrator.stop()
        if self.thread is not None:
            self.thread.join(15)
        self.orchestrator.shutdown(timeout=2.0)
        assert self.thread is None or not self.thread.is_alive(), "join() hung"


@dataclasses.dataclass(frozen=True)
class Result:
    """What one in-process CLI run printed, and its exit code."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def invoke_cli(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
    """Run ``pyorchestrate ARGS`` in this process: stdout and stderr are captured
    (not terminals, so tables are plain lines), ``env`` changes os.environ for the
    run (``None`` removes a name) and is undone after. Exceptions are not caught: a
    crash of the CLI fails the test with its traceback."""
    saved = {name: os.environ.get(name) for name in env or {}}
    out, err = io.StringIO(), io.StringIO()
    try:
        for name, value in (env or {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run([str(a) for a in args])
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return Result(code, out.getvalue(), err.getvalue())


def cli_env(**extra: str | None) -> dict[str, str]:
    """The environment of a CLI process: wide, uncoloured, no socket from outside."""
    env = dict(os.environ)
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR"):
        env.pop(name, None)
    env.pop("PYORCHESTRATE_SOCKET", None)
    env["COLUMNS"] = str(WIDTH)
    env["TERM"] = "xterm-256color"
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_cli(
    entry: Sequence[str],
    *args: str | Path,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion (``subprocess.run`` kills it on timeout)."""
    return subprocess.run(
        [*entry, *(str(a) for a in args)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env or cli_env(),
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def sigint_inheritable() -> Iterator[None]:
    """Let a child started inside get SIGINT's default action.

    A shell that starts a job in the background makes it ignore SIGINT, and children
    inherit an ignored signal across ``exec``; a caught one is reset to the default.
    """
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if previous is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


class CliProcess:
    """A CLI process whose output is read with deadlines (never by sleeping).

    With ``tty=True`` its stdout is a pseudo-terminal (as in a real shell, so rich's
    live display redraws); otherwise a pipe. Always use it in a ``with`` block: the
    process is killed and reaped on the way out.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        tty: bool = False,
        env: dict[str, str] | None,
        cwd: Path | None = None,
    ) -> None:
        self.output = bytearray()
        self._eof = False
        slave = None
        if tty:
            self._fd, slave = os.openpty()
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, WIDTH, 0, 0))
            stdout: Any = slave
        else:
            stdout = subprocess.PIPE
        with sigint_inheritable():
            self.proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.PIPE,
                env=env or cli_env(),
                cwd=cwd,
            )
        if slave is not None:
            os.close(slave)
        else:
            assert self.proc.stdout is not None
            self._fd = self.proc.stdout.fileno()

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def _read_some(self, timeout: float) -> None:
        ready, _, _ = select.select([self._fd], [], [], max(timeout, 0.0))
        if not ready:
            return
        try:
            chunk = os.read(self._fd, 65536)
        except OSError:  # a pty's master reads EIO once the child has gone
            chunk = b""
        if chunk:
            self.output += chunk
        else:
            self._eof = True

    def wait_for(self, found: Callable[[str], bool], timeout: float) -> bool:
        """Read output until ``found(all output so far)``; False after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not found(self.text):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._eof:
                return False
            self._read_some(remaining)
        return True

    def read_until(self, found: Callable[[str], bool], timeout: float = 15.0) -> str:
        """Read output until ``found(all output so far)``; fail after ``timeout``."""
        if not self.wait_for(found, timeout):
            raise AssertionError(
                f"not found in the output within {timeout} s "
                f"(exit code {self.proc.poll()}):\n{self.text}"
            )
        return self.text

    def interrupt(self, timeout: float = 15.0) -> tuple[int, str, str]:
        """Send SIGINT, wait for the exit; return (exit code, stdout, stderr)."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout)
        return code, self.drain(), self.stderr()

    def drain(self, timeout: float = 5.0) -> str:
        """Read what is left of the output (the process has ended)."""
        deadline = time.monotonic() + timeout
        while not self._eof and time.monotonic() < deadline:
            self._read_some(deadline - time.monotonic())
        return self.text

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")

    def __enter__(self) -> CliProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        else:
            os.close(self._fd)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
