"""The notifier's durable state: one SQLite file for the outbox, mutes and channel stats.

Standard library only (``sqlite3``), so ``pyorchestrate notify outbox|mute|status`` can
read and change it from another process without loading the channels.

**Outbox.** With a state, a dispatcher writes every (notification, channel) it accepts
*ahead* of delivery, as a ``pending`` row, and deletes the row once delivered. Retries
exhausted (or a retry-after beyond the cap) leave it ``failed``; a permanent error, or
a "maybe delivered" timeout, leaves it ``dead`` (kept for inspection, never replayed on
its own: :meth:`NotifierState.replay` does it on request). A dispatcher that starts
again replays the ``pending`` and ``failed`` rows of its channels first, in ``id``
order (the order they were accepted in), once each. The table is bounded by
``max_outbox``: beyond it the oldest rows go, ``dead`` first, then ``failed``, then
``pending``, and each one is counted (:meth:`NotifierState.evicted`).

**Ownership.** Each running dispatcher registers as an *owner* (host, pid, a random
token) with a heartbeat, and owns the rows it wrote or claimed. It only replays rows
that nobody owns, or whose owner is gone: closed (it releases its rows), dead (same
host, the pid no longer runs), or silent for ``stale_after`` seconds. So a second
process on the same file (a CLI ``notify test``) never sends another one's alerts.

**Identity.** Rows carry a ``uid`` (per notification, shared by its channels; a random
UUID given at :meth:`~NotifierState.put` time unless the notification has a ``uid`` of
its own) with ``UNIQUE(uid, channel)``: the same alert is never stored twice for a
channel. The notification itself is kept as JSON (every dataclass field but the
process-local ``id``) and rebuilt by :func:`notification_from_json`.

**Threads and processes.** One :class:`NotifierState` holds one connection, opened with
``check_same_thread=False`` and guarded by a lock: it may be built on one thread and
used on another (a dispatcher builds it on the caller's thread and uses it only on its
own loop thread). Processes each open their own: the file is in WAL mode (readers never
block the writer), with a ``busy_timeout`` for writers, and ``synchronous=NORMAL``: a
committed row survives the process being killed (not necessarily a power cut; pass
``synchronous="FULL"`` for that, at an fsync per commit).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import fnmatch
import json
import os
import socket
import sqlite3
import threading
import time
import types
import typing
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .base import Notification
from .redact import redact

__all__ = [
    "DEFAULT_STATE_FILE",
    "SCHEMA_VERSION",
    "Mute",
    "MuteKind",
    "NotifierState",
    "OutboxRow",
    "OutboxState",
    "default_state_path",
    "notification_from_json",
    "notification_to_json",
    "notification_uid",
]

SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of the files this module writes."""

DEFAULT_STATE_FILE = "notify.sqlite3"

_HOST = socket.gethostname()


def default_state_path() -> Path:
    """``$XDG_STATE_HOME/pyorchestrate/notify.sqlite3`` (``~/.local/state/…`` if unset)."""
    base = Path(os.environ.get("XDG_STATE_HOME") or "relative")
    root = base if base.is_absolute() else Path.home() / ".local" / "state"
    return root / "pyorchestrate" / DEFAULT_STATE_FILE


class OutboxState(enum.StrEnum):
    """Where a row of the outbox stands."""

    PENDING = "pending"  # accepted, not delivered yet (in flight, queued, or waiting)
    FAILED = "failed"  # retries exhausted / retry-after beyond the cap: replayed
    DEAD = "dead"  # permanent error or maybe delivered: kept, replayed only on request


MuteKind = Literal["agent", "event", "channel"]
_MUTE_KINDS: tuple[str, ...] = typing.get_args(MuteKind)


# ---------------------------------------------------------------- rows


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


@dataclass(frozen=True, slots=True)
class Mute:
    """Alerts of an agent, of an event, or to a channel, held back until ``until``.

    ``value`` is an ``fnmatch`` glob (``worker-*``); events compare case-insensitively.
    ``until`` is an epoch time, or ``None``: until unmuted.
    """

    kind: MuteKind
    value: str
    until: float | None
    created: float
    reason: str | None = None

    def active(self, now: float) -> bool:
        """Whether it still holds at ``now``."""
        return self.until is None or now < self.until

    def matches(
        self,
        *,
        channel: str | None = None,
        agent: str | None = None,
        event: str | None = None,
    ) -> bool:
        """Whether an alert with these fields falls under this mute (ignores expiry)."""
        if self.kind == "channel":
            return channel is not None and fnmatch.fnmatchcase(channel, self.value)
        if self.kind == "agent":
            return agent is not None and fnmatch.fnmatchcase(agent, self.value)
        return event is not None and fnmatch.fnmatchcase(
            event.lower(), self.value.lower()
        )


