"""Where an agent runs: in a thread of this process, or in a process of its own.

A flavour supplies ``start``, ``join``, ``is_alive``, ``pid``, ``exitcode`` and
``sentinel``. Both flavours run the same final ``run()``, so they emit identical
events.

Process agents start with the ``forkserver`` method by default (``spawn`` where it is
unavailable): on this project's 2-core machine (``bench/bench_start.py``) a process
agent reports START about 17 ms after ``start`` with forkserver, against about 210 ms
with spawn, whose fresh interpreter must import pyorchestrate and pydantic each time
(the forkserver has them preloaded). Neither forks a process that has threads.
Choose per orchestrator with ``Orchestrator.Config(start_method=...)``.

A process agent leads a process group of its own, so a stop reaches what it started
too: SIGTERM and SIGKILL go to the whole group, and whatever is left of the group when
the agent ends is killed (a grandchild that starts a new session of its own escapes;
nothing short of cgroups catches that). Each process agent also watches the
orchestrator's pid: if the orchestrator dies, even by SIGKILL, the agent's group gets
SIGTERM at once and SIGKILL one second later.

The orchestrator watches a process agent through a pidfd of the agent's own pid, not
through the forkserver's status pipe: an agent does not depend on the forkserver
staying alive (the OOM killer or a stray ``kill`` can end it as easily as an agent).
Its exit status comes from the forkserver while there is one; when the forkserver died
first, the status is lost with it (:attr:`ProcessFlavour.exit_status_lost`) and the
orchestrator goes by what the agent reported before it ended.

A process agent's stdout and stderr (fds 1 and 2) are pipes the orchestrator reads
(:meth:`ProcessFlavour.capture_output`, ``pyorchestrate.core.utilities.output``), and
unbuffered in the agent (as with ``python -u``), and
its ``logging`` records go to the orchestrator over its link
(``pyorchestrate.core.utilities.agentlog``), at the orchestrator's thresholds as they
were when it started.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import multiprocessing
import os
import signal
import sys
import threading
import time
import weakref
from multiprocessing import reduction
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar, Literal

from ..errors import TerminateAgent
from ..utilities.agentlog import forward_logging, logging_levels
from ..utilities.fdwait import readable
from .flags import Flavour
from .status import AgentTerminationStatus

__all__ = [
    "DEFAULT_START_METHOD",
    "ProcessFlavour",
    "StartMethod",
    "ThreadFlavour",
    "expected_exit_code",
    "process_context",
    "raise_open_files_limit",
]

StartMethod = Literal["forkserver", "spawn"]

DEFAULT_START_METHOD: StartMethod = (
    "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
)

_PRELOAD = ["__main__", "pyorchestrate.core.agent"]
"""What the forkserver imports once, so agents forked from it need not.

``"__main__"``: the script that was run, imported once in the forkserver instead of in
every process agent, on Pythons whose forkserver receives the script's path (CPython
gh-126631; up to 3.13.0 it never did, and each agent imports the script again)."""
_preload_lock = threading.Lock()
_preloaded = False
_limit_raised = False


_STATUS_WAIT = 1.0
"""Seconds to wait, once an agent's pid has ended, for the forkserver to report it."""


def _open_pidfd(pid: int | None) -> int | None:
    """A pidfd for ``pid``, or ``None`` where there is none (not Linux, old kernel,
    or the process is already gone)."""
    if pid is None:
        return None
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


_servers: dict[int, int | None] = {}
"""pidfds of the forkservers that forked our agents, by pid (one per forkserver)."""
_servers_lock = threading.Lock()


def _forkserver_pid() -> int | None:
    """The pid of the forkserver that serves this process now, watched by a pidfd."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    if not isinstance(pid, int):
        return None
    with _servers_lock:
        if pid not in _servers:
            _servers[pid] = _open_pidfd(pid)
    return pid


def _server_gone(pid: int | None) -> bool:
    """Whether the forkserver ``pid`` has ended (``False`` when it cannot be told)."""
    fd = _servers.get(pid) if pid is not None else None
    return fd is not None and readable(fd)


def _remove_forkserver_dir() -> None:
    """At exit of a forkserver (which preloads this module): remove its socket, and the
    ``pymp-*`` directory that held it if nothing else is left there.

    The orchestrator's multiprocessing removes that directory at a normal exit; after
    a SIGKILL it cannot, and one directory per kill was left in the temp dir. The
    forkserver ends as soon as the orchestrator is gone, whatever killed it, so it
    cleans up instead. A child process shares its parent's directory (a pool agent's
    own forkserver puts its socket beside the orchestrator's), so only the socket is
    this forkserver's to remove, and the directory goes only once it is empty. Does
    nothing in any other process.
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    address = getattr(server, "_forkserver_address", None)
    if getattr(server, "_forkserver_pid", None) is not None or not isinstance(
        address, str
    ):
        return  # not a forkserver (a client knows its server's pid)
    socket_path = Path(address)
    if not socket_path.parent.name.startswith("pymp-"):
        return
    with contextlib.suppress(OSError):
        socket_path.unlink()
        socket_path.parent.rmdir()  # only if empty


