"""Reading an agent's captured output files for ``logs``: the newest lines first, then
what is written after, across rotations.

Each captured stream of an agent is a file, ``<agent>.stdout.log`` or
``<agent>.stderr.log``, rotated ``RotatingFileHandler``-style to ``.1`` (the newest
old one) … ``.N``; each line is ``<ISO 8601 UTC timestamp> <text>``
(:mod:`pyorchestrate.core.utilities.outputfiles` writes them, and says where they are
and how a line is read).

- :class:`StreamCursor` reads one stream forward from a position, one complete line
  at a time. When its file is no longer the one at the stream's path (renamed to
  ``.1`` by a rotation, or by logrotate before a reopen) it reads that file to its
  end first, then the newer rotated files, then the new current file: a rotation loses
  no line. It moves to a new current file only once that file has bytes, since the
  writer may go on appending to the renamed one until it reopens. A file that shrank
  under it (copytruncate) is read again from its start.
- :class:`LogReader` places a cursor per stream so that the newest ``lines`` lines
  (or those since ``since``) of the streams together come first, scanning the files
  backwards from their ends (a tail of a large log costs a few blocks, not the whole
  file), and merges the streams in time order.

Nothing here blocks on anything but the local disk; the command server runs it on
its log-streaming thread, never on its selector thread.
"""

from __future__ import annotations

import contextlib
import heapq
import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from ..utilities.outputfiles import Stream, format_stamp, log_files, log_path
from .logquery import LogQuery

__all__ = [
    "MAX_LINE_BYTES",
    "STAMP_LEN",
    "LogEntry",
    "LogReader",
    "StreamCursor",
    "parse_stored_line",
    "stamp_of",
]

MAX_LINE_BYTES = 1_048_576
"""A stored line longer than this (no newline within it) is sent in pieces."""

_BLOCK = 65_536


class LogEntry(NamedTuple):
    """One stored line: its timestamp as stored, which stream, and its text."""

    ts: str
    """``2026-12-03T17:40:01.123Z``; a line stored without one has the one of the
    line before it (``""`` if none). Fixed width, UTC: it orders the merge as text."""
    stream: str
    line: str

    def to_dict(self) -> dict[str, str]:
        """The entry as the ``logs`` stream sends it."""
        return {"ts": self.ts, "stream": self.stream, "line": self.line}


STAMP_LEN = len(format_stamp(0.0))
"""The width of a stored line's timestamp (``2026-12-03T17:40:01.123Z``)."""

_NEWEST = "\uffff"  # sorts after every timestamp


def stamp_of(moment: float) -> str:
    """``moment`` (seconds since the epoch) as a stored timestamp, to compare with
    the ones in the files."""
    return format_stamp(moment)


def _stamp(raw: bytes) -> str | None:
    """The timestamp a stored line starts with, or ``None``: the check of
    :func:`~pyorchestrate.core.utilities.outputfiles.parse_line` on its shape, without
    parsing the date (a tail may read millions of lines)."""
    if (
        len(raw) > STAMP_LEN
        and raw[STAMP_LEN] == 0x20  # " "
        and raw[STAMP_LEN - 1] == 0x5A  # "Z"
        and raw[10] == 0x54  # "T"
        and raw[:4].isdigit()
    ):
        return raw[:STAMP_LEN].decode("ascii", "replace")
    return None


def parse_stored_line(raw: bytes) -> tuple[str | None, str]:
    """One stored line (without its newline): ``(timestamp, text)``.

    A line that does not start with a timestamp (written by something else) gives
    ``(None, the whole line)``; bytes that are not UTF-8 are replaced.
    """
    stamp = _stamp(raw)
    if stamp is None:
        return None, raw.decode("utf-8", "replace")
    return stamp, raw[STAMP_LEN + 1 :].decode("utf-8", "replace")


