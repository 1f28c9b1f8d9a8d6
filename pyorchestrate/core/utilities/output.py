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

import collections
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

from .outputfiles import STREAMS, LogFile, Stream, format_stamp, log_path

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

TAIL_LINES = 200
"""Lines an :class:`OutputTail` keeps by default."""

TAIL_BYTES = 32 * 1024
"""UTF-8 bytes an :class:`OutputTail` keeps by default, newlines included (older
lines go first; a single longer line keeps its end)."""

MAX_LINE_BYTES = 64 * 1024
"""The longest line stored whole; a longer one is cut into pieces of this size."""

READ_SIZE = 64 * 1024
"""Bytes read from one pipe at a time (a pipe holds 64 KiB by default); no more than
:data:`MAX_LINE_BYTES`, which :meth:`OutputStream.take` relies on."""

LOG_MAX_BYTES = 10 * 1024 * 1024
"""Default size at which an output file is rotated."""

LOG_BACKUPS = 5
"""Default number of rotated output files kept per stream."""

LineHook = Callable[[Stream, str], None]
"""Called on the reader thread with each line an agent wrote (its stream and text,
without the newline). It must not block; an exception it raises is logged once and
the hook is dropped."""


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


class OutputTail:
    """The last lines of an output: at most ``lines`` lines and ``max_bytes`` bytes
    (UTF-8, a newline counted after each line).

    Thread-safe: fed by the reader thread, read by anyone.
    """

    def __init__(self, lines: int = TAIL_LINES, max_bytes: int = TAIL_BYTES) -> None:
        self._max_lines = lines
        self._max_bytes = max_bytes
        self._lines: collections.deque[tuple[str, int]] = collections.deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self.total_lines = 0
        """Every line fed so far, kept or not."""

    @property
    def max_lines(self) -> int:
        """The most lines kept."""
        return self._max_lines

    def feed(self, line: str) -> None:
        """Keep ``line`` (without its newline) as the newest, dropping the oldest."""
        self.feed_many([line])

    def feed_many(self, lines: list[str], total: int | None = None) -> None:
        """Keep ``lines`` in order; ``total`` counts lines seen but not passed (the
        caller passes only the last ones when there are more than the tail keeps)."""
        sized = [self._fit(line) for line in lines[-self._max_lines :]]
        with self._lock:
            self.total_lines += len(lines) if total is None else total
            for line, size in sized:
                self._lines.append((line, size))
                self._bytes += size + 1
            while self._lines and (
                len(self._lines) > self._max_lines or self._bytes > self._max_bytes + 1
            ):
                self._bytes -= self._lines.popleft()[1] + 1

    def _fit(self, line: str) -> tuple[str, int]:
        size = len(line) if line.isascii() else len(line.encode("utf-8"))
        if size <= self._max_bytes:
            return line, size
        ellipsis = "…"
        room = self._max_bytes - len(ellipsis.encode("utf-8"))
        end = line.encode("utf-8")[-room:].decode("utf-8", "ignore") if room > 0 else ""
        line = ellipsis + end
        return line, len(line.encode("utf-8"))

    def text(self) -> str:
        """The kept lines, joined by newlines ("" when there are none)."""
        with self._lock:
            return "\n".join(line for line, _ in self._lines)

    def lines(self) -> list[str]:
        """The kept lines, oldest first."""
        with self._lock:
            return [line for line, _ in self._lines]


