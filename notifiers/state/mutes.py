"""Mutes: alerts of an agent, of an event, or to a channel, held back for a while."""

from __future__ import annotations

import fnmatch
import typing
from dataclasses import dataclass
from typing import Literal

from .connection import _Connection

__all__ = ["Mute", "MuteKind"]

MuteKind = Literal["agent", "event", "channel"]
_MUTE_KINDS: tuple[str, ...] = typing.get_args(MuteKind)


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


class _Mutes(_Connection):
    """The mutes part of :class:`~notifiers.state.NotifierState`."""

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
