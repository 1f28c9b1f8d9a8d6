"""The last lines of an agent's output, kept in memory for alerts and ``status``:
:class:`OutputTail`, bounded by lines and by UTF-8 bytes."""

from __future__ import annotations

import collections
import threading

__all__ = ["TAIL_BYTES", "TAIL_LINES", "OutputTail"]

TAIL_LINES = 200
"""Lines an :class:`OutputTail` keeps by default."""

TAIL_BYTES = 32 * 1024
"""UTF-8 bytes an :class:`OutputTail` keeps by default, newlines included (older
lines go first; a single longer line keeps its end)."""


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
