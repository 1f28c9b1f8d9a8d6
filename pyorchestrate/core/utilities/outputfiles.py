"""The files a process agent's output goes to: where they are, how a line is stored in
them, and the rotating writer that writes them.

Layout. With the orchestrator's ``logs_dir`` set (by default
``$XDG_STATE_HOME/pyorchestrate/logs/<orchestrator>/``, see :func:`default_logs_dir`),
each process agent has two files, one per stream::

    <logs_dir>/<agent>.stdout.log      the current file
    <logs_dir>/<agent>.stdout.log.1    the previous one (rotated)
    ...
    <logs_dir>/<agent>.stdout.log.N    the oldest kept (N = log_backups)
    <logs_dir>/<agent>.stderr.log ...  the same for stderr

(:func:`log_path`; an agent name's ``/`` and ``%`` are written ``%2F`` and ``%25``).
When the current file would grow past ``log_max_bytes``, it is rotated like
:class:`logging.handlers.RotatingFileHandler` does: ``.N-1`` becomes ``.N`` (the
oldest is dropped), ..., the current file becomes ``.1``, and a new current file is
started. ``log_max_bytes=0`` never rotates; ``log_backups=0`` starts the current file
again (truncates it) instead of keeping a backup.

Line format. Every line holds one output line, after an ISO-8601 UTC timestamp with
milliseconds (when the orchestrator read it) and one space::

    2026-12-03T17:40:01.123Z backup of /data started

The text is UTF-8 (bytes that are not are replaced by U+FFFD) and holds no newline
(a ``\r`` before one is dropped; a lone ``\r``, as progress bars write, stays: split
stored lines on ``"\n"`` only, e.g. ``open(path, newline="\n")``, not with
``str.splitlines``). A line longer than the reader's bound was cut into several
lines.

API for readers (``pyorchestrate logs``):

* :func:`log_path` (``logs_dir``, agent, stream) → the current file's path;
* :func:`log_files` (same) → the files that exist, oldest first, current last: read
  them in this order to get the lines in order;
* :func:`parse_line` (one stored line) → :class:`LogLine` ``(timestamp, text)``, or
  ``None`` for a line not in the format (one written by something else);
* :data:`STREAMS` / :data:`Stream`: ``"stdout"`` and ``"stderr"``.

The orchestrator side: ``Orchestrator.logs_dir`` (``None`` when off),
``Orchestrator.log_files(name, stream)`` and ``Orchestrator.reopen_logs()``.

The writer, :class:`LogFile`, is owned by the output reader thread
(:mod:`pyorchestrate.core.utilities.output`), which is the only one that writes and
rotates; :meth:`LogFile.reopen` may come from any thread (it takes the file's lock).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

__all__ = [
    "STREAMS",
    "LogFile",
    "LogLine",
    "Stream",
    "default_logs_dir",
    "file_stem",
    "format_stamp",
    "log_files",
    "log_path",
    "parse_line",
]

logger = logging.getLogger("pyorchestrate.output")

Stream = Literal["stdout", "stderr"]
"""One of a process agent's two output streams."""

STREAMS: tuple[Stream, ...] = get_args(Stream)
"""``("stdout", "stderr")``."""

_STAMP_LEN = len("2026-12-03T17:40:01.123Z")


@dataclass(frozen=True, slots=True)
class LogLine:
    """One stored output line: when it was read (UTC, aware) and its text."""

    timestamp: datetime
    text: str


def format_stamp(when: float) -> str:
    """``when`` (seconds since the epoch) as the timestamp that starts a stored line:
    ``2026-12-03T17:40:01.123Z``."""
    moment = datetime.fromtimestamp(when, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_line(line: str) -> LogLine | None:
    """A stored line (with or without its newline) as :class:`LogLine`, or ``None``
    when it does not start with a timestamp and a space."""
    line = line.removesuffix("\n")
    if len(line) < _STAMP_LEN + 1 or line[_STAMP_LEN] != " ":
        return None
    stamp = line[:_STAMP_LEN]
    if stamp[-1] != "Z" or stamp[10] != "T":
        return None
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return LogLine(when, line[_STAMP_LEN + 1 :])


def default_logs_dir(orchestrator: str) -> Path:
    """Where an orchestrator called ``orchestrator`` keeps its agents' output by
    default: ``$XDG_STATE_HOME/pyorchestrate/logs/<orchestrator>`` (``XDG_STATE_HOME``
    defaults to ``~/.local/state``). The name is made safe for a path (characters
    other than letters, digits, ``-``, ``_`` and ``.`` become ``_``)."""
    state = os.environ.get("XDG_STATE_HOME") or ""
    base = Path(state) if Path(state).is_absolute() else Path.home() / ".local/state"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in orchestrator)
    if safe.strip(".") == "":
        safe = "orchestrator"
    return base / "pyorchestrate" / "logs" / safe


