"""Anchor: supervisord (the ``supervisor`` package, 4.x) on the supervision workload.

``bench/bench_supervision.py`` imports this module to put supervisord's figures beside
the orchestrator's; ``python bench/_supervisord.py [--quick]`` runs it on its own.

supervisord is installed into a private virtual environment owned by the benchmark
(:func:`ensure_supervisor`), never into the caller's environment. :func:`supervisord`
runs one with ``n_programs`` programs, each the caller's own Python
(``sys.executable``) running a tiny worker that sleeps until SIGTERM, and talks to it
over XML-RPC on a unix socket in a private temporary directory (no TCP listener at
all). The measurements, each returning seconds:

* :func:`start_all`: ``startAllProcesses(wait=False)`` until every program is RUNNING;
* :func:`kill_restart`: SIGKILL of one program's process until it is RUNNING again
  with a new pid (one program per round);
* :func:`stop_all`: ``stopAllProcesses(wait=False)`` until every program is STOPPED
  and its process is gone;
* :func:`kill_restart_unpolled` (extra): the same kill, timed from supervisord's own
  log file without a single RPC call until the program is RUNNING again.

The waits poll the XML-RPC interface every 5 ms. That polling is not neutral:
supervisord's main loop sleeps in ``poll()`` for up to one second unless a file
descriptor wakes it, and moves a program from EXITED to STARTING and from STARTING to
RUNNING only at the end of a loop iteration, so a client that polls is what keeps the
state machine turning. :func:`kill_restart_unpolled` shows the time when nobody asks.

Standard library only (psutil is used where the caller's environment has it).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import http.client
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
import xmlrpc.client
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _stats

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

SUPERVISOR_REQUIREMENT = "supervisor>=4.2,<5"
"""What :func:`ensure_supervisor` installs into its private virtual environment."""

CACHE_ENV = "PYORCHESTRATE_BENCH_CACHE"
"""Environment variable naming the benchmark's cache directory (venv lives inside)."""

POLL_INTERVAL = 0.005
"""How often the measurements ask supervisord for states (seconds)."""

WAIT_TIMEOUT = 30.0
"""Longest any wait here lasts before giving up (seconds); 100 programs take a while."""

STOPWAITSECS = 10
"""Each program's ``stopwaitsecs``: SIGTERM, then SIGKILL after this many seconds."""

_SUCCESS = 80  # supervisor.xmlrpc.Faults.SUCCESS: a per-process result that went well
_VENV_MARKER = ".pyorchestrate-bench-complete"  # written once pip install succeeded

# The worker each program runs: sleep until SIGTERM (default handling: it just dies).
# It also ends if it was orphaned (supervisord gone), so that even a supervisord killed
# with SIGKILL cannot leave workers behind for long. It never writes to stdout/stderr.
_WORKER = """\
import os
import time

parent = os.getppid()
while os.getppid() == parent:
    time.sleep(1.0)
"""


# --------------------------------------------------------------------------- setup


def cache_dir() -> Path:
    """The benchmark's cache directory.

    ``$PYORCHESTRATE_BENCH_CACHE`` if set, else ``$XDG_CACHE_HOME/pyorchestrate-bench``,
    else ``~/.cache/pyorchestrate-bench``.
    """
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "pyorchestrate-bench"


def _clean_env() -> dict[str, str]:
    """The caller's environment without what would point pip or Python elsewhere."""
    dropped = {"PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV", "PIP_USER", "PIP_TARGET"}
    dropped |= {"PIP_PREFIX", "PIP_REQUIRE_VIRTUALENV", "__PYVENV_LAUNCHER__"}
    return {key: value for key, value in os.environ.items() if key not in dropped}