atexit.register(_remove_forkserver_dir)


def process_context(method: StartMethod) -> multiprocessing.context.BaseContext:
    """Return the multiprocessing context for ``method`` (forkserver preloads us).

    The first call also raises this process's soft limit of open files to its hard
    limit (see :func:`raise_open_files_limit`).
    """
    global _preloaded, _limit_raised
    ctx = multiprocessing.get_context(method)
    with _preload_lock:
        if not _limit_raised:
            raise_open_files_limit()
            _limit_raised = True
        if method == "forkserver" and not _preloaded:
            ctx.set_forkserver_preload(_PRELOAD)
            _preloaded = True
    return ctx


def raise_open_files_limit() -> int:
    """Raise the soft limit of open files (``RLIMIT_NOFILE``) to the hard limit, and
    return the soft limit now in force.

    A process agent holds about ten descriptors in the orchestrator (its events, its
    pipe, a pidfd, the forkserver's status pipe), so the soft limit many systems start
    with, 1,024, would allow only about a hundred. Raising the soft limit up to the
    hard one is what systemd recommends for programs that need many descriptors and
    never use ``select()``, and what Go's runtime does at start; pyorchestrate waits
    with ``poll``/``epoll`` only.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (OSError, ValueError):  # a sandbox may refuse: keep what we have
            pass
    return soft


class ThreadFlavour:
    """Runs the agent in a daemon thread of the calling process.

    The thread is a daemon so a stubborn agent cannot keep the interpreter alive; the
    orchestrator joins every agent thread it starts and reports those that will not end.
    """

    flavour: ClassVar[Flavour | None] = "thread"
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the agent's thread; raise ``RuntimeError`` if already started."""
        if self._thread is not None:
            raise RuntimeError(f"agent {self.name!r} can only be started once")  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._thread_main,
            name=f"pyorchestrate-agent-{self.name}",  # type: ignore[attr-defined]
            daemon=True,
        )
        self._thread.start()

    def _thread_main(self) -> None:
        try:
            self.run()  # type: ignore[attr-defined]
        finally:
            link = self._link  # type: ignore[attr-defined]
            if link is not None:
                link.close()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end, up to ``timeout`` seconds."""
        if self._thread is not None:
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        """Whether the thread is running."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def pid(self) -> int | None:
        """This process's pid once started (threads share it)."""
        return os.getpid() if self._thread is not None else None

    @property
    def ident(self) -> int | None:
        """The thread's identifier once started."""
        return self._thread.ident if self._thread is not None else None

    @property
    def exitcode(self) -> int | None:
        """Always ``None``: threads have no exit code."""
        return None

    @property
    def sentinel(self) -> int | None:
        """Always ``None``: a thread's end is seen on its link instead."""
        return None


def _raise_terminate(signum: int, frame: FrameType | None) -> None:
    raise TerminateAgent(signal.Signals(signum).name)


ORPHAN_GRACE = 1.0
"""Seconds between SIGTERM and SIGKILL for the group of an agent whose orchestrator died."""

_orphaned = threading.Event()

_own_outputs: dict[int, int] = {}
"""In a process agent whose fds 1 and 2 are the orchestrator's pipes: copies of the
stdout and stderr it had before (by fd), for when no one is left to read the pipes."""


def _signal_own_group(sig: int) -> None:
    """Send ``sig`` to this process's group if it leads one, else to itself only."""
    with contextlib.suppress(OSError):
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpid(), sig)
        else:
            os.kill(os.getpid(), sig)


