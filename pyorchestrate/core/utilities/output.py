"""What process agents write to stdout and stderr: stored in per-agent files (or passed
on to the orchestrator's own stdout and stderr), and the last lines kept for alerts and
``status``.

A process agent's file descriptors 1 and 2 are the write ends of two pipes the
orchestrator made for it (:meth:`OutputCapture.open`), so everything reaches them:
``print(...)``, ``os.write(1, ...)``, C code, Python's own tracebacks and fatal error
reports, and whatever it wrote before a SIGKILL, ``os._exit`` or a segfault.

One thread per orchestrator (``pyorchestrate-output-NAME``, started with the first
process agent) reads every pipe, non-blocking, with one selector. It is the only one
that writes the output: each complete line goes

* with ``logs_dir`` set, to the agent's file for that stream, after a timestamp
  (:mod:`pyorchestrate.core.utilities.outputfiles`: layout, line format, rotation, and
  the API ``pyorchestrate logs`` reads them with);
* with ``logs_dir`` off (``None``), to the orchestrator's stdout (fd 1) or stderr
  (fd 2), after ``[agent] ``, one whole line at a time so lines of different agents
  do not cut into each other.

It also keeps the last lines of each agent, both streams in the order they were read,
in an :class:`OutputTail` (by default the last :data:`TAIL_LINES` lines and at most
:data:`TAIL_BYTES` bytes), which AGENT_ERROR and AGENT_TERMINATED carry as
``output_tail``. An agent's output ends (:attr:`AgentOutput.done`) when every process
holding a write end has closed it: the agent and anything it started that is still
alive.

Modules: this one owns the pipes, the files and the thread (:class:`OutputCapture`);
:mod:`.outputstream` turns one pipe's bytes into stored lines (:class:`OutputStream`,
:class:`AgentOutput`); :mod:`.outputtail` keeps the last lines (:class:`OutputTail`);
:mod:`.outputfiles` writes and rotates the files and says how to read them. The names
of the first three are importable from here too.

Bounds. Bytes are decoded as UTF-8 with replacement (binary output cannot break a
file or a terminal). A line longer than :data:`MAX_LINE_BYTES` is cut into pieces of
that size, each stored as a line (counted, and said once per stream in a WARNING), so
a 10 MB line without a newline is never held whole. Nothing else is buffered: the
thread reads at most :data:`READ_SIZE` bytes per pipe per turn, and an agent that
writes faster than its output can be stored waits on its full pipe, so memory stays
bounded and the router never waits on any of it. A write that fails (a full disk) is
dropped, counted and said once (:class:`~.outputfiles.LogFile`); the tail keeps it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import selectors
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .outputfiles import STREAMS, LogFile, Stream, log_path
from .outputstream import MAX_LINE_BYTES, AgentOutput, LineHook, OutputStream
from .outputtail import TAIL_BYTES, TAIL_LINES, OutputTail

__all__ = [
    "LOG_BACKUPS",
    "LOG_MAX_BYTES",
    "MAX_LINE_BYTES",
    "READ_SIZE",
    "TAIL_BYTES",
    "TAIL_LINES",
    "AgentOutput",
    "LineHook",
    "OutputCapture",
    "OutputSettings",
    "OutputStream",
    "OutputTail",
    "ReopenResult",
]

logger = logging.getLogger("pyorchestrate.output")

READ_SIZE = 16 * 1024
"""Bytes read from one pipe at a time; no more than
:data:`~.outputstream.MAX_LINE_BYTES`, which :meth:`OutputStream.take` relies on.