def _identity(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


class _Open(NamedTuple):
    fd: int
    identity: tuple[int, int]


def _open(path: Path) -> _Open | None:
    """``path`` open for reading, or ``None`` if it does not exist (any other error,
    such as a permission denied, is raised: the stream ends with it, visibly)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        return _Open(fd, _identity(os.fstat(fd)))
    except BaseException:
        os.close(fd)
        raise


def _close_all(files: list[_Open]) -> None:
    for file in files:
        with contextlib.suppress(OSError):
            os.close(file.fd)


class StreamCursor:
    """Reads one captured stream forward, across rotations (see the module doc).

    Owns at most one open file; :meth:`close` closes it (idempotent).

    Args:
        logs_dir: the orchestrator's directory of output files.
        agent: whose output.
        stream: ``stdout`` or ``stderr``.
    """

    def __init__(self, logs_dir: Path, agent: str, stream: Stream) -> None:
        self.path = log_path(logs_dir, agent, stream)
        self.stream = stream
        self._logs_dir = logs_dir
        self._agent = agent
        self._file: _Open | None = None
        self._offset = 0
        self._ts = ""  # the last timestamp read: a line without one takes it

    def place(self, file: _Open | None, offset: int) -> None:
        """Start at ``offset`` of ``file`` (already open; ``None``: the current file
        from its start, once it exists)."""
        self.close()
        self._file, self._offset = file, offset

    def close(self) -> None:
        """Close the open file. Idempotent."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                os.close(self._file.fd)
            self._file = None

    def _entry(self, raw: bytes) -> LogEntry:
        stamp, text = parse_stored_line(raw.removesuffix(b"\r"))
        if stamp is not None:
            self._ts = stamp
        return LogEntry(self._ts, self.stream, text)

    def read(self, budget: int) -> tuple[list[LogEntry], bool]:
        """Complete lines from where the cursor is, about ``budget`` bytes of them;
        and whether it has reached the end of what is written now."""
        entries: list[LogEntry] = []
        switches = 0
        while budget > 0:
            if self._file is None:
                self._file, self._offset = _open(self.path), 0
                if self._file is None:
                    return entries, True  # not written yet
            data = os.pread(self._file.fd, _BLOCK, self._offset)
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) == _BLOCK:  # a long line: find its end
                data = os.pread(self._file.fd, MAX_LINE_BYTES, self._offset)
                cut = data.rfind(b"\n") + 1 or (
                    len(data) if len(data) == MAX_LINE_BYTES else 0
                )
            if cut:
                lines = data[:cut].split(b"\n")
                if data[cut - 1 : cut] == b"\n":
                    lines.pop()
                entries.extend(self._entry(raw) for raw in lines)
                self._offset += cut
                budget -= cut
                continue
            switches += 1
            if switches > 16:  # files renamed under us again and again: next round
                return entries, False
            if not self._move_on(entries, data):
                return entries, True
        return entries, False

    def _move_on(self, entries: list[LogEntry], rest: bytes) -> bool:
        """At the end of the open file (``rest``: an unfinished last line): go on to
        the next file if this one was rotated away; whether there is more to read."""
        assert self._file is not None
        try:
            current = _identity(self.path.stat())
        except OSError:
            current = None  # renamed away, the new one not made yet: keep this one
        if current == self._file.identity:
            if os.fstat(self._file.fd).st_size < self._offset:  # truncated in place
                self._offset = 0
                return True
            return False
        if current is None:
            return False
        following = self._following(self._file.identity)
        if not following:
            return False
        opened = _open(following[0])
        if opened is None:
            return False
        if following[0] == self.path and os.fstat(opened.fd).st_size == 0:
            os.close(opened.fd)  # the writer may not have reopened yet: wait for bytes
            return False
        if rest:  # the old file is finished: its unfinished line is a line
            entries.append(self._entry(rest))
        self.close()
        self._file, self._offset = opened, 0
        return True

    def _following(self, identity: tuple[int, int]) -> list[Path]:
        """The files written after the one with ``identity``, oldest first (every
        rotated file and the current one when it is not found: then it was the
        oldest, and has been deleted)."""
        files = self._files()
        if not files or files[-1] != self.path:
            files.append(self.path)
        for index, path in enumerate(files):
            with contextlib.suppress(OSError):
                if _identity(path.stat()) == identity:
                    return files[index + 1 :]
        return files

    def _files(self) -> list[Path]:
        """The stream's files that exist, oldest first, the current one last."""
        return log_files(self._logs_dir, self._agent, self.stream)

    # ------------------------------------------------------------ backwards
    def scan_files(self) -> list[_Open]:
        """The stream's files, open, newest first: the current one, ``.1``, …"""
        found: list[_Open] = []
        try:
            for path in reversed(self._files()):
                opened = _open(path)
                if opened is not None:
                    found.append(opened)
        except BaseException:
            _close_all(found)
            raise
        return found

    @staticmethod
    def backwards(files: list[_Open]) -> Iterator[tuple[str, int, int]]:
        """Every complete line of ``files`` (newest first), newest line first, as
        ``(key, file index, offset of the line)``. A line without a timestamp takes
        the key of the newer line before it (after every timestamp for the newest)."""
        key = _NEWEST
        for index, file in enumerate(files):
            position = StreamCursor.end_of_lines(file) - 1  # before the last newline
            if position < 0:
                continue  # no complete line
            tail = b""
            while position > 0:
                size = min(_BLOCK, position)
                position -= size
                pieces = (os.pread(file.fd, size, position) + tail).split(b"\n")
                tail = pieces[0]
                offset = position + len(tail) + 1
                found = []
                for raw in pieces[1:]:
                    found.append((offset, raw))
                    offset += len(raw) + 1
                for offset, raw in reversed(found):
                    key = _stamp(raw) or key
                    yield key, index, offset
            key = _stamp(tail) or key
            yield key, index, 0

    @staticmethod
    def end_of_lines(file: _Open) -> int:
        """The offset just after the last complete line of ``file``."""
        position = os.fstat(file.fd).st_size
        while position > 0:
            size = min(_BLOCK, position)
            position -= size
            block = os.pread(file.fd, size, position)
            newline = block.rfind(b"\n")
            if newline >= 0:
                return position + newline + 1
        return 0