def file_stem(agent: str) -> str:
    """The part of an agent's file names that names the agent: the name itself, with
    ``%`` and ``/`` written ``%25`` and ``%2F`` (a leading ``.`` as ``%2E``)."""
    stem = agent.replace("%", "%25").replace("/", "%2F")
    if stem.startswith("."):
        stem = "%2E" + stem[1:]
    return stem


def log_path(logs_dir: Path, agent: str, stream: Stream) -> Path:
    """The current file of ``agent``'s ``stream``: ``<logs_dir>/<agent>.<stream>.log``."""
    if stream not in STREAMS:
        raise ValueError(f"stream: must be one of {', '.join(STREAMS)}, not {stream!r}")
    return logs_dir / f"{file_stem(agent)}.{stream}.log"


def log_files(logs_dir: Path, agent: str, stream: Stream) -> list[Path]:
    """The files of ``agent``'s ``stream`` that exist, oldest first: the rotated ones
    (``.N`` … ``.1``), then the current one."""
    current = log_path(logs_dir, agent, stream)
    rotated: list[tuple[int, Path]] = []
    with contextlib.suppress(OSError):
        for path in logs_dir.glob(f"{_glob_escape(current.name)}.*"):
            suffix = path.name[len(current.name) + 1 :]
            if suffix.isdigit() and suffix[0] != "0":
                rotated.append((int(suffix), path))
    found = [path for _, path in sorted(rotated, reverse=True)]
    if current.exists():
        found.append(current)
    return found


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


class LogFile:
    """One stream's current file, appended to and rotated by size.

    Opened at once, so a file that cannot be written fails the agent's start (the
    ``OSError`` names the path). Writes never raise: a failed write drops its data,
    counts it (:attr:`dropped_bytes`), and says so once (a WARNING) until a write
    succeeds again.

    Args:
        path: the current file.
        max_bytes: rotate when the file would grow past this (0: never).
        backups: rotated files kept (0: truncate instead).
    """

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._backups = backups
        self._lock = threading.Lock()
        self._fd = -1
        self._size = 0
        self._failing = False
        self._closed = False
        self.dropped_bytes = 0
        """Bytes that could not be written."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._open()

    def _open(self) -> None:
        fd = os.open(
            self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        try:
            self._size = os.fstat(fd).st_size
        except OSError:
            os.close(fd)
            raise
        self._fd = fd

    def write(self, data: bytes) -> None:
        """Append ``data`` (whole lines), rotating first if it would not fit."""
        with self._lock:
            remaining = len(data)
            if self._closed:
                self.dropped_bytes += remaining
                return
            try:
                if self._fd < 0:
                    self._open()  # a failed rotation or reopen: try again
                limit = self._max_bytes
                if limit and self._size and self._size + remaining > limit:
                    self._rotate()
                view = memoryview(data)
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
                    remaining -= written
                    self._size += written
            except OSError as exc:
                self._drop(remaining, exc)
                return
            self._failing = False

    def _drop(self, size: int, exc: OSError) -> None:
        self.dropped_bytes += size
        if not self._failing:
            self._failing = True
            logger.warning(
                "output file %s: %s; dropping output until a write succeeds "
                "(the in-memory tail still has it)",
                self.path,
                exc,
            )

    def _rotate(self) -> None:
        """Close, shift ``.1``…``.N-1`` up, make the current file ``.1``, open anew."""
        os.close(self._fd)
        self._fd = -1
        if self._backups > 0:
            for index in range(self._backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                with contextlib.suppress(FileNotFoundError):
                    older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
            with contextlib.suppress(FileNotFoundError):
                self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        self._open()

    def reopen(self) -> OSError | None:
        """Close the file and open its path again (after something else renamed or
        removed it); return the error if it cannot be opened (writes are dropped
        until a later reopen succeeds). A closed file stays closed."""
        with self._lock:
            if self._closed:
                return None
            if self._fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = -1
            try:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._open()
            except OSError as exc:
                self._drop(0, exc)
                return exc
            self._failing = False
            return None

    def close(self) -> None:
        """Close the file for good. Idempotent."""
        with self._lock:
            self._closed = True
            if self._fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = -1
