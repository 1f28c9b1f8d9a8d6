"""What acting on alerts from a chat keeps: the signing secret, the alerts sent with
buttons, and the escalation timers of alerts waiting for an acknowledgement.

Standard library only, like the rest of the state file. Every change is one
transaction, so two processes on the same file never both fire an escalation, use a
button twice, or make two secrets.
"""

from __future__ import annotations

import secrets as _secrets
from dataclasses import dataclass
from typing import Any

from ..base import Notification
from .connection import Connection
from .serialize import notification_from_json, notification_to_json

__all__ = ["ChatAlert", "ChatOpsTable", "Escalation"]


@dataclass(frozen=True, slots=True)
class ChatAlert:
    """An alert sent to a chat with buttons (a row of ``chat_alerts``)."""

    id: int
    uid: str
    channel: str
    agent: str | None
    event: str | None
    title: str
    error: str | None
    chat: str | None
    message_id: int | None
    text: str | None
    notes: str
    used: str
    acked_by: str | None
    acked_at: float | None
    created: float


@dataclass(frozen=True, slots=True)
class Escalation:
    """An alert's escalation timer (a row of ``escalations``)."""

    alert: int
    channel: str
    target: str
    due: float
    timeout: float
    state: str
    payload: str

    def notification(self) -> Notification:
        """The alert as it was sent (rebuilt from the row)."""
        return notification_from_json(self.payload)


_ALERT_COLUMNS = (
    "id, uid, channel, agent, event, title, error, chat, message_id, text, notes, used, "
    "acked_by, acked_at, created"
)
_ESCALATION_COLUMNS = "alert, channel, target, due, timeout, state, payload"


