"""One run of a process agent's captured output: :class:`OutputStream` turns what one
pipe gives into stored lines (in its file, or after ``[agent] `` on a descriptor), and
:class:`AgentOutput` holds the agent's two streams and their shared tail.

Only the reader thread of :class:`~.output.OutputCapture` feeds a stream. A read block
is handled whole, without a Python step per line (``yes`` gives 32,768 lines per read):
it is decoded as UTF-8 with replacement (binary output cannot break a file or a
terminal), ``\\r\\n`` becomes ``\\n``, and one prefix is put before every line. A
line longer than :data:`MAX_LINE_BYTES` is cut into pieces of that size, each stored
as a line (counted in :attr:`OutputStream.cut_lines`, and said once per stream in a
WARNING), so a 10 MB line without a newline is never held whole.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .outputfiles import LogFile, Stream, format_stamp
from .outputtail import OutputTail

__all__ = ["MAX_LINE_BYTES", "AgentOutput", "LineHook", "OutputStream"]

logger = logging.getLogger("pyorchestrate.output")

MAX_LINE_BYTES = 64 * 1024
"""The longest line stored whole; a longer one is cut into pieces of this size."""

LineHook = Callable[[Stream, str], None]
"""Called on the reader thread with each line an agent wrote (its stream and text,
without the newline). It must not block; an exception it raises is logged once and
the hook is dropped."""


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
