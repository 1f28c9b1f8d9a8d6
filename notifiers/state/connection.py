"""Connection: the state file opened, migrated, and guarded by one lock."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from .schema import SCHEMA, SCHEMA_VERSION

__all__ = [
    "Connection",
    "placeholders",
]


def placeholders(count: int) -> str:
    return ",".join("?" * count)


class Connection:
    """One SQLite connection to the state file, shared by its tables (the outbox,
    owners, mutes and channel stats), guarded by a lock.

    Opened with ``check_same_thread=False``: it may be built on one thread and used
    on another. See :class:`~notifiers.state.NotifierState` for the arguments.

    Raises:
        sqlite3.DatabaseError: the file is not a state file, or one written by a
            newer version.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float],
        busy_timeout: float = 5.0,
        synchronous: Literal["OFF", "NORMAL", "FULL"] = "NORMAL",
    ) -> None:
        self.path = Path(path).expanduser()
        self.clock = clock
        self.lock = threading.RLock()
        self.notable_writes = 0  # see NotifierState.version()
        if str(path) != ":memory:":
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.path.exists():
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
        self._conn = sqlite3.connect(
            str(path),
            timeout=busy_timeout,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,  # guarded by self.lock instead
        )
        try:
            self._setup(busy_timeout, synchronous)
        except BaseException:
            self._conn.close()
            raise

    def _setup(self, busy_timeout: float, synchronous: str) -> None:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        with self.write():
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"{self.path} was written by a newer version (schema {version}; "
                    f"this one reads {SCHEMA_VERSION})"
                )
            if version < SCHEMA_VERSION:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def write(self, *, notable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: takes the write lock at once).

        ``notable``: a change running dispatchers must notice (mutes, replays),
        counted in :attr:`notable_writes`.
        """
        with self.lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            if notable:
                self.notable_writes += 1

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of one query."""
        with self.lock:
            return self._conn.execute(sql, params).fetchall()

    def data_version(self) -> int:
        """``PRAGMA data_version``: changes when another connection commits."""
        with self.lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self.lock:
            self._conn.close()
