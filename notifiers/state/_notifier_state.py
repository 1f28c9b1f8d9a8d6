"""NotifierState: one connection to the state file, and a repository per table."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Concatenate, Generic, Literal, ParamSpec, TypeVar, overload

from .chatops import ChatOpsTable
from .connection import Connection
from .mutes import MutesTable
from .outbox import OutboxTable
from .owners import OwnersTable
from .stats import StatsTable

__all__ = ["NotifierState"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


class _Forward(Generic[_P, _R]):
    """``NotifierState.put`` is ``NotifierState.outbox.put``: a method of one of its
    tables, reached from the state itself (the API every caller uses)."""

    def __init__(self, table: str, method: Callable[Concatenate[Any, _P], _R]) -> None:
        self.table = table
        self.name = method.__name__
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, obj: None, owner: type) -> _Forward[_P, _R]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> Callable[_P, _R]: ...
    def __get__(
        self, obj: object | None, owner: type | None = None
    ) -> _Forward[_P, _R] | Callable[_P, _R]:
        if obj is None:
            return self
        method: Callable[_P, _R] = getattr(getattr(obj, self.table), self.name)
        return method


class NotifierState:
    """The outbox, mutes and channel stats of the notifier layer, in one SQLite file.

    One :class:`~notifiers.state.connection.Connection` and a repository per table:
    :attr:`outbox` (:class:`OutboxTable`), :attr:`owners` (:class:`OwnersTable`),
    :attr:`mute_table` (:class:`MutesTable`), :attr:`stats` (:class:`StatsTable`) and
    :attr:`chatops` (:class:`~notifiers.state.chatops.ChatOpsTable`: buttons' secret,
    alerts with buttons, escalation timers).
    Their methods are reached from the state too (``state.put(...)`` is
    ``state.outbox.put(...)``).

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
        self.db = Connection(
            path, clock=clock, busy_timeout=busy_timeout, synchronous=synchronous
        )
        self.path = self.db.path
        self.outbox = OutboxTable(self.db, max_outbox=max_outbox)
        self.owners = OwnersTable(self.db)
        self.mute_table = MutesTable(self.db)
        self.stats = StatsTable(self.db)
        self.chatops = ChatOpsTable(self.db)

    @property
    def clock(self) -> Callable[[], float]:
        """Epoch seconds (timestamps, mute expiry, heartbeats)."""
        return self.db.clock

    @property
    def max_outbox(self) -> int:
        """Rows the outbox keeps at most."""
        return self.outbox.max_outbox

    # The outbox.
    put = _Forward("outbox", OutboxTable.put)
    put_many = _Forward("outbox", OutboxTable.put_many)
    delivered = _Forward("outbox", OutboxTable.delivered)
    mark = _Forward("outbox", OutboxTable.mark)
    failed = _Forward("outbox", OutboxTable.failed)
    dead = _Forward("outbox", OutboxTable.dead)
    purge = _Forward("outbox", OutboxTable.purge)
    replay = _Forward("outbox", OutboxTable.replay)
    rows = _Forward("outbox", OutboxTable.rows)
    pending = _Forward("outbox", OutboxTable.pending)
    counts = _Forward("outbox", OutboxTable.counts)
    evicted = _Forward("outbox", OutboxTable.evicted)
    # Who owns its rows.
    register = _Forward("owners", OwnersTable.register)
    heartbeat = _Forward("owners", OwnersTable.heartbeat)
    release = _Forward("owners", OwnersTable.release)
    claim = _Forward("owners", OwnersTable.claim)
    # Mutes.
    mute = _Forward("mute_table", MutesTable.mute)
    unmute = _Forward("mute_table", MutesTable.unmute)
    mutes = _Forward("mute_table", MutesTable.mutes)
    prune_mutes = _Forward("mute_table", MutesTable.prune_mutes)
    is_muted = _Forward("mute_table", MutesTable.is_muted)
    # Channel stats.
    save_stats = _Forward("stats", StatsTable.save_stats)
    load_stats = _Forward("stats", StatsTable.load_stats)

    # ------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the connection (idempotent)."""
        self.db.close()

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
        with self.db.lock:
            return (self.db.data_version(), self.db.notable_writes)