# ---------------------------------------------------------------- JSON of a notification


def _encode(value: object) -> object:
    if isinstance(value, _dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, enum.Enum):
        return _encode(value.value)
    if isinstance(value, tuple | list | frozenset | set):
        return [_encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


_PLAIN = frozenset({str, int, float, bool, type(None)})
_FIELDS = tuple(f.name for f in dataclasses.fields(Notification))
_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def notification_to_json(notification: Notification) -> str:
    """Every field of ``notification`` as JSON (the process-local ``id`` included,
    for reference; :func:`notification_from_json` gives a new one)."""
    data = {}
    for name in _FIELDS:
        value = getattr(notification, name)
        data[name] = value if type(value) in _PLAIN else _encode(value)
    return _DUMPS(data)


_hints_cache: dict[str, Any] | None = None


def _hints() -> dict[str, Any]:
    global _hints_cache
    if _hints_cache is None:
        try:
            _hints_cache = typing.get_type_hints(Notification)
        except Exception:  # an annotation that only resolves under TYPE_CHECKING
            _hints_cache = {}
    return _hints_cache


def _decode(value: object, hint: object) -> object:
    if isinstance(value, dict) and set(value) == {"$datetime"}:
        return _dt.datetime.fromisoformat(str(value["$datetime"]))
    if value is None or hint is None:
        return value
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    candidates = typing.get_args(hint) if union else (hint,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
            try:
                return candidate(value)
            except ValueError:
                continue
        origin = typing.get_origin(candidate)
        if origin in (tuple, frozenset) and isinstance(value, list):
            return origin(value)
    return value


def notification_from_json(payload: str) -> Notification:
    """Rebuild a notification from :func:`notification_to_json`.

    Fields this version does not know are ignored, missing ones take their defaults,
    and ``id`` is a new process-local one.
    """
    data = json.loads(payload)
    hints = _hints()
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(Notification):
        if f.name == "id" or f.name not in data or not f.init:
            continue
        kwargs[f.name] = _decode(data[f.name], hints.get(f.name))
    return Notification(**kwargs)


def notification_uid(notification: Notification) -> str:
    """The notification's own ``uid`` if it has one, else a new random one."""
    uid = getattr(notification, "uid", None)
    return str(uid) if uid else uuid.uuid4().hex


# ---------------------------------------------------------------- liveness of owners


def _proc_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (Linux), to tell a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields and fields[0] == "Z":
        return "zombie"
    return fields[19] if len(fields) > 19 else None


def _pid_alive(pid: int, proc_start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    now = _proc_start(pid)
    if now == "zombie":
        return False
    return proc_start is None or now is None or now == proc_start


# ---------------------------------------------------------------- the state

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL,
    channel TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'failed', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    error_class TEXT,
    last_error TEXT,
    owner TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (uid, channel)
);
CREATE INDEX IF NOT EXISTS outbox_by_channel ON outbox (channel, state, id);
CREATE INDEX IF NOT EXISTS outbox_by_state ON outbox (state, id);
CREATE TABLE IF NOT EXISTS mutes (
    kind TEXT NOT NULL CHECK (kind IN ('agent', 'event', 'channel')),
    value TEXT NOT NULL,
    until REAL,
    created REAL NOT NULL,
    reason TEXT,
    PRIMARY KEY (kind, value)
);
CREATE TABLE IF NOT EXISTS channel_stats (
    channel TEXT PRIMARY KEY,
    stats TEXT NOT NULL,
    last_success REAL,
    last_error TEXT,
    host TEXT,
    pid INTEGER,
    saved_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS owners (
    owner TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    proc_start TEXT,
    started REAL NOT NULL,
    heartbeat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

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


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


class NotifierState:
    """The outbox, mutes and channel stats of the notifier layer, in one SQLite file.

    Args:
        path: the file (created with its directory, mode 0600/0700, if missing);
            see :func:`default_state_path`.
        max_outbox: rows the outbox keeps at most (see the module docstring).
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

    # ------------------------------------------------------------ plumbing
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
        now = self.clock()
        out: list[dict[str, int | None]] = []
        with self._write() as conn:
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
        with self._write() as conn:
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
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE outbox SET state = ?, attempts = attempts + ?, "
                "last_error = ?, error_class = ?, updated = ? WHERE id = ?",
                (
                    OutboxState(state).value,
                    attempts,
                    None if error is None else redact(error),
                    error_class,
                    self.clock(),
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
        with self._write(notable=True) as conn:
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
        with self._write(notable=True) as conn:
            return conn.execute(
                f"UPDATE outbox SET state = 'pending', owner = NULL, updated = ?{where}",
                [self.clock(), *params],
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
                clauses.append(f"{column} IN ({_placeholders(len(values))})")
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
        return [_row(r) for r in self._read(sql, params)]

    def pending(
        self, channel: str, *, owner: str | None, limit: int = 100
    ) -> list[OutboxRow]:
        """The ``pending`` and ``failed`` rows of ``channel`` owned by ``owner``, oldest
        first: what a dispatcher delivers, in order."""
        owned = "owner IS NULL" if owner is None else "owner = ?"
        params: list[Any] = [channel] + ([] if owner is None else [owner]) + [limit]
        return [
            _row(r)
            for r in self._read(
                f"SELECT {_ROW_COLUMNS} FROM outbox WHERE channel = ? "
                f"AND state IN ('pending', 'failed') AND {owned} ORDER BY id LIMIT ?",
                params,
            )
        ]

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows per channel and state: ``{"telegram": {"pending": 2, "dead": 1}}``."""
        out: dict[str, dict[str, int]] = {}
        for channel, state, count in self._read(
            "SELECT channel, state, COUNT(*) FROM outbox GROUP BY channel, state"
        ):
            out.setdefault(channel, {})[state] = count
        return out

    def evicted(self, channel: str | None = None) -> int:
        """Rows evicted to keep the outbox bounded (in all, or of one channel)."""
        key = "evicted" if channel is None else f"evicted:{channel}"
        found = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return int(found[0][0]) if found else 0

    # ------------------------------------------------------------ ownership
    def register(self, owner: str) -> None:
        """Record ``owner`` (this process) as alive; its rows are not replayed by others."""
        now = self.clock()
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO owners "
                "(owner, host, pid, proc_start, started, heartbeat) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (owner, _HOST, os.getpid(), _proc_start(os.getpid()), now, now),
            )

    def heartbeat(self, owner: str) -> None:
        """Still alive (see ``stale_after`` in :meth:`claim`)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE owners SET heartbeat = ? WHERE owner = ?", (self.clock(), owner)
            )

    def release(self, owner: str) -> None:
        """``owner`` stops: its rows become anyone's (replayed by the next start)."""
        with self._write(notable=True) as conn:
            conn.execute("UPDATE outbox SET owner = NULL WHERE owner = ?", (owner,))
            conn.execute("DELETE FROM owners WHERE owner = ?", (owner,))

    def claim(
        self, owner: str, channels: Iterable[str], *, stale_after: float = 30.0
    ) -> dict[str, int]:
        """Take the ``pending``/``failed`` rows of ``channels`` that nobody alive owns.

        An owner is gone if it released its rows, if it runs on this host and its
        pid is dead (or reused), or if its heartbeat is older than ``stale_after``.
        Returns the rows claimed per channel.
        """
        wanted = list(channels)
        now = self.clock()
        with self._write() as conn:
            gone = [
                name
                for name, host, pid, proc_start, heartbeat in conn.execute(
                    "SELECT owner, host, pid, proc_start, heartbeat FROM owners "
                    "WHERE owner != ?",
                    (owner,),
                )
                if heartbeat < now - stale_after
                or (host == _HOST and not _pid_alive(pid, proc_start))
            ]
            conn.executemany("DELETE FROM owners WHERE owner = ?", [(g,) for g in gone])
            conn.execute(
                "UPDATE outbox SET owner = NULL WHERE owner IS NOT NULL "
                "AND owner != ? AND owner NOT IN (SELECT owner FROM owners)",
                (owner,),
            )
            if not wanted:
                return {}
            claimed = conn.execute(
                "UPDATE outbox SET owner = ? WHERE owner IS NULL "
                f"AND state IN ('pending', 'failed') AND channel IN "
                f"({_placeholders(len(wanted))}) RETURNING channel",
                [owner, *wanted],
            ).fetchall()
        out: dict[str, int] = {}
        for (channel,) in claimed:
            out[channel] = out.get(channel, 0) + 1
        return out

    # ------------------------------------------------------------ mutes
    def mute(
        self,
        kind: MuteKind,
        value: str,
        *,
        until: float | None = None,
        duration: float | None = None,
        reason: str | None = None,
    ) -> Mute:
        """Hold back alerts of an agent, of an event, or to a channel (globs work).

        Give ``until`` (epoch seconds) or ``duration`` (seconds from now), or neither
        to mute until :meth:`unmute`. Muting again replaces the earlier expiry.
        """
        if kind not in _MUTE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(_MUTE_KINDS)}")
        if not value:
            raise ValueError("value must not be empty")
        if until is not None and duration is not None:
            raise ValueError("give until or duration, not both")
        now = self.clock()
        if duration is not None:
            if duration <= 0:
                raise ValueError("duration must be positive")
            until = now + duration
        with self._write(notable=True) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO mutes (kind, value, until, created, reason) "
                "VALUES (?, ?, ?, ?, ?)",
                (kind, value, until, now, reason),
            )
        return Mute(kind, value, until, now, reason)

    def unmute(self, kind: MuteKind, value: str) -> bool:
        """End a mute; ``False`` if there was none."""
        with self._write(notable=True) as conn:
            return (
                conn.execute(
                    "DELETE FROM mutes WHERE kind = ? AND value = ?", (kind, value)
                ).rowcount
                > 0
            )

    def mutes(self, *, include_expired: bool = False) -> list[Mute]:
        """The mutes (active ones only, unless ``include_expired``)."""
        now = self.clock()
        found = [
            Mute(kind, value, until, created, reason)
            for kind, value, until, created, reason in self._read(
                "SELECT kind, value, until, created, reason FROM mutes "
                "ORDER BY kind, value"
            )
        ]
        return found if include_expired else [m for m in found if m.active(now)]

    def prune_mutes(self) -> int:
        """Delete expired mutes; returns how many."""
        with self._write(notable=True) as conn:
            return conn.execute(
                "DELETE FROM mutes WHERE until IS NOT NULL AND until <= ?",
                (self.clock(),),
            ).rowcount

    def is_muted(
        self,
        *,
        channel: str | None = None,
        agent: str | None = None,
        event: str | None = None,
    ) -> Mute | None:
        """The first active mute that covers an alert with these fields, if any."""
        for mute in self.mutes():
            if mute.matches(channel=channel, agent=agent, event=event):
                return mute
        return None

    # ------------------------------------------------------------ channel stats
    def save_stats(
        self,
        stats: Mapping[str, Mapping[str, Any]],
        *,
        heartbeat: str | None = None,
    ) -> None:
        """Store each channel's counters (``last_success``, ``last_error`` as
        columns, everything as JSON), and beat ``heartbeat``'s heart, in one commit."""
        now = self.clock()
        rows = []
        for channel, values in stats.items():
            data = dict(values)
            if data.get("last_error") is not None:
                data["last_error"] = redact(data["last_error"])
            rows.append(
                (
                    channel,
                    json.dumps(data, separators=(",", ":")),
                    data.get("last_success"),
                    data.get("last_error"),
                    _HOST,
                    os.getpid(),
                    now,
                )
            )
        with self._write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO channel_stats "
                "(channel, stats, last_success, last_error, host, pid, saved_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            if heartbeat is not None:
                conn.execute(
                    "UPDATE owners SET heartbeat = ? WHERE owner = ?", (now, heartbeat)
                )

    def load_stats(self) -> dict[str, dict[str, Any]]:
        """What :meth:`save_stats` stored, per channel, plus ``saved_at``, ``host`` and
        ``pid`` (of the process that saved it)."""
        out: dict[str, dict[str, Any]] = {}
        for channel, stats, host, pid, saved_at in self._read(
            "SELECT channel, stats, host, pid, saved_at FROM channel_stats "
            "ORDER BY channel"
        ):
            values = json.loads(stats)
            values.update(saved_at=saved_at, host=host, pid=pid)
            out[channel] = values
        return out