def supervisor_version(bin_dir: Path) -> str | None:
    """The version ``bin_dir/supervisord --version`` prints if it is 4.2 <= v < 5."""
    executable = bin_dir / "supervisord"
    if not executable.is_file():
        return None
    try:
        out = subprocess.run(
            [str(executable), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env=_clean_env(),
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.fullmatch(r"(\d+)\.(\d+)(?:\.\S*)?", out)
    if found is None:
        return None
    major, minor = int(found[1]), int(found[2])
    return out if major == 4 and minor >= 2 else None


def cached_supervisor() -> Path | None:
    """The bin dir of the private venv if :func:`ensure_supervisor` has completed it
    before (and its supervisord still runs), else ``None``. Never installs anything:
    for runs that must not reach a package index (``bench_supervision.py --quick``).
    """
    venv = cache_dir() / "supervisor-venv"
    bin_dir = venv / "bin"
    if (venv / _VENV_MARKER).is_file() and supervisor_version(bin_dir):
        return bin_dir
    return None


def ensure_supervisor() -> Path:
    """Make (or reuse) the benchmark's private supervisor venv; return its bin dir.

    The venv is ``cache_dir() / "supervisor-venv"``, made with ``python -m venv`` from
    ``sys.executable`` and given ``pip install "supervisor>=4.2,<5"``. It is reused if
    its ``supervisord --version`` answers with a version in range; otherwise it is
    removed (only if it looks like a venv) and made again. A lock file serialises
    concurrent callers. Nothing is installed into the caller's environment.
    """
    cached = cached_supervisor()
    if cached is not None:
        return cached
    root = cache_dir()
    venv = root / "supervisor-venv"
    bin_dir = venv / "bin"
    root.mkdir(parents=True, exist_ok=True)
    with (root / "supervisor-venv.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if (venv / _VENV_MARKER).is_file() and supervisor_version(bin_dir):
            return bin_dir  # another caller made it meanwhile
        if venv.exists():
            if not (venv / "pyvenv.cfg").is_file() and any(venv.iterdir()):
                raise RuntimeError(f"{venv} exists and is not a venv; not touching it")
            shutil.rmtree(venv)
        print(
            f"setting up supervisord in {venv} ({SUPERVISOR_REQUIREMENT}; first run only)",
            file=sys.stderr,
        )
        steps = (
            [sys.executable, "-m", "venv", str(venv)],
            [
                str(bin_dir / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                SUPERVISOR_REQUIREMENT,
            ],
        )
        for step in steps:
            done = subprocess.run(
                step, capture_output=True, text=True, env=_clean_env(), check=False
            )
            if done.returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                raise RuntimeError(
                    f"{' '.join(step)} failed ({done.returncode}):\n"
                    f"{done.stdout}{done.stderr}"
                )
        if supervisor_version(bin_dir) is None:
            shutil.rmtree(venv, ignore_errors=True)
            raise RuntimeError(f"supervisord in {venv} does not run after install")
        (venv / _VENV_MARKER).write_text(SUPERVISOR_REQUIREMENT + "\n")
    return bin_dir


# ---------------------------------------------------------------- XML-RPC transport


class _UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection over an ``AF_UNIX`` socket (the host is only a header)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class UnixTransport(xmlrpc.client.Transport):
    """``xmlrpc.client`` transport to an HTTP server on a unix socket.

    The standard library's answer to ``supervisor.xmlrpc.SupervisorTransport``, which
    lives in the other venv. Keeps one connection alive between calls.
    """

    def __init__(self, path: str | os.PathLike[str], timeout: float = 60.0) -> None:
        super().__init__()
        self._path = os.fspath(path)
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        if self._connection and host == self._connection[0]:
            connection = self._connection[1]
            if connection is not None:
                return connection
        connection = _UnixHTTPConnection(self._path, self._timeout)
        self._connection = host, connection
        return connection


def rpc_proxy(socket_path: str | os.PathLike[str]) -> xmlrpc.client.ServerProxy:
    """An XML-RPC proxy to the supervisord listening on ``socket_path``."""
    # The URL's host is never resolved: UnixTransport connects to the socket file.
    return xmlrpc.client.ServerProxy(
        "http://localhost/RPC2", transport=UnixTransport(socket_path)
    )


# ------------------------------------------------------------------- supervisord run


@dataclasses.dataclass
class Supervisord:
    """A running supervisord, as :func:`supervisord` yields it."""

    rpc: xmlrpc.client.ServerProxy
    """Proxy to its XML-RPC interface (``rpc.supervisor.getAllProcessInfo()`` ...)."""
    pid: int
    """supervisord's own pid."""
    programs: tuple[str, ...]
    """Program names, ``w0`` .. ``w{n-1}``, all in their own group."""
    version: str
    """supervisord's version, as it reports it."""
    boot_seconds: float
    """From ``Popen`` until its XML-RPC interface answered ``getState`` as RUNNING."""
    directory: Path
    """The private temporary directory: config, socket, logs; removed on exit."""
    process: subprocess.Popen[bytes]
    """supervisord's process (started in its own session)."""
    leftovers: list[int] = dataclasses.field(default_factory=list)
    """Filled on exit: pids of its children still alive after it ended (then killed)."""
    next_victim: int = 0
    """Index of the program :func:`kill_restart` kills next."""

    @property
    def supervisor(self) -> Any:
        """``rpc.supervisor``: the XML-RPC namespace, untyped (answers are server data)."""
        return self.rpc.supervisor

    @property
    def log_file(self) -> Path:
        """supervisord's own log (``logfile=``)."""
        return self.directory / "supervisord.log"


def _config(
    directory: Path,
    n_programs: int,
    command: Sequence[str] | None = None,
    options: Mapping[str, str] | None = None,
) -> str:
    """supervisord.conf text: unix socket only, nodaemon, n identical programs.

    ``command`` is the programs' argv (default: ``sys.executable worker.py``);
    ``options`` are ``[program:x]`` settings added to (or replacing) the defaults.
    """

    def value(text: str | os.PathLike[str]) -> str:
        return os.fspath(text).replace("%", "%%")  # supervisor expands %(name)s

    worker = directory / "worker.py"
    argv = command if command is not None else (sys.executable, str(worker))
    command_line = value(shlex.join(argv))
    settings = {
        "command": command_line,
        "directory": value(directory),
        "autostart": "false",
        "autorestart": "true",
        "startsecs": "0",
        "startretries": "3",
        "stopwaitsecs": str(STOPWAITSECS),
        "stopsignal": "TERM",
    }
    settings.update({key: value(text) for key, text in (options or {}).items()})
    lines = [
        "[unix_http_server]",
        f"file={value(directory / 'supervisor.sock')}",
        "chmod=0700",
        "",
        "[supervisord]",
        "nodaemon=true",
        f"logfile={value(directory / 'supervisord.log')}",
        f"pidfile={value(directory / 'supervisord.pid')}",
        f"childlogdir={value(directory)}",
        f"directory={value(directory)}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
    ]
    for i in range(n_programs):
        lines += ["", f"[program:w{i}]"]
        lines += [f"{key}={text}" for key, text in settings.items()]
    return "\n".join(lines) + "\n"


def _suspects(pid: int | None, worker: Path) -> dict[int, Any]:
    """Live processes that are supervisord's descendants or run ``worker``, by pid.

    Values are psutil processes, or ``(pid, starttime)`` pairs without psutil: either
    identifies a process even if its pid is later reused. The worker's path is unique
    to one :func:`supervisord` run, so workers orphaned by a supervisord that died
    (and reparented away from it) are found too. ``pid=None``: the workers only (for
    when supervisord has been reaped, and its pid may belong to another process).
    """
    psutil = _psutil()
    found: dict[int, Any] = {}
    if psutil is not None:
        # Never psutil.Process(None): that is this process, and its children (a
        # forkserver, the resource tracker, agents) are not supervisord's.
        if pid is not None:
            with contextlib.suppress(psutil.NoSuchProcess, ValueError):
                found = {p.pid: p for p in psutil.Process(pid).children(recursive=True)}
        for proc in psutil.process_iter(["cmdline"]):
            if str(worker) in (proc.info["cmdline"] or ()):
                found.setdefault(proc.pid, proc)
        return found
    marker = os.fsencode(worker)  # no psutil: /proc (the workers fork nothing)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(int(entry.name))
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        child = pid is not None and stat is not None and int(stat[1]) == pid
        if stat is not None and (child or marker in argv):
            found[int(entry.name)] = (int(entry.name), stat[19])
    return found


def _psutil() -> types.ModuleType | None:
    """psutil if the caller's environment has it, else None."""
    try:
        import psutil
    except ImportError:
        return None
    return psutil


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/PID/stat`` from the state on (index 1 is the ppid)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _alive(process: Any) -> bool:
    """Whether a process from :func:`_suspects` still exists (a zombie does not count)."""
    if isinstance(process, tuple):
        stat = _proc_stat(process[0])
        return stat is not None and stat[19] == process[1] and stat[0] != "Z"
    import psutil

    try:
        return bool(process.is_running()) and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _kill(process: Any) -> None:
    """SIGKILL a process from :func:`_suspects` by its pid."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(
            process[0] if isinstance(process, tuple) else process.pid, signal.SIGKILL
        )


def _pid_of(process: Any) -> int:
    return int(process[0] if isinstance(process, tuple) else process.pid)


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def supervisord(
    n_programs: int,
    workdir: Path,
    *,
    bin_dir: Path | None = None,
    command: Sequence[str] | None = None,
    options: Mapping[str, str] | None = None,
) -> Iterator[Supervisord]:
    """Run supervisord with ``n_programs`` idle programs; yield a :class:`Supervisord`.

    ``command`` (an argv, e.g. ``["sleep", "1000"]``) replaces the Python worker
    below as every program's command; ``options`` add or replace ``[program:x]``
    settings (literal values: ``%`` is escaped), e.g. ``{"stdout_logfile": path}``.
    A program that is not the worker is found at exit as supervisord's descendant
    only (taken before it shuts down), not by the worker's path.

    A temporary directory is made inside ``workdir`` for the config, the unix socket
    (the only listener: no ``inet_http_server``), supervisord's log, pid file and the
    programs' AUTO logs; programs run there too. ``bin_dir`` defaults to
    :func:`ensure_supervisor`.

    Each program ``w{i}`` runs ``sys.executable worker.py`` with ``autostart=false``,
    ``autorestart=true``, ``startretries=3``, ``stopwaitsecs=10``, ``stopsignal=TERM``
    and ``startsecs=0``: supervisord's fastest setting, where a program counts as
    RUNNING as soon as it has been forked (the next pass of the main loop, or at once
    inside ``startProcess``), not when the worker is ready. With the default
    ``startsecs=1`` no start or restart could take less than one second.

    On exit: ``supervisor.shutdown()``, then SIGTERM and SIGKILL to supervisord if it
    has not ended within ``stopwaitsecs`` + 5 s; then every process that was its child
    is checked, and any still alive is killed by pid and its pid recorded in
    ``leftovers``. The temporary directory is removed.
    """
    if n_programs < 1:
        raise ValueError("n_programs must be at least 1")
    bin_dir = bin_dir or ensure_supervisor()
    directory = Path(tempfile.mkdtemp(prefix="supervisord-", dir=workdir))
    try:
        socket_path = directory / "supervisor.sock"
        if len(os.fsencode(socket_path)) >= 104:  # sun_path is 108 bytes on Linux
            raise ValueError(
                f"unix socket path too long, use a shorter workdir: {socket_path}"
            )
        (directory / "worker.py").write_text(_WORKER)
        config = directory / "supervisord.conf"
        config.write_text(_config(directory, n_programs, command, options))
        with (directory / "supervisord.out").open("wb") as out:
            began = time.perf_counter()
            # Its own session: a Ctrl-C meant for the benchmark does not reach it, so
            # that the shutdown below stays in charge. Its programs call setpgrp().
            process = subprocess.Popen(
                [str(bin_dir / "supervisord"), "--configuration", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=directory,
                env=_clean_env(),
                start_new_session=True,
            )
        rpc = rpc_proxy(socket_path)
        handle: Supervisord | None = None
        try:
            handle = _await_boot(process, rpc, directory, n_programs, began)
            yield handle
        finally:
            left = _shutdown(process, rpc, directory)
            if handle is not None:
                handle.leftovers = left
            if left:
                print(
                    f"supervisord left children behind (killed): {left}",
                    file=sys.stderr,
                )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _await_boot(
    process: subprocess.Popen[bytes],
    rpc: xmlrpc.client.ServerProxy,
    directory: Path,
    n_programs: int,
    began: float,
) -> Supervisord:
    """Wait until supervisord's XML-RPC answers ``getState`` with RUNNING; check its
    programs and describe it."""
    api: Any = rpc.supervisor
    deadline = time.monotonic() + WAIT_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"supervisord exited with {process.returncode}:\n"
                f"{_log_tail(directory / 'supervisord.out')}\n"
                f"{_log_tail(directory / 'supervisord.log')}"
            )
        try:
            state = api.getState()
        except (OSError, http.client.HTTPException, xmlrpc.client.Error):
            state = None
        if state and state["statename"] == "RUNNING":
            boot = time.perf_counter() - began
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"supervisord did not answer within {WAIT_TIMEOUT} s")
        time.sleep(0.01)
    names = tuple(f"w{i}" for i in range(n_programs))
    infos = api.getAllProcessInfo()
    if sorted(info["name"] for info in infos) != sorted(names):
        raise RuntimeError(f"supervisord runs unexpected programs: {infos}")
    return Supervisord(
        rpc=rpc,
        pid=process.pid,
        programs=names,
        version=str(api.getSupervisorVersion()),
        boot_seconds=boot,
        directory=directory,
        process=process,
    )


def _shutdown(
    process: subprocess.Popen[bytes], rpc: xmlrpc.client.ServerProxy, directory: Path
) -> list[int]:
    """End supervisord and every process of its run; return pids that had to be killed.

    Its processes are its descendants and whatever runs this run's ``worker.py``.
    """
    worker = directory / "worker.py"
    suspects = _suspects(process.pid, worker)  # before it ends: they'd be reparented
    if process.poll() is None:
        with contextlib.suppress(
            OSError, http.client.HTTPException, xmlrpc.client.Error
        ):
            rpc.supervisor.shutdown()
        try:
            process.wait(STOPWAITSECS + 5)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    with contextlib.suppress(Exception):
        rpc("close")()
    suspects.update(_suspects(None, worker))  # orphans still run the worker
    left = [child for child in suspects.values() if _alive(child)]
    for child in left:
        _kill(child)
    deadline = time.monotonic() + 5.0
    while any(_alive(child) for child in left) and time.monotonic() < deadline:
        time.sleep(0.01)
    return [_pid_of(child) for child in left]


# ------------------------------------------------------------------- measurements


def _infos(handle: Supervisord) -> list[dict[str, Any]]:
    infos: list[dict[str, Any]] = handle.supervisor.getAllProcessInfo()
    return infos


def _check_results(results: list[dict[str, Any]], what: str) -> None:
    failed = [result for result in results if result["status"] != _SUCCESS]
    if failed:
        raise RuntimeError(f"{what} failed for some programs: {failed}")


def _poll_until(done: Callable[[], bool], what: str) -> float:
    """Call ``done()`` every ``POLL_INTERVAL`` until it is true; return the clock then.

    ``done`` raises to give up. Polls run on a fixed 5 ms cadence (a poll that took
    longer is followed at once by the next).
    """
    deadline = time.monotonic() + WAIT_TIMEOUT
    next_at = time.perf_counter()
    while True:
        if done():
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {WAIT_TIMEOUT} s")
        next_at += POLL_INTERVAL
        pause = next_at - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        else:
            next_at = time.perf_counter()


def _all_in(infos: list[dict[str, Any]], state: str) -> bool:
    fatal = [info["name"] for info in infos if info["statename"] == "FATAL"]
    if fatal:
        raise RuntimeError(f"programs went FATAL: {fatal}")
    return all(info["statename"] == state for info in infos)


def start_all(handle: Supervisord) -> float:
    """Seconds from ``startAllProcesses(wait=False)`` until all programs are RUNNING.

    Every program must be stopped before. ``getAllProcessInfo`` is polled every 5 ms.
    With ``startsecs=0`` supervisord forks every program, one after the other, and
    marks it RUNNING inside the ``startAllProcesses`` call itself (its main loop does
    nothing else meanwhile), so this is mostly that call's round trip; the workers
    started first compete with it for the CPU while their interpreters start.
    """
    running = [i["name"] for i in _infos(handle) if i["statename"] == "RUNNING"]
    if running:
        raise RuntimeError(f"start_all needs every program stopped; running: {running}")
    t0 = time.perf_counter()
    results = handle.supervisor.startAllProcesses(False)
    t1 = _poll_until(lambda: _all_in(_infos(handle), "RUNNING"), "all RUNNING")
    _check_results(results, "startAllProcesses")
    return t1 - t0


def kill_restart(
    handle: Supervisord, kills: int = 20, pause: float = 0.05
) -> list[float]:
    """Seconds from SIGKILL of a program's process until it is RUNNING with a new pid.

    One program per round, in turn (``handle.next_victim`` carries on between calls),
    so no program restarts twice in a row and its ``startretries`` never come into
    play (with ``startsecs=0`` a program dying while RUNNING goes to EXITED, not
    BACKOFF, and ``autorestart`` spawns it again). ``getProcessInfo`` is polled every
    5 ms; ``pause`` seconds pass between rounds, untimed.
    """
    samples = []
    for _ in range(kills):
        name = handle.programs[handle.next_victim % len(handle.programs)]
        handle.next_victim += 1
        info = handle.supervisor.getProcessInfo(name)
        if info["statename"] != "RUNNING" or not info["pid"]:
            raise RuntimeError(f"{name} is not running before the kill: {info}")
        old = info["pid"]

        def restarted(name: str = name, old: int = old) -> bool:
            now = handle.supervisor.getProcessInfo(name)
            if now["statename"] == "FATAL":
                raise RuntimeError(f"{name} went FATAL after the kill: {now}")
            return bool(now["statename"] == "RUNNING" and now["pid"] not in (0, old))

        t0 = time.perf_counter()
        os.kill(old, signal.SIGKILL)
        t1 = _poll_until(restarted, f"{name} RUNNING again")
        samples.append(t1 - t0)
        time.sleep(pause)
    return samples


def kill_restart_unpolled(
    handle: Supervisord,
    kills: int = 5,
    pause: float = 0.05,
    *,
    milestones: list[dict[str, float]] | None = None,
) -> list[float]:
    """Like :func:`kill_restart`, but without any RPC call until the program is back.

    The clock stops when supervisord's log file gains the line ``success: NAME entered
    RUNNING state`` (its logger flushes every record); the file is read every 5 ms,
    which supervisord cannot notice. This is the restart time when no client is
    polling supervisord.

    ``milestones``, if given, gets one dict per kill with the seconds from the kill to
    supervisord's own log timestamps (``time.time()`` when it logged, to the
    millisecond: taken as the middle of it, so within ± 0.5 ms, and never below 0;
    no polling delay in them):
    ``exited`` (it reaped the killed process: detection), ``spawned`` (it forked the
    new one) and ``running`` (it marked the program RUNNING).
    """
    samples = []
    log = handle.log_file
    for _ in range(kills):
        name = handle.programs[handle.next_victim % len(handle.programs)]
        handle.next_victim += 1
        info = handle.supervisor.getProcessInfo(name)
        if info["statename"] != "RUNNING" or not info["pid"]:
            raise RuntimeError(f"{name} is not running before the kill: {info}")
        success = f"success: {name} entered RUNNING state".encode()
        with log.open("rb") as reader:
            reader.seek(0, os.SEEK_END)
            seen = b""

            def logged(reader: Any = reader, success: bytes = success) -> bool:
                nonlocal seen
                seen += reader.read()
                return success in seen

            wall = time.time()
            t0 = time.perf_counter()
            os.kill(info["pid"], signal.SIGKILL)
            t1 = _poll_until(logged, f"{name} RUNNING again (log)")
        samples.append(t1 - t0)
        if milestones is not None:
            milestones.append(_milestones(seen.decode(errors="replace"), name, wall))
        now = handle.supervisor.getProcessInfo(name)
        if now["statename"] != "RUNNING" or now["pid"] == info["pid"]:
            raise RuntimeError(f"{name} logged RUNNING but reports {now}")
        time.sleep(pause)
    return samples


_LOG_STAMP = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) \w+ "


def _milestones(text: str, name: str, wall: float) -> dict[str, float]:
    """Seconds from ``wall`` to supervisord's log stamps of ``name``'s exit, spawn and
    RUNNING, in ``text`` (the log written since the kill)."""
    patterns = {
        "exited": rf"exited: {re.escape(name)} \(",
        "spawned": rf"spawned: '{re.escape(name)}' with pid",
        "running": rf"success: {re.escape(name)} entered RUNNING state",
    }
    found = {}
    for key, pattern in patterns.items():
        match = re.search(_LOG_STAMP + pattern, text, re.MULTILINE)
        if match is None:
            raise RuntimeError(
                f"no {key!r} line for {name} in supervisord's log:\n{text}"
            )
        stamp = time.mktime(time.strptime(match[1], "%Y-%m-%d %H:%M:%S"))
        # The middle of the logged millisecond (the stamp is cut down to it).
        found[key] = max(stamp + (int(match[2]) + 0.5) / 1000 - wall, 0.0)
    return found


def stop_all(handle: Supervisord, *, started: list[float] | None = None) -> float:
    """Seconds from ``stopAllProcesses(wait=False)`` until all programs are STOPPED and
    their processes are gone.

    The running programs' processes are taken before the call (psutil processes when
    psutil is importable, so a reused pid cannot fool the check; else ``os.kill(pid,
    0)``); ``getAllProcessInfo`` is polled every 5 ms. ``started``, if given, gets
    the ``perf_counter`` of the call (for clocks kept elsewhere).
    """
    infos = _infos(handle)
    if not all(info["statename"] == "RUNNING" for info in infos):
        raise RuntimeError("stop_all needs every program running")
    psutil = _psutil()
    processes: list[Any] = [
        info["pid"] if psutil is None else psutil.Process(info["pid"]) for info in infos
    ]

    def gone(process: Any) -> bool:
        if isinstance(process, int):
            try:
                os.kill(process, 0)
            except ProcessLookupError:
                return True
            return False
        return not process.is_running()

    def stopped() -> bool:
        return _all_in(_infos(handle), "STOPPED") and all(gone(p) for p in processes)

    t0 = time.perf_counter()
    if started is not None:
        started.append(t0)
    results = handle.supervisor.stopAllProcesses(False)
    t1 = _poll_until(stopped, "all STOPPED and gone")
    _check_results(results, "stopAllProcesses")
    return t1 - t0


# --------------------------------------------------------------------------- main


def _print_rows(rows: list[tuple[str, list[float]]]) -> None:
    widths = (44, 8, 12, 12, 12)
    head = ("name", "samples", "p50", "p95", "max")
    print(
        "| " + " | ".join(c.ljust(w) for c, w in zip(head, widths, strict=True)) + " |"
    )
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for name, values in rows:
        p50, p95 = _stats.p50_p95(values)
        cells = (str(len(values)), *map(_stats.fmt_ms, (p50, p95, max(values))))
        print(
            f"| {name.ljust(widths[0])} | "
            + " | ".join(c.rjust(w) for c, w in zip(cells, widths[1:], strict=True))
            + " |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples (smoke run)")
    parser.add_argument("--programs", type=int, help="programs (default 100, quick 10)")
    parser.add_argument("--cycles", type=int, help="start/kill/stop cycles (default 5)")
    parser.add_argument("--kills", type=int, help="kills per cycle (default 20)")
    parser.add_argument("--unpolled", type=int, help="unpolled kills (default 5)")
    args = parser.parse_args(argv)
    programs = args.programs or (10 if args.quick else 100)
    cycles = args.cycles or (1 if args.quick else 5)
    kills = args.kills or (3 if args.quick else 20)
    unpolled = args.unpolled if args.unpolled is not None else (1 if args.quick else 5)
    warmup = 0 if args.quick else 1

    wall = time.perf_counter()
    t0 = time.perf_counter()
    bin_dir = ensure_supervisor()
    setup = time.perf_counter() - t0

    starts: list[float] = []
    restarts: list[float] = []
    stops: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-sv-") as work,
        supervisord(programs, Path(work), bin_dir=bin_dir) as handle,
    ):
        _stats.print_title(
            "supervisord (anchor): start all, kill -9 -> RUNNING again, stop all",
            supervisor=handle.version,
            programs=programs,
            cycles=cycles,
            kills_per_cycle=kills,
            poll=f"{POLL_INTERVAL * 1e3:g} ms",
        )
        for cycle in range(warmup + cycles):
            start = start_all(handle)
            restart = kill_restart(handle, kills)
            stop = stop_all(handle)
            if cycle >= warmup:
                starts.append(start)
                restarts.extend(restart)
                stops.append(stop)
        quiet: list[float] = []
        if unpolled:
            start_all(handle)  # untimed: the programs must run to be killed
            quiet = kill_restart_unpolled(handle, unpolled)
            stop_all(handle)
        boot = handle.boot_seconds
    rows = [
        (f"start all ({programs} programs)", starts),
        ("kill -9 -> RUNNING, new pid (RPC polled)", restarts),
        (f"stop all ({programs} programs, gone)", stops),
    ]
    if quiet:
        rows.append(("kill -9 -> RUNNING, nobody polling (log)", quiet))
    _print_rows(rows)
    print()
    print(f"supervisord boot until XML-RPC answered: {_stats.fmt_ms(boot)}")
    print(f"setup (ensure_supervisor): {setup:.2f} s; venv: {bin_dir.parent}")
    print(f"wall time: {time.perf_counter() - wall:.1f} s")
    if handle.leftovers:
        print(f"supervisord left children behind: {handle.leftovers}", file=sys.stderr)
        return 1
    return _stats.finish()


if __name__ == "__main__":
    sys.exit(main())
