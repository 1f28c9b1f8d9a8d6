"""Mutes: alerts of an agent, of an event, or to a channel, held back for a while."""

from __future__ import annotations

from ._mute import Mute, MuteKind, find_mute
from .connection import Connection

__all__ = ["MutesTable"]


class MutesTable:
    """The mutes in the state file (what ``pyorchestrate notify mute`` writes)."""

    def __init__(self, db: Connection) -> None:
        self.db = db

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
        Mute.of(kind, value)  # refuses a bad kind or an empty value
        if until is not None and duration is not None:
            raise ValueError("give until or duration, not both")
        now = self.db.clock()
        if duration is not None:
            if duration <= 0:
                raise ValueError("duration must be positive")
            until = now + duration
        with self.db.write(notable=True) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO mutes (kind, value, until, created, reason) "
                "VALUES (?, ?, ?, ?, ?)",
                (kind, value, until, now, reason),
            )
        return Mute.of(kind, value, until=until, created=now, reason=reason)

    def unmute(self, kind: MuteKind, value: str) -> bool:
        """End a mute; ``False`` if there was none."""
        with self.db.write(notable=True) as conn:
            return (
                conn.execute(
                    "DELETE FROM mutes WHERE kind = ? AND value = ?", (kind, value)
                ).rowcount
                > 0
            )

    def mutes(self, *, include_expired: bool = False) -> list[Mute]:
        """The mutes (active ones only, unless ``include_expired``)."""
        now = self.db.clock()
        found = [
            Mute.of(kind, value, until=until, created=created, reason=reason)
            for kind, value, until, created, reason in self.db.read(
                "SELECT kind, value, until, created, reason FROM mutes "
                "ORDER BY kind, value"
            )
        ]
        return found if include_expired else [m for m in found if m.active(now)]

    def prune_mutes(self) -> int:
        """Delete expired mutes; returns how many."""
        with self.db.write(notable=True) as conn:
            return conn.execute(
                "DELETE FROM mutes WHERE until IS NOT NULL AND until <= ?",
                (self.db.clock(),),
            ).rowcount

    def is_muted(
        self,
        *,
        channel: str | None = None,
        agent: str | None = None,
        event: str | None = None,
    ) -> Mute | None:
        """The first active mute that covers an alert with these fields, if any."""
        return find_mute(
            self.mutes(), now=self.db.clock(), agent=agent, event=event, channel=channel
        )
