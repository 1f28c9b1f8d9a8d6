"""Mute: the one model of a mute, and the one check of a list of mutes.

Standard library only: the alert rules (:mod:`notifiers.pipeline`), the state file
and the dispatcher all use it, and the CLI reads it without loading anything else.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import re
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Mute", "MuteKind", "find_mute"]

MuteKind = Literal["agent", "event", "channel"]
_MUTE_KINDS: tuple[str, ...] = typing.get_args(MuteKind)


def _glob(pattern: str, *, fold: bool = False) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE if fold else 0)


@dataclass(frozen=True, slots=True)
class Mute:
    """Alerts of matching agents and events (to a matching channel) are held back.

    ``agent`` is an ``fnmatch`` glob (``worker-*``; ``None``: every agent), ``event``
    an event name or glob, compared case-insensitively (``None``: every event),
    ``channel`` a glob of channel names (``None``: every channel; only the
    dispatcher knows the channel, so the alert rules never match a channel mute).
    ``until`` is wall-clock seconds since the epoch, or ``None``: until unmuted.
    ``created`` is when it was made (set by the state file).
    """

    agent: str | None = None
    event: str | None = None
    until: float | None = None
    reason: str | None = ""
    channel: str | None = field(default=None, kw_only=True)
    created: float | None = field(default=None, kw_only=True)
    _patterns: tuple[re.Pattern[str] | None, ...] | None = field(
        default=None, compare=False, repr=False, kw_only=True
    )

    @classmethod
    def of(
        cls,
        kind: MuteKind,
        value: str,
        *,
        until: float | None = None,
        created: float | None = None,
        reason: str | None = None,
    ) -> Mute:
        """A mute of one ``kind`` (``agent``, ``event`` or ``channel``): the form the
        state file and ``pyorchestrate notify mute`` use."""
        if kind not in _MUTE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(_MUTE_KINDS)}")
        if not value:
            raise ValueError("value must not be empty")
        return cls(
            agent=value if kind == "agent" else None,
            event=value if kind == "event" else None,
            channel=value if kind == "channel" else None,
            until=until,
            created=created,
            reason=reason,
        )

    @property
    def kind(self) -> MuteKind:
        """``channel``, ``agent`` or ``event``: what it is a mute of (the first set)."""
        if self.channel is not None:
            return "channel"
        return "agent" if self.agent is not None or self.event is None else "event"

    @property
    def value(self) -> str:
        """The glob of :attr:`kind` (``*`` for a mute of everything)."""
        value = {"channel": self.channel, "agent": self.agent, "event": self.event}
        return value[self.kind] or "*"

    @property
    def until_datetime(self) -> _dt.datetime | None:
        """``until`` as an aware local datetime (``None``: until unmuted)."""
        if self.until is None:
            return None
        return _dt.datetime.fromtimestamp(self.until).astimezone()

    def active(self, now: float) -> bool:
        """Whether it still holds at ``now`` (epoch seconds)."""
        return self.until is None or now < self.until

    def matches(
        self,
        agent: str | None = None,
        event: str | None = None,
        *,
        channel: str | None = None,
    ) -> bool:
        """Whether an alert of ``agent`` and ``event`` (to ``channel``) falls under this
        mute; ignores expiry (see :meth:`active`)."""
        patterns = self._patterns
        if patterns is None:
            patterns = (
                None if self.agent in (None, "*") else _glob(self.agent or ""),
                None if self.event is None else _glob(self.event, fold=True),
                None if self.channel is None else _glob(self.channel),
            )
            object.__setattr__(self, "_patterns", patterns)
        agents, events, channels = patterns
        if channels is not None and (
            channel is None or channels.fullmatch(channel) is None
        ):
            return False
        if events is not None and (event is None or events.fullmatch(event) is None):
            return False
        return agents is None or agents.fullmatch(agent or "") is not None


def find_mute(
    mutes: Iterable[Mute],
    *,
    now: float,
    agent: str | None = None,
    event: str | None = None,
    channel: str | None = None,
) -> Mute | None:
    """The first of ``mutes`` active at ``now`` that covers an alert of ``agent`` and
    ``event`` (to ``channel``): the one check of mutes, wherever they come from."""
    for mute in mutes:
        if (mute.until is None or now < mute.until) and mute.matches(
            agent, event, channel=channel
        ):
            return mute
    return None
