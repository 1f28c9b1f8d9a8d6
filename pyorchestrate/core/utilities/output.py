"""What process agents write to stderr: passed on to the orchestrator's stderr, and
the last lines kept for alerts and ``status``.

A process agent's file descriptor 2 is the write end of a pipe the orchestrator made
for it (:meth:`OutputCapture.open`), so everything reaches the pipe: ``print(...,
file=sys.stderr)``, ``os.write(2, ...)``, C code, Python's own tracebacks and fatal
error reports, and whatever it wrote before a SIGKILL, ``os._exit`` or a segfault.

One thread per orchestrator (``pyorchestrate-output-NAME``, started with the first
process agent) reads every pipe with one selector. It writes each complete line to
the orchestrator's own stderr (fd 2) as it came, bytes unchanged, so lines of
different agents do not cut into each other, and it keeps the last lines of each pipe
in an :class:`OutputTail` (at most :data:`TAIL_LINES` lines and :data:`TAIL_CHARS`
characters). A pipe ends (:attr:`OutputStream.done`) when every process holding its
write end has closed it: the agent and anything it started that is still alive.

Memory is bounded: one tail per pipe, and at most :data:`MAX_LINE_BYTES` of a line
that has no end yet (a longer one is passed on in pieces).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import selectors
import threading
from collections.abc import Callable

__all__ = [
    "MAX_LINE_BYTES",
    "TAIL_CHARS",
    "TAIL_LINES",
    "OutputCapture",
    "OutputStream",
    "OutputTail",
]

logger = logging.getLogger("pyorchestrate.output")

TAIL_LINES = 20
"""Lines an :class:`OutputTail` keeps."""

TAIL_CHARS = 2_000
"""Characters an :class:`OutputTail` keeps, newlines included (older lines go first;
a single longer line keeps its end)."""

MAX_LINE_BYTES = 64 * 1024
"""Bytes of an unfinished line held back, waiting for its end; beyond it, the bytes
are passed on as they are."""

_READ_SIZE = 64 * 1024


class OutputTail:
    """The last lines of an output: at most ``lines`` lines and ``chars`` characters.

    Thread-safe: fed by the reader thread, read by anyone.
    """

    def __init__(self, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> None:
        self._max_lines = lines
        self._max_chars = chars
        self._lines: collections.deque[str] = collections.deque()
        self._chars = 0
        self._lock = threading.Lock()
        self.total_lines = 0
        """Every line fed so far, kept or not."""

    def feed(self, line: str) -> None:
        """Keep ``line`` (without its newline) as the newest, dropping the oldest."""
        if len(line) > self._max_chars:
            line = "…" + line[-(self._max_chars - 1) :]
        with self._lock:
            self.total_lines += 1
            self._lines.append(line)
            self._chars += len(line) + 1
            while self._lines and (
                len(self._lines) > self._max_lines or self._chars > self._max_chars + 1
            ):
                self._chars -= len(self._lines.popleft()) + 1

    def text(self) -> str:
        """The kept lines, joined by newlines ("" when there are none)."""
        with self._lock:
            return "\n".join(self._lines)

    def lines(self) -> list[str]:
        """The kept lines, oldest first."""
        with self._lock:
            return list(self._lines)


class OutputStream:
    """One captured pipe: its tail, and whether it has ended."""

    def __init__(self, name: str, on_end: Callable[[], None]) -> None:
        self.name = name
        self.tail = OutputTail()
        self._done = threading.Event()
        self._on_end = on_end
        self._partial = b""

    @property
    def done(self) -> bool:
        """Whether the pipe has ended (every writer closed it) or capture stopped."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the end; return whether it came."""
        return self._done.wait(timeout)

    def _take(self, data: bytes) -> bytes:
        """Split ``data`` into whole lines (returned, to pass on) and keep the rest."""
        data = self._partial + data
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) < MAX_LINE_BYTES:
            self._partial = data
            return b""
        if cut == 0:
            cut = len(data)
        whole, self._partial = data[:cut], data[cut:]
        self._keep(whole)
        return whole

    def _keep(self, whole: bytes) -> None:
        text = whole.decode("utf-8", "replace")
        if text.endswith("\n"):
            text = text[:-1]
        for line in text.split("\n"):
            self.tail.feed(line.rstrip("\r"))

    def _finish(self) -> bytes:
        rest, self._partial = self._partial, b""
        if rest:
            self._keep(rest)
            rest += b"\n"  # its own line, not the start of whatever comes next
        self._done.set()
        with contextlib.suppress(Exception):
            self._on_end()
        return rest


class OutputCapture:
    """Owns the pipes of process agents' stderr and the one thread that reads them.

    Args:
        name: the orchestrator's name, for the thread's name.
        on_end: called (on the reader thread) when a pipe ends; must not block.
        sink: where the lines go (default: this process's fd 2).
    """

    def __init__(
        self,
        name: str = "orchestrator",
        *,
        on_end: Callable[[], None] = lambda: None,
        sink: int = 2,
    ) -> None:
        self._name = name
        self._on_end = on_end
        self._sink = sink
        self._lock = threading.Lock()
        self._streams: dict[int, OutputStream] = {}
        self._new: list[int] = []
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1
        self._closed = False

    def open(self, name: str) -> tuple[int, OutputStream] | None:
        """A new pipe for agent ``name``: ``(write end, stream)``, or ``None`` when
        capture is closed or no pipe can be made (the agent keeps our stderr then).

        Give the write end to the child, then close it here.
        """
        with self._lock:
            if self._closed:
                return None
            try:
                if self._thread is None:
                    self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
                read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
            except OSError as exc:
                logger.warning("agent %r: its stderr is not captured (%s)", name, exc)
                return None
            os.set_blocking(read_fd, False)
            stream = OutputStream(name, self._on_end)
            self._streams[read_fd] = stream
            self._new.append(read_fd)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run,
                    name=f"pyorchestrate-output-{self._name}",
                    daemon=True,
                )
                self._thread.start()
        self._wake()
        return write_fd, stream

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
        finally:
            selector.close()

    def _read(self, fd: int) -> bool:
        """Read what ``fd`` has; ``False`` at its end (or when there is nothing now
        while closing)."""
        stream = self._streams[fd]
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return not self._closed
        except OSError as exc:
            if exc.errno != errno.EIO:
                logger.warning(
                    "agent %r: reading its stderr failed: %s", stream.name, exc
                )
            return False
        if not data:
            return False
        self._pass_on(stream._take(data))
        return True

    def _end(self, fd: int) -> None:
        with self._lock:
            stream = self._streams.pop(fd, None)
        with contextlib.suppress(OSError):
            os.close(fd)
        if stream is not None:
            self._pass_on(stream._finish())

    def _pass_on(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._sink, view)
            except InterruptedError:
                continue
            except OSError:
                return  # our stderr is gone: the tail still has the lines
            view = view[written:]

    def close(self, timeout: float = 2.0) -> bool:
        """Pass on what the pipes hold, end every stream, stop the thread; return
        whether it ended. Idempotent."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is None:
            return True
        self._wake()
        thread.join(timeout)
        ended = not thread.is_alive()
        if ended and self._wake_r >= 0:
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._wake_r = self._wake_w = -1
        return ended