def _newest_first(n: int, files: list[_Open]) -> Iterator[tuple[str, int, int, int]]:
    """Stream ``n``'s lines newest first, for ``heapq.merge(reverse=True)``: at equal
    times the later stream counts as newer, as the forward merge puts it after the
    earlier one."""
    for key, index, offset in StreamCursor.backwards(files):
        yield key, n, index, offset


class LogReader:
    """The streams of one agent, merged in time order, from where a query starts.

    Args:
        logs_dir: the orchestrator's directory of output files.
        query: whose output, which streams, how many lines first, since when.
    """

    def __init__(self, logs_dir: Path, query: LogQuery) -> None:
        self.cursors = [
            StreamCursor(logs_dir, query.agent, stream) for stream in query.streams
        ]
        self._buffers: list[deque[LogEntry]] = [deque() for _ in self.cursors]
        self._ended = [False for _ in self.cursors]
        try:
            self._place(query)
        except BaseException:
            self.close()
            raise

    def _place(self, query: LogQuery) -> None:
        scans: list[list[_Open]] = []
        try:
            for cursor in self.cursors:
                scans.append(cursor.scan_files())
            since = None if query.since is None else stamp_of(query.since.timestamp())
            if query.lines is None and since is None:  # everything there is
                for cursor, files in zip(self.cursors, scans, strict=True):
                    if files:
                        cursor.place(files.pop(), 0)
                return
            starts: list[tuple[int, int] | None] = [None for _ in self.cursors]
            merged = heapq.merge(
                *(_newest_first(n, files) for n, files in enumerate(scans)),
                reverse=True,
            )
            for taken, (key, n, index, offset) in enumerate(merged):
                if query.lines is not None and taken >= query.lines:
                    break
                if since is not None and key < since:
                    break
                starts[n] = (index, offset)
            for n, (cursor, files) in enumerate(zip(self.cursors, scans, strict=True)):
                start = starts[n]
                if start is not None:
                    cursor.place(files.pop(start[0]), start[1])
                elif files:  # nothing of it first: from the end of what is there
                    end = StreamCursor.end_of_lines(files[0])
                    cursor.place(files.pop(0), end)
        finally:
            for files in scans:
                _close_all(files)

    def close(self) -> None:
        """Close every open file. Idempotent."""
        for cursor in self.cursors:
            cursor.close()

    def read(self, budget: int = 262_144) -> tuple[list[LogEntry], bool]:
        """The next entries in time order (about ``budget`` bytes a stream), and
        whether everything written so far has been returned."""
        for n, cursor in enumerate(self.cursors):
            if len(self._buffers[n]) < 4096:
                entries, self._ended[n] = cursor.read(budget)
                self._buffers[n].extend(entries)
        out: list[LogEntry] = []
        buffers = self._buffers
        while True:
            waiting = [n for n, buffer in enumerate(buffers) if buffer]
            if not waiting:
                break
            if len(waiting) < len(buffers):
                # A stream with nothing buffered may still have an older line to
                # read: only when it is at its end can the others go on alone.
                if not all(self._ended[n] for n, b in enumerate(buffers) if not b):
                    break
                for n in waiting:
                    out.extend(buffers[n])
                    buffers[n].clear()
                if len(waiting) > 1:
                    out.sort(key=lambda entry: entry.ts)
                break
            n = min(waiting, key=lambda i: buffers[i][0].ts)
            out.append(buffers[n].popleft())
        caught_up = all(self._ended) and not any(buffers)
        return out, caught_up
