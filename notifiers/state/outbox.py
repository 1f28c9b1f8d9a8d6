"""The outbox: a row per (notification, channel), written ahead of delivery."""

from __future__ import annotations

import enum
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..base import Notification
from ..redact import redact
from .connection import Connection, placeholders
from .serialize import notification_from_json, notification_to_json, notification_uid

__all__ = ["OutboxRow", "OutboxState", "OutboxTable"]


class OutboxState(enum.StrEnum):
    """Where a row of the outbox stands."""

    PENDING = "pending"  # accepted, not delivered yet (in flight, queued, or waiting)
    FAILED = "failed"  # retries exhausted / retry-after beyond the cap: replayed
    DEAD = "dead"  # permanent error or maybe delivered: kept, replayed only on request


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One (notification, channel) in the outbox."""

    id: int
    uid: str
    channel: str
    state: OutboxState
    attempts: int
    error_class: str | None
    last_error: str | None  # redacted before it was stored
    created: float
    updated: float
    owner: str | None
    payload: str  # the notification as JSON

    def notification(self) -> Notification:
        """The notification, rebuilt (with a new process-local ``id``)."""
        return notification_from_json(self.payload)

    def summary(self) -> dict[str, Any]:
        """The row as plain data (for ``outbox list --json``); no body."""
        data = json.loads(self.payload)
        return {
            "id": self.id,
            "uid": self.uid,
            "channel": self.channel,
            "state": self.state.value,
            "attempts": self.attempts,
            "error_class": self.error_class,
            "last_error": self.last_error,
            "created": self.created,
            "updated": self.updated,
            "title": data.get("title"),
            "severity": data.get("severity"),
            "agent": data.get("agent"),
            "event": data.get("event"),
        }


_ROW_COLUMNS = (
    "id, uid, channel, state, attempts, error_class, last_error, created, updated, "
    "owner, payload"
)


def _row(values: Sequence[Any]) -> OutboxRow:
    return OutboxRow(
        id=values[0],
        uid=values[1],
        channel=values[2],
        state=OutboxState(values[3]),
        attempts=values[4],
        error_class=values[5],
        last_error=values[6],
        created=values[7],
        updated=values[8],
        owner=values[9],
        payload=values[10],
    )


class OutboxTable:
    """The outbox table of the state file: the SQLite outbox repository.

    Args:
        db: the state file's connection.
        max_outbox: rows it keeps at most (beyond, the oldest go: ``dead`` first).
    """

    def __init__(self, db: Connection, *, max_outbox: int = 10_000) -> None:
        if max_outbox < 1:
            raise ValueError("max_outbox must be at least 1")
        self.db = db
        self.max_outbox = max_outbox

    # ------------------------------------------------------------ outbox: writes
    def put(
        self,
        notification: Notification,
        channels: Iterable[str],
        *,
        owner: str | None = None,
        uid: str | None = None,
    ) -> dict[str, int | None]:
        """Write ``notification`` ahead for each channel, as ``pending``.

        Returns the row id per channel, or ``None`` for a channel that already has
        a row for this notification's ``uid`` (nothing is stored twice).
        """
        return self.put_many([(notification, list(channels))], owner=owner, uids=[uid])[
            0
        ]

    def put_many(
        self,
        items: Iterable[tuple[Notification, Sequence[str]]],
        *,
        owner: str | None = None,
        uids: Sequence[str | None] | None = None,
    ) -> list[dict[str, int | None]]:
        """:meth:`put` for many notifications in one transaction (then evicts)."""
        now = self.db.clock()
        out: list[dict[str, int | None]] = []
        with self.db.write() as conn:
            for index, (notification, channels) in enumerate(items):
                given = uids[index] if uids is not None and index < len(uids) else None
                uid = given or notification_uid(notification)
                payload = notification_to_json(notification)
                ids: dict[str, int | None] = {}
                for channel in channels:
                    cursor = conn.execute(
                        "INSERT OR IGNORE INTO outbox "
                        "(uid, channel, payload, owner, created, updated) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (uid, channel, payload, owner, now, now),
                    )
                    ids[channel] = cursor.lastrowid if cursor.rowcount == 1 else None
                out.append(ids)
            self._evict(conn)
        return out

    def _evict(self, conn: sqlite3.Connection) -> int:
        excess = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        excess -= self.max_outbox
        if excess <= 0:
            return 0
        victims: list[tuple[int, str]] = []
        for state in ("dead", "failed", "pending"):  # each in id order, by index
            victims += conn.execute(
                "SELECT id, channel FROM outbox WHERE state = ? ORDER BY id LIMIT ?",
                (state, excess - len(victims)),
            ).fetchall()
            if len(victims) >= excess:
                break
        conn.executemany("DELETE FROM outbox WHERE id = ?", [(v[0],) for v in victims])
        per_channel: dict[str, int] = {}
        for _id, channel in victims:
            per_channel[channel] = per_channel.get(channel, 0) + 1
        counts = [("evicted", len(victims))]
        counts += [(f"evicted:{c}", n) for c, n in per_channel.items()]
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = value + excluded.value",
            counts,
        )
        return len(victims)

    def delivered(self, ids: Iterable[int]) -> int:
        """Delete delivered rows; returns how many were there."""
        batch = [(i,) for i in ids]
        if not batch:
            return 0
        with self.db.write() as conn:
            before = conn.total_changes
            conn.executemany("DELETE FROM outbox WHERE id = ?", batch)
            return conn.total_changes - before

    def mark(
        self,
        row_id: int,
        state: OutboxState | str,
        *,
        attempts: int = 0,
        error: str | None = None,
        error_class: str | None = None,
    ) -> bool:
        """Set a row's state; add ``attempts``; keep the error (redacted again
        here, to be sure). ``False`` if the row is gone (delivered, purged or
        evicted)."""
        with self.db.write() as conn:
            cursor = conn.execute(
                "UPDATE outbox SET state = ?, attempts = attempts + ?, "
                "last_error = ?, error_class = ?, updated = ? WHERE id = ?",
                (
                    OutboxState(state).value,
                    attempts,
                    None if error is None else redact(error),
                    error_class,
                    self.db.clock(),
                    row_id,
                ),
            )
            return cursor.rowcount == 1

    def failed(
        self,
        row_id: int,
        *,
        attempts: int = 0,
        error: str | None = None,
        error_class: str | None = None,
    ) -> bool:
        """Retries exhausted: replayed later (see :meth:`mark`)."""
        return self.mark(
            row_id,
            OutboxState.FAILED,
            attempts=attempts,
            error=error,
            error_class=error_class,
        )

    def dead(
        self,
        row_id: int,
        *,
        attempts: int = 0,
        error: str | None = None,
        error_class: str | None = None,
    ) -> bool:
        """Not to be replayed on its own (see :meth:`mark`)."""
        return self.mark(
            row_id,
            OutboxState.DEAD,
            attempts=attempts,
            error=error,
            error_class=error_class,
        )

    def purge(
        self,
        *,
        ids: Iterable[int] | None = None,
        channels: Iterable[str] | None = None,
        states: Iterable[OutboxState | str] | None = None,
        older_than: float | None = None,
    ) -> int:
        """Delete the rows matching every filter given (all rows if none); returns
        how many."""
        where, params = self._filters(ids, channels, states, older_than)
        with self.db.write(notable=True) as conn:
            return conn.execute(f"DELETE FROM outbox{where}", params).rowcount

    def replay(
        self,
        *,
        ids: Iterable[int] | None = None,
        channels: Iterable[str] | None = None,
        states: Iterable[OutboxState | str] = (OutboxState.FAILED, OutboxState.DEAD),
    ) -> int:
        """Make rows ``pending`` again and unowned: the running dispatcher with their
        channel picks them up within about a second, or the next one to start does.
        Returns how many rows."""
        where, params = self._filters(ids, channels, states, None)
        with self.db.write(notable=True) as conn:
            return conn.execute(
                f"UPDATE outbox SET state = 'pending', owner = NULL, updated = ?{where}",
                [self.db.clock(), *params],
            ).rowcount

    @staticmethod
    def _filters(
        ids: Iterable[int] | None,
        channels: Iterable[str] | None,
        states: Iterable[OutboxState | str] | None,
        older_than: float | None,
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, values in (
            ("id", None if ids is None else [int(i) for i in ids]),
            ("channel", None if channels is None else list(channels)),
            (
                "state",
                None if states is None else [OutboxState(s).value for s in states],
            ),
        ):
            if values is not None:
                clauses.append(f"{column} IN ({placeholders(len(values))})")
                params.extend(values)
        if older_than is not None:
            clauses.append("created < ?")
            params.append(older_than)
        return (" WHERE " + " AND ".join(clauses) if clauses else "", params)

    # ------------------------------------------------------------ outbox: reads
    def rows(
        self,
        *,
        ids: Iterable[int] | None = None,
        channels: Iterable[str] | None = None,
        states: Iterable[OutboxState | str] | None = None,
        limit: int | None = None,
    ) -> list[OutboxRow]:
        """Rows in ``id`` order (the order they were accepted in)."""
        where, params = self._filters(ids, channels, states, None)
        sql = f"SELECT {_ROW_COLUMNS} FROM outbox{where} ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_row(r) for r in self.db.read(sql, params)]

    def pending(
        self, channel: str, *, owner: str | None, limit: int = 100
    ) -> list[OutboxRow]:
        """The ``pending`` and ``failed`` rows of ``channel`` owned by ``owner``, oldest
        first: what a dispatcher delivers, in order."""
        owned = "owner IS NULL" if owner is None else "owner = ?"
        params: list[Any] = [channel] + ([] if owner is None else [owner]) + [limit]
        return [
            _row(r)
            for r in self.db.read(
                f"SELECT {_ROW_COLUMNS} FROM outbox WHERE channel = ? "
                f"AND state IN ('pending', 'failed') AND {owned} ORDER BY id LIMIT ?",
                params,
            )
        ]

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows per channel and state: ``{"telegram": {"pending": 2, "dead": 1}}``."""
        out: dict[str, dict[str, int]] = {}
        for channel, state, count in self.db.read(
            "SELECT channel, state, COUNT(*) FROM outbox GROUP BY channel, state"
        ):
            out.setdefault(channel, {})[state] = count
        return out

    def evicted(self, channel: str | None = None) -> int:
        """Rows evicted to keep the outbox bounded (in all, or of one channel)."""
        key = "evicted" if channel is None else f"evicted:{channel}"
        found = self.db.read("SELECT value FROM meta WHERE key = ?", (key,))
        return int(found[0][0]) if found else 0