def _wait_for_exit(pid: int) -> None:
    """Block until process ``pid`` has exited (pidfd where there is one, else polling)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):  # no pidfd (old kernel, not Linux): poll
        while True:
            time.sleep(0.25)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            except PermissionError:
                pass
    try:
        readable(fd, None)
    finally:
        os.close(fd)


def _watch_parent(parent_pid: int) -> None:
    """Runs in a process agent: end the agent's group when the orchestrator dies."""
    _wait_for_exit(parent_pid)
    _orphaned.set()
    if _own_outputs:
        # Nobody reads the pipes any more: say it where the orchestrator's stderr went.
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        for fd, own in _own_outputs.items():
            with contextlib.suppress(OSError):
                os.dup2(own, fd)
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(
            f"pyorchestrate: orchestrator (pid {parent_pid}) is gone: agent pid "
            f"{os.getpid()} ends its process group\n"
        )
    _signal_own_group(signal.SIGTERM)
    time.sleep(ORPHAN_GRACE)
    _signal_own_group(signal.SIGKILL)


def expected_exit_code(status: AgentTerminationStatus | None) -> int | None:
    """The exit code :func:`_process_main` gives an agent that closed with ``status``
    (``-SIGTERM`` for one unwound by SIGTERM); ``None`` if it did not close."""
    if status is None:
        return None
    if status is AgentTerminationStatus.WARNING:
        return -signal.SIGTERM
    failed = status in (AgentTerminationStatus.ERROR, AgentTerminationStatus.CRITICAL)
    return 1 if failed else 0


def _unbuffer_stdio() -> None:
    """Make ``sys.stdout`` and ``sys.stderr`` unbuffered, as ``python -u`` does: every
    write reaches the pipe at once, so a line is in the output even if the agent is
    SIGKILLed right after it."""
    for name, fd in (("stdout", 1), ("stderr", 2)):
        old = getattr(sys, name)
        with contextlib.suppress(OSError, ValueError, AttributeError):
            old.flush()
        try:
            raw = io.FileIO(fd, "w", closefd=False)
        except OSError:
            continue
        stream = io.TextIOWrapper(
            raw,
            encoding=getattr(old, "encoding", None) or "utf-8",
            errors=getattr(old, "errors", None) or "backslashreplace",
            write_through=True,
        )
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _process_main(agent: Any) -> None:
    """Entry point of a process agent, in the child."""
    outputs = vars(agent).pop("_output_w", None)
    if outputs is not None:
        # The orchestrator's pipes become fds 1 and 2 (ProcessFlavour.capture_output).
        for fd, pipe in zip((1, 2), outputs, strict=True):
            write_end = pipe.detach()
            with contextlib.suppress(OSError):
                _own_outputs[fd] = os.dup(fd)
            os.dup2(write_end, fd)
            os.close(write_end)
        _unbuffer_stdio()
    # Lead a process group, so a stop reaches the agent's own children as well.
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    # The orchestrator coordinates Ctrl+C; SIGTERM unwinds run() so it still closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_terminate)
    if agent._link is not None:
        # Records go to the orchestrator, which prints them once, by its logging.
        forward_logging(agent.name, agent._link, getattr(agent, "_log_levels", None))
    parent_pid = getattr(agent, "_orchestrator_pid", None)
    if parent_pid is not None:
        threading.Thread(
            target=_watch_parent,
            args=(parent_pid,),
            name="pyorchestrate-parent-watch",
            daemon=True,
        ).start()
    terminated = False
    try:
        agent.run()
    except TerminateAgent:
        terminated = True
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if agent._link is not None:
            agent._link.close()
    if _orphaned.is_set():
        sys.stderr.flush()
        _signal_own_group(signal.SIGKILL)  # no one is left to clean up after us
    if terminated:
        # Report the truth to the parent: this process ended because of SIGTERM. First
        # let the user's msg_channel write what the agent sent while unwinding.
        if agent.msg_channel is not None:
            agent.msg_channel.flush(1.0)
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGTERM)
    code = expected_exit_code(agent.termination_status)
    sys.exit(code if code is not None and code >= 0 else 1)