class OutputStream:
    """One captured pipe (an agent's stdout or stderr): cuts what it reads into lines,
    writes them where they go and feeds the agent's tail. Fed by the reader thread
    only.

    Args:
        agent: the agent's name.
        stream: which stream.
        tail: the agent's tail (shared by its two streams).
        file: its output file, or ``None`` to write to ``sink`` with a prefix.
        sink: the descriptor lines go to without a file.
        on_line: called with each line, or ``None``.
        wall: the wall clock that stamps lines in a file.
        on_end: called when the pipe ends.
    """

    def __init__(
        self,
        agent: str,
        stream: Stream,
        tail: OutputTail,
        *,
        file: LogFile | None,
        sink: int,
        on_line: LineHook | None,
        wall: Callable[[], float],
        on_end: Callable[[], None],
    ) -> None:
        self.name = agent
        self.stream = stream
        self.tail = tail
        self.file = file
        self._sink = sink
        self._prefix = f"[{agent}] ".encode("utf-8", "replace")
        self._on_line = on_line
        self._wall = wall
        self._on_end = on_end
        self._partial = b""
        self._done = threading.Event()
        self.cut_lines = 0
        """Lines cut because they were longer than :data:`MAX_LINE_BYTES`."""

    @property
    def done(self) -> bool:
        """Whether the pipe has ended (every writer closed it) or capture stopped."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the end; return whether it came."""
        return self._done.wait(timeout)

    def take(self, data: bytes) -> None:
        """Store the complete lines of what was read; keep an unfinished rest.

        Works on the whole block at once (``yes`` writes 32,768 lines per read): a line
        longer than :data:`MAX_LINE_BYTES` can only be the first or the unfinished
        last, as a read is no longer than that.
        """
        buf = self._partial + data
        end = buf.rfind(b"\n")
        rest = buf[end + 1 :]
        first = buf.find(b"\n")
        if len(rest) >= MAX_LINE_BYTES or first > MAX_LINE_BYTES:
            lines, self._partial = self._cut(
                buf[:end].split(b"\n") if end >= 0 else [], rest
            )
            if lines:
                self._store(b"\n".join(lines), len(lines))
            return
        self._partial = rest
        if end >= 0:
            self._store(buf[:end], buf.count(b"\n", 0, end) + 1)

    def _cut(self, lines: list[bytes], rest: bytes) -> tuple[list[bytes], bytes]:
        cut: list[bytes] = []
        pieces = 0
        for line in [*lines, rest]:
            while len(line) > MAX_LINE_BYTES:
                cut.append(line[:MAX_LINE_BYTES])
                line = line[MAX_LINE_BYTES:]
                pieces += 1
            cut.append(line)
        rest = cut.pop()
        if len(rest) == MAX_LINE_BYTES:  # a whole piece, waiting for nothing more
            cut.append(rest)
            rest = b""
            pieces += 1
        if pieces and not self.cut_lines:
            logger.warning(
                "agent %r wrote a line longer than %d bytes to %s: stored in pieces, "
                "one line each (said once)",
                self.name,
                MAX_LINE_BYTES,
                self.stream,
                extra={"agent": self.name},
            )
        self.cut_lines += pieces
        return cut, rest

    def _store(self, block: bytes, count: int) -> None:
        """Write ``block`` (``count`` lines joined by newlines) where it goes and keep
        its last lines in the tail."""
        if not block.isascii():
            block = block.decode("utf-8", "replace").encode("utf-8")
        if b"\r" in block:
            block = block.replace(b"\r\n", b"\n").removesuffix(b"\r")
        if self.file is not None:
            prefix = format_stamp(self._wall()).encode("ascii") + b" "
        else:
            prefix = self._prefix
        out = prefix + block.replace(b"\n", b"\n" + prefix) + b"\n"
        if self.file is not None:
            self.file.write(out)
        else:
            self._write_sink(out)
        keep = self.tail.max_lines
        last = block.rsplit(b"\n", keep)
        text = b"\n".join(last[-keep:]).decode("utf-8").split("\n")
        self.tail.feed_many(text, total=count)
        if self._on_line is not None:
            self._call_hook(block)

    def _call_hook(self, block: bytes) -> None:
        hook = self._on_line
        if hook is None:
            return
        try:
            for line in block.decode("utf-8").split("\n"):
                hook(self.stream, line)
        except Exception:
            self._on_line = None
            logger.exception(
                "agent %r: the output line hook failed; it is no longer called",
                self.name,
                extra={"agent": self.name},
            )

    def _write_sink(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._sink, view)
            except InterruptedError:
                continue
            except OSError:
                return  # our stdout/stderr is gone: the tail still has the lines
            view = view[written:]

    def finish(self) -> None:
        """The pipe ended: store an unfinished last line, close the file, mark done."""
        rest, self._partial = self._partial, b""
        if rest:
            self._store(rest, 1)  # its own line, not the start of whatever comes next
        if self.file is not None:
            self.file.close()
        self._done.set()
        with contextlib.suppress(Exception):
            self._on_end()


class AgentOutput:
    """One run of a process agent's captured output: its two streams and its tail.

    :attr:`stdout_fd` and :attr:`stderr_fd` are the pipes' write ends: give them to
    the child, then close them here (:meth:`close_writers`), or the pipes never end.
    """

    def __init__(
        self,
        name: str,
        tail: OutputTail,
        streams: dict[Stream, OutputStream],
        writers: dict[Stream, int],
    ) -> None:
        self.name = name
        self.tail = tail
        self.streams = streams
        self._writers = writers

    @property
    def stdout_fd(self) -> int:
        """The write end of the stdout pipe (-1 once closed here)."""
        return self._writers.get("stdout", -1)

    @property
    def stderr_fd(self) -> int:
        """The write end of the stderr pipe (-1 once closed here)."""
        return self._writers.get("stderr", -1)

    def close_writers(self) -> None:
        """Close this process's copies of the write ends. Idempotent."""
        writers, self._writers = self._writers, {}
        for fd in writers.values():
            with contextlib.suppress(OSError):
                os.close(fd)

    @property
    def done(self) -> bool:
        """Whether both pipes have ended."""
        return all(stream.done for stream in self.streams.values())

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for both ends; return whether they came."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for stream in self.streams.values():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not stream.wait(left):
                return False
        return True

    @property
    def files(self) -> dict[Stream, Path]:
        """The current output file of each stream (empty with ``logs_dir`` off)."""
        return {
            name: stream.file.path
            for name, stream in self.streams.items()
            if stream.file is not None
        }


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
                where = exc.filename or path
                raise OSError(
                    exc.errno,
                    f"cannot write its {stream} to {path} ({where}: "
                    f"{exc.strerror or exc})",
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
