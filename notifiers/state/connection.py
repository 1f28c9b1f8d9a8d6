"""The lock-guarded SQLite connection that the parts of the state share."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__: list[str] = []


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


class _Connection:
    """What :class:`~notifiers.state.NotifierState` and its parts (outbox, owners,
    mutes, stats) share: one connection, guarded by a lock (set up by
    ``NotifierState.__init__``)."""

    path: Path
    max_outbox: int
    clock: Callable[[], float]
    _lock: threading.RLock
    _notable_writes: int
    _conn: sqlite3.Connection

    @contextmanager
    def _write(self, *, notable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: takes the write lock at once).

        ``notable``: a change running dispatchers must notice (mutes, replays), shown
        by :meth:`version` to users of this same object.
        """
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            if notable:
                self._notable_writes += 1

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()