class ProcessFlavour:
    """Runs the agent in a child process (``forkserver`` or ``spawn``).

    The agent's class must be importable by the child (defined at module level, as in
    the seed's ``my_project.models``).
    """

    flavour: ClassVar[Flavour | None] = "process"
    start_method: StartMethod = DEFAULT_START_METHOD
    _process: multiprocessing.process.BaseProcess | None = None
    _pidfd: int | None = None
    _server_pid: int | None = None
    _output_w: tuple[int, int] | None = None

    def capture_output(self, stdout_fd: int, stderr_fd: int) -> None:
        """Make ``stdout_fd`` and ``stderr_fd`` (pipes' write ends) the child's stdout
        and stderr, fds 1 and 2, from the first thing the child does. The caller
        keeps its copies and closes them once :meth:`start` returned."""
        self._output_w = (stdout_fd, stderr_fd)

    def start(self) -> None:
        """Start the child process; raise ``RuntimeError`` if already started."""
        try:
            self._start()
        finally:
            self._output_w = None

    def _start(self) -> None:
        if self._process is not None:
            raise RuntimeError(f"agent {self.name!r} can only be started once")  # type: ignore[attr-defined]
        ctx = process_context(self.start_method)
        process = ctx.Process(  # type: ignore[attr-defined]
            target=_process_main,
            args=(self,),
            name=f"pyorchestrate-agent-{self.name}",  # type: ignore[attr-defined]
            daemon=False,
        )
        self._process = process
        self._orchestrator_pid = os.getpid()  # travels to the child with the agent
        self._log_levels = logging_levels()  # the child logs at our thresholds
        process.start()
        if self.start_method == "forkserver":
            self._server_pid = _forkserver_pid()
        pidfd = _open_pidfd(process.pid)
        if pidfd is not None:
            self._pidfd = pidfd
            weakref.finalize(self, os.close, pidfd)

    def _ended(self, timeout: float | None = 0) -> bool:
        """Whether the child's pid has ended (waiting up to ``timeout`` seconds)."""
        if self._process is None:
            return False
        if self._pidfd is None:
            self._process.join(timeout)
            return self._process.exitcode is not None
        return readable(self._pidfd, timeout)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the process to end, up to ``timeout`` seconds, and for its exit
        status (from the forkserver, up to a second more)."""
        process = self._process
        if process is None:
            return
        if self._ended(timeout) and self._pidfd is not None:
            process.join(_STATUS_WAIT)

    def is_alive(self) -> bool:
        """Whether the child process is running."""
        return self._process is not None and not self._ended()

    def terminate(self) -> None:
        """Send SIGTERM to the agent's process group: the agent unwinds, closes, ends."""
        self.signal_group(signal.SIGTERM)

    def kill(self) -> None:
        """Send SIGKILL to the agent's process group."""
        self.signal_group(signal.SIGKILL)

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the agent's process group (to the process alone if it has
        not made its group yet). Does nothing once the process has ended."""
        process = self._process
        if process is None or process.pid is None or self._ended():
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:  # just forked: not yet leading its own group
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, sig)
        except PermissionError:
            pass

    def kill_leftovers(self) -> None:
        """SIGKILL what is left of the agent's process group after the agent ended.

        Call it as soon as the end is seen: a group id is not reused while any member
        lives, so a group with members left is still the agent's. A group with no
        member left is nothing to do (its id could only name another group after the
        kernel's pids wrapped around in between, which this does not guard against).
        """
        pid = self.pid
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

    @property
    def pid(self) -> int | None:
        """The child's pid once started."""
        return self._process.pid if self._process is not None else None

    @property
    def exitcode(self) -> int | None:
        """The exit code (negative for a signal), ``None`` while running or when the
        status was lost (see :attr:`exit_status_lost`)."""
        if self._process is None or not self._ended():
            return None
        if self.exit_status_lost:
            return None
        return self._process.exitcode

    @property
    def exit_status_lost(self) -> bool:
        """Whether the process ended but its exit status is unknown: the forkserver
        that forked it (and alone could collect it) died first."""
        process = self._process
        if process is None or not self._ended():
            return False
        code = process.exitcode
        # A forkserver that dies closes its status pipe: multiprocessing reads 255.
        return code is None or (code == 255 and _server_gone(self._server_pid))

    @property
    def sentinel(self) -> int | None:
        """A handle that becomes readable when the process ends: a pidfd of the
        agent (the forkserver's status pipe only where there is no pidfd)."""
        if self._pidfd is not None:
            return self._pidfd
        return self._process.sentinel if self._process is not None else None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(vars(self))
        for local in ("_process", "_pidfd", "_server_pid"):
            state.pop(local, None)
        if self._output_w is not None:
            # Sent as descriptors (forkserver: over its socket; spawn: inherited).
            state["_output_w"] = tuple(reduction.DupFd(fd) for fd in self._output_w)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
