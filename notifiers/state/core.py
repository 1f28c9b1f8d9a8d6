"""NotifierState: the state file opened, migrated and closed; its parts joined."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from .mutes import _Mutes
from .outbox import _Outbox
from .owners import _Owners
from .schema import _SCHEMA, SCHEMA_VERSION
from .stats import _Stats

__all__ = ["NotifierState"]


class NotifierState(_Outbox, _Owners, _Mutes, _Stats):
    """The outbox, mutes and channel stats of the notifier layer, in one SQLite file.

    Args:
        path: the file (created with its directory, mode 0600/0700, if missing);
            see :func:`default_state_path`.
        max_outbox: rows the outbox keeps at most (see the package docstring).
        clock: epoch seconds (injectable for tests): timestamps, mute expiry, heartbeats.
        busy_timeout: seconds a write waits for another process's write to finish.
        synchronous: SQLite's ``synchronous`` (``NORMAL``: survives a killed
            process; ``FULL``: also a power cut, at an fsync per commit).

    Raises:
        sqlite3.DatabaseError: the file is not a state file, or one written by a
            newer version.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_outbox: int = 10_000,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 5.0,
        synchronous: Literal["OFF", "NORMAL", "FULL"] = "NORMAL",
    ) -> None:
        if max_outbox < 1:
            raise ValueError("max_outbox must be at least 1")
        self.path = Path(path).expanduser()
        self.max_outbox = max_outbox
        self.clock = clock
        self._lock = threading.RLock()
        self._notable_writes = 0  # see version()
        if str(path) != ":memory:":
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.path.exists():
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
        self._conn = sqlite3.connect(
            str(path),
            timeout=busy_timeout,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,  # guarded by self._lock instead
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
        with self._write():
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"{self.path} was written by a newer version (schema {version}; "
                    f"this one reads {SCHEMA_VERSION})"
                )
            if version < SCHEMA_VERSION:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # ------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> NotifierState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<NotifierState {str(self.path)!r}>"

    def version(self) -> tuple[int, int]:
        """Compare two results to see whether mutes or replays may have changed.

        ``PRAGMA data_version`` (changes when another connection commits anything)
        and a count of this object's own mutes, unmutes, replays and purges. Cheap:
        no file access beyond SQLite's shared-memory index.
        """
        with self._lock:
            other = self._conn.execute("PRAGMA data_version").fetchone()[0]
            return (int(other), self._notable_writes)