class ChatOpsTable:
    """The chat-ops tables of the state file (``secrets``, ``chat_alerts``,
    ``escalations``)."""

    def __init__(self, db: Connection) -> None:
        self.db = db

    # ------------------------------------------------------------ the secret
    def secret(self, name: str = "chatops") -> bytes:
        """This installation's signing key ``name``: 32 random bytes, made on first
        use and kept in the file (mode 0600) from then on."""
        with self.db.write() as conn:
            found = conn.execute(
                "SELECT value FROM secrets WHERE name = ?", (name,)
            ).fetchone()
            if found is None:
                value = _secrets.token_hex(32)
                conn.execute(
                    "INSERT INTO secrets (name, value, created) VALUES (?, ?, ?)",
                    (name, value, self.db.clock()),
                )
            else:
                value = found[0]
        return bytes.fromhex(value)

    # ------------------------------------------------------------ alerts
    def add_alert(self, notification: Notification, channel: str, chat: object) -> int:
        """Keep an alert about to be sent with buttons; its id (in the buttons).

        The same alert sent again (an outbox replay after a crash: same ``uid``)
        keeps its id, so it never gets a second escalation timer."""
        with self.db.write() as conn:
            found = conn.execute(
                "SELECT id FROM chat_alerts WHERE uid = ? AND channel = ?",
                (notification.uid, channel),
            ).fetchone()
            if found is not None:
                return int(found[0])
            cursor = conn.execute(
                "INSERT INTO chat_alerts "
                "(uid, channel, agent, event, title, error, chat, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    notification.uid,
                    channel,
                    notification.agent,
                    notification.event,
                    notification.title,
                    notification.error,
                    str(chat),
                    self.db.clock(),
                ),
            )
            row = cursor.lastrowid
        assert row is not None
        return row

    def sent(self, alert: int, chat: object, message_id: int, text: str) -> None:
        """The alert went out as ``message_id`` in ``chat`` with ``text``."""
        with self.db.write() as conn:
            conn.execute(
                "UPDATE chat_alerts SET chat = ?, message_id = ?, text = ? WHERE id = ?",
                (str(chat), message_id, text, alert),
            )

    def note(self, alert: int, line: str, *, keep: int = 4) -> str:
        """Add ``line`` to what the alert's message says was done (the newest
        ``keep`` lines are kept); all of them, one per line."""
        with self.db.write() as conn:
            found = conn.execute(
                "SELECT notes FROM chat_alerts WHERE id = ?", (alert,)
            ).fetchone()
            lines = [n for n in (found[0] if found else "").split("\n") if n]
            notes = "\n".join([*lines, line][-keep:])
            conn.execute(
                "UPDATE chat_alerts SET notes = ? WHERE id = ?", (notes, alert)
            )
        return notes

    def alert(self, alert: int) -> ChatAlert | None:
        """The alert ``alert``, if kept."""
        rows = self.db.read(
            f"SELECT {_ALERT_COLUMNS} FROM chat_alerts WHERE id = ?", (alert,)
        )
        return ChatAlert(*rows[0]) if rows else None

    def latest(self, chat: object, *, unacked: bool = True) -> ChatAlert | None:
        """The newest alert sent to ``chat`` (not acknowledged yet, by default)."""
        where = " AND acked_at IS NULL" if unacked else ""
        rows = self.db.read(
            f"SELECT {_ALERT_COLUMNS} FROM chat_alerts WHERE chat = ? "
            f"AND message_id IS NOT NULL{where} ORDER BY id DESC LIMIT 1",
            (str(chat),),
        )
        return ChatAlert(*rows[0]) if rows else None

    def use(self, alert: int, action: str) -> bool:
        """Mark ``action`` (one letter) done on ``alert``; ``False`` if it was
        already (a button works once) or there is no such alert."""
        with self.db.write() as conn:
            return (
                conn.execute(
                    "UPDATE chat_alerts SET used = used || ? "
                    "WHERE id = ? AND instr(used, ?) = 0",
                    (action, alert, action),
                ).rowcount
                == 1
            )

    def unuse(self, alert: int, action: str) -> None:
        """``action`` failed: its button works again."""
        with self.db.write() as conn:
            conn.execute(
                "UPDATE chat_alerts SET used = replace(used, ?, '') WHERE id = ?",
                (action, alert),
            )

    def ack(self, alert: int, actor: str) -> tuple[bool, bool]:
        """Acknowledge ``alert``: (newly acknowledged, an escalation was stopped)."""
        now = self.db.clock()
        with self.db.write() as conn:
            acked = (
                conn.execute(
                    "UPDATE chat_alerts SET acked_by = ?, acked_at = ? "
                    "WHERE id = ? AND acked_at IS NULL",
                    (actor, now, alert),
                ).rowcount
                == 1
            )
            stopped = (
                conn.execute(
                    "UPDATE escalations SET state = 'acked', updated = ? "
                    "WHERE alert = ? AND state = 'pending'",
                    (now, alert),
                ).rowcount
                == 1
            )
        return acked, stopped

    def prune(self, before: float) -> int:
        """Forget alerts older than ``before`` (epoch seconds) whose escalation is
        not pending; returns how many."""
        with self.db.write() as conn:
            conn.execute(
                "DELETE FROM escalations WHERE state != 'pending' AND alert IN "
                "(SELECT id FROM chat_alerts WHERE created < ?)",
                (before,),
            )
            return conn.execute(
                "DELETE FROM chat_alerts WHERE created < ? AND id NOT IN "
                "(SELECT alert FROM escalations)",
                (before,),
            ).rowcount

    # ------------------------------------------------------------ escalations
    def escalate_later(
        self,
        alert: int,
        notification: Notification,
        *,
        channel: str,
        target: str,
        timeout: float,
    ) -> Escalation:
        """Start ``alert``'s timer: unless acknowledged within ``timeout`` seconds,
        it goes from ``channel`` to ``target``."""
        now = self.db.clock()
        payload = notification_to_json(notification)
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO escalations "
                "(alert, channel, target, due, timeout, payload, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (alert, channel, target, now + timeout, timeout, payload, now),
            )
        return Escalation(
            alert, channel, target, now + timeout, timeout, "pending", payload
        )

    def escalation(self, alert: int) -> Escalation | None:
        """``alert``'s escalation, if it has one."""
        rows = self.db.read(
            f"SELECT {_ESCALATION_COLUMNS} FROM escalations WHERE alert = ?", (alert,)
        )
        return Escalation(*rows[0]) if rows else None

    def due(self, channels: list[str], now: float | None = None) -> list[Escalation]:
        """The pending escalations from ``channels`` whose time has come."""
        if not channels:
            return []
        when = self.db.clock() if now is None else now
        marks = ",".join("?" * len(channels))
        rows = self.db.read(
            f"SELECT {_ESCALATION_COLUMNS} FROM escalations WHERE state = 'pending' "
            f"AND due <= ? AND channel IN ({marks}) ORDER BY due, alert",
            (when, *channels),
        )
        return [Escalation(*row) for row in rows]

    def waiting(self) -> list[tuple[Escalation, str]]:
        """Every escalation waiting for an ack, soonest first, with its alert's
        title."""
        rows = self.db.read(
            "SELECT e.alert, e.channel, e.target, e.due, e.timeout, e.state, "
            "e.payload, COALESCE(a.title, '') FROM escalations e LEFT JOIN "
            "chat_alerts a ON a.id = e.alert WHERE e.state = 'pending' "
            "ORDER BY e.due, e.alert"
        )
        return [(Escalation(*row[:7]), str(row[7])) for row in rows]

    def next_due(self, channels: list[str]) -> float | None:
        """When the next pending escalation from ``channels`` falls due."""
        if not channels:
            return None
        marks = ",".join("?" * len(channels))
        rows = self.db.read(
            "SELECT MIN(due) FROM escalations WHERE state = 'pending' "
            f"AND channel IN ({marks})",
            channels,
        )
        value: Any = rows[0][0] if rows else None
        return float(value) if value is not None else None

    def fire(
        self,
        escalation: Escalation,
        notification: Notification,
        *,
        owner: str | None,
        outbox: bool,
    ) -> tuple[bool, int | None]:
        """Mark the escalation fired and (``outbox``) write ``notification`` ahead
        for its target, in one transaction: (fired now, the outbox row). ``False``
        when another process (or an ack) got there first: nothing is written."""
        now = self.db.clock()
        with self.db.write() as conn:
            if (
                conn.execute(
                    "UPDATE escalations SET state = 'fired', updated = ? "
                    "WHERE alert = ? AND state = 'pending'",
                    (now, escalation.alert),
                ).rowcount
                != 1
            ):
                return False, None
            if not outbox:
                return True, None
            cursor = conn.execute(
                "INSERT OR IGNORE INTO outbox "
                "(uid, channel, payload, owner, created, updated) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    notification.uid,
                    escalation.target,
                    notification_to_json(notification),
                    owner,
                    now,
                    now,
                ),
            )
            return True, cursor.lastrowid if cursor.rowcount == 1 else None
