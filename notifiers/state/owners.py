"""Ownership of outbox rows: the running dispatchers, their heartbeats and liveness."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from pathlib import Path

from .connection import Connection, placeholders

__all__ = [
    "HOST",
    "OwnersTable",
]

HOST = socket.gethostname()


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


class OwnersTable:
    """Who owns the outbox's rows: the running dispatchers and their heartbeats."""

    def __init__(self, db: Connection) -> None:
        self.db = db

    def register(self, owner: str) -> None:
        """Record ``owner`` (this process) as alive; its rows are not replayed by others."""
        now = self.db.clock()
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO owners "
                "(owner, host, pid, proc_start, started, heartbeat) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (owner, HOST, os.getpid(), _proc_start(os.getpid()), now, now),
            )

    def heartbeat(self, owner: str) -> None:
        """Still alive (see ``stale_after`` in :meth:`claim`)."""
        with self.db.write() as conn:
            conn.execute(
                "UPDATE owners SET heartbeat = ? WHERE owner = ?",
                (self.db.clock(), owner),
            )

    def release(self, owner: str) -> None:
        """``owner`` stops: its rows become anyone's (replayed by the next start)."""
        with self.db.write(notable=True) as conn:
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
        now = self.db.clock()
        with self.db.write() as conn:
            gone = [
                name
                for name, host, pid, proc_start, heartbeat in conn.execute(
                    "SELECT owner, host, pid, proc_start, heartbeat FROM owners "
                    "WHERE owner != ?",
                    (owner,),
                )
                if heartbeat < now - stale_after
                or (host == HOST and not _pid_alive(pid, proc_start))
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
                f"({placeholders(len(wanted))}) RETURNING channel",
                [owner, *wanted],
            ).fetchall()
        out: dict[str, int] = {}
        for (channel,) in claimed:
            out[channel] = out.get(channel, 0) + 1
        return out