It bounds how long the thread holds the GIL between two system calls (which let the
command server and the router in): a job writing flat out keeps this thread busy,
and storing 16 KiB of ``yes`` (8,192 lines, each stamped) takes about 1 ms. With 64
KiB reads `ps` waited up to 22-54 ms at p99 behind it, with 16 KiB 15-16 ms
(``bench/bench_commands.py``), for about 40 % less throughput of 100-byte lines (some
450,000 lines/s, 45 MB/s, per job)."""
assert READ_SIZE <= MAX_LINE_BYTES

LOG_MAX_BYTES = 10 * 1024 * 1024
"""Default size at which an output file is rotated."""

LOG_BACKUPS = 5
"""Default number of rotated output files kept per stream."""


@dataclass(frozen=True, slots=True)
class OutputSettings:
    """Where captured output goes and how much of it is kept in memory.

    Attributes:
        logs_dir: the directory of the agents' output files (``None``: pass lines on
            to the orchestrator's stdout and stderr, prefixed ``[agent] ``).
        log_max_bytes: rotate an output file when it would grow past this (0: never).
        log_backups: rotated files kept per stream (0: truncate instead).
        tail_lines: lines kept in memory per agent.
        tail_bytes: UTF-8 bytes kept in memory per agent.
    """

    logs_dir: Path | None = None
    log_max_bytes: int = LOG_MAX_BYTES
    log_backups: int = LOG_BACKUPS
    tail_lines: int = TAIL_LINES
    tail_bytes: int = TAIL_BYTES


@dataclass(frozen=True, slots=True)
class ReopenResult:
    """What :meth:`OutputCapture.reopen_logs` did: the files reopened, and those that
    could not be (with the error)."""

    reopened: tuple[Path, ...] = ()
    failed: tuple[tuple[Path, str], ...] = ()


class OutputCapture:
    """Owns the pipes of process agents' stdout and stderr, their output files, and
    the one thread that reads the pipes and writes the files.

    Args:
        name: the orchestrator's name, for the thread's name.
        settings: where the output goes, how much of it is kept.
        on_end: called (on the reader thread) when a pipe ends; must not block.
        stdout_sink: where stdout lines go with ``logs_dir`` off (default fd 1).
        stderr_sink: where stderr lines go with ``logs_dir`` off (default fd 2).
        wall: the wall clock that stamps stored lines.
    """

    def __init__(
        self,
        name: str = "orchestrator",
        *,
        settings: OutputSettings | None = None,
        on_end: Callable[[], None] = lambda: None,
        stdout_sink: int = 1,
        stderr_sink: int = 2,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._name = name
        self.settings = settings if settings is not None else OutputSettings()
        self._on_end = on_end
        self._sinks: dict[Stream, int] = {"stdout": stdout_sink, "stderr": stderr_sink}
        self._wall = wall
        self._lock = threading.Lock()
        self._streams: dict[int, OutputStream] = {}
        self._new: list[int] = []
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1
        self._closed = False

    @property
    def logs_dir(self) -> Path | None:
        """The directory of the output files (``None``: off)."""
        return self.settings.logs_dir

    def open(self, name: str, *, on_line: LineHook | None = None) -> AgentOutput | None:
        """New pipes (and output files) for agent ``name``, or ``None`` when capture
        is closed or no pipe can be made (the agent keeps our stdout and stderr then).

        Give the write ends to the child, then close them here
        (:meth:`AgentOutput.close_writers`).

        Raises:
            OSError: an output file cannot be opened; the message names its path.
        """
        files = self._open_files(name)
        settings = self.settings
        tail = OutputTail(settings.tail_lines, settings.tail_bytes)
        made: list[int] = []
        with self._lock:
            try:
                if self._closed:
                    raise _Closed
                if self._thread is None and self._wake_r < 0:
                    self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
                pipes = {}
                for stream in STREAMS:
                    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
                    made += (read_fd, write_fd)
                    os.set_blocking(read_fd, False)
                    pipes[stream] = (read_fd, write_fd)
            except (OSError, _Closed) as exc:
                for fd in made:
                    os.close(fd)
                for file in files.values():
                    file.close()
                if isinstance(exc, OSError):
                    logger.warning(
                        "agent %r: its output is not captured (%s)", name, exc
                    )
                return None
            streams = {
                stream: OutputStream(
                    name,
                    stream,
                    tail,
                    file=files.get(stream),
                    sink=self._sinks[stream],
                    on_line=on_line,
                    wall=self._wall,
                    on_end=self._on_end,
                )
                for stream in STREAMS
            }
            for stream, (read_fd, _) in pipes.items():
                self._streams[read_fd] = streams[stream]
                self._new.append(read_fd)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run,
                    name=f"pyorchestrate-output-{self._name}",
                    daemon=True,
                )
                self._thread.start()
        self._wake()
        writers = {stream: write_fd for stream, (_, write_fd) in pipes.items()}
        return AgentOutput(name, tail, streams, writers)

    def _open_files(self, name: str) -> dict[Stream, LogFile]:
        logs_dir = self.settings.logs_dir
        files: dict[Stream, LogFile] = {}
        if logs_dir is None:
            return files
        for stream in STREAMS:
            path = log_path(logs_dir, name, stream)
            try:
                files[stream] = LogFile(
                    path,
                    max_bytes=self.settings.log_max_bytes,
                    backups=self.settings.log_backups,
                )
            except OSError as exc:
                for file in files.values():
                    file.close()
                why = exc.strerror or str(exc)
                if exc.filename and str(exc.filename) != str(path):
                    why = f"{exc.filename}: {why}"  # a directory on the way
                raise OSError(
                    exc.errno, f"cannot write its {stream} to {path} ({why})"
                ) from exc
        return files

    def log_files(self, name: str) -> dict[Stream, Path]:
        """The current output file of each stream of agent ``name`` (empty with
        ``logs_dir`` off), whether or not the agent has run."""
        logs_dir = self.settings.logs_dir
        if logs_dir is None:
            return {}
        return {stream: log_path(logs_dir, name, stream) for stream in STREAMS}

    def reopen_logs(self) -> ReopenResult:
        """Close and open again every output file in use (after logrotate or a user
        moved them away); files open again at their paths, new if need be."""
        with self._lock:
            files = [s.file for s in self._streams.values() if s.file is not None]
        reopened: list[Path] = []
        failed: list[tuple[Path, str]] = []
        for file in files:
            error = file.reopen()
            if error is None:
                reopened.append(file.path)
            else:
                failed.append((file.path, str(error)))
        return ReopenResult(tuple(reopened), tuple(failed))

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"w")

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ)
        try:
            while True:
                with self._lock:
                    new, self._new = self._new, []
                    closed = self._closed
                for fd in new:
                    selector.register(fd, selectors.EVENT_READ)
                if closed:
                    break
                for key, _ in selector.select():
                    fd = int(key.fd)
                    if fd == self._wake_r:
                        with contextlib.suppress(OSError):
                            while os.read(fd, 4096):
                                pass
                        continue
                    if not self._read(fd):
                        selector.unregister(fd)
                        self._end(fd)
            # Closing: take what the pipes hold now, then end them all.
            with self._lock:
                fds = list(self._streams)
            for fd in fds:
                while self._read(fd):
                    pass
                self._end(fd)
        except Exception:  # a bug: say so, and end the streams so no one waits
            logger.exception("the output reader %r failed", self._name)
            with self._lock:
                fds = list(self._streams)
            for fd in fds:
                self._end(fd)
        finally:
            selector.close()

    def _read(self, fd: int) -> bool:
        """Read what ``fd`` has; ``False`` at its end (or when there is nothing now
        while closing)."""
        stream = self._streams[fd]
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return not self._closed
        except OSError as exc:
            if exc.errno != errno.EIO:
                logger.warning(
                    "agent %r: reading its %s failed: %s",
                    stream.name,
                    stream.stream,
                    exc,
                )
            return False
        if not data:
            return False
        stream.take(data)
        return True

    def _end(self, fd: int) -> None:
        with self._lock:
            stream = self._streams.pop(fd, None)
        with contextlib.suppress(OSError):
            os.close(fd)
        if stream is not None:
            stream.finish()

    def close(self, timeout: float = 2.0) -> bool:
        """Store what the pipes hold, end every stream, close the files, stop the
        thread; return whether it ended. Idempotent."""
        with self._lock:
            self._closed = True
            thread = self._thread
        ended = True
        if thread is not None:
            self._wake()
            thread.join(timeout)
            ended = not thread.is_alive()
        if ended and self._wake_r >= 0:
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._wake_r = self._wake_w = -1
        return ended


class _Closed(Exception):
    """Capture is closed: no new pipes."""
