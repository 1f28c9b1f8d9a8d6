"""The dispatcher's outbox port, and the null outbox used without a state file.

The dispatcher and its channel workers talk to durable storage only through
:class:`Outbox`. :class:`NullOutbox` (no state file) keeps nothing and reads nothing,
so no row, mute or SQLite code runs on an alert's way; the SQLite implementation,
over a :class:`~notifiers.state.NotifierState`, is in ``_sqlite_outbox``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from ..base import DeliveryResult, Notification

if TYPE_CHECKING:
    from ..state import Mute, NotifierState, OutboxRow
    from ._items import ChannelStats

__all__ = ["NullOutbox", "Outbox", "OutboxChannel"]


class OutboxChannel(Protocol):
    """What an outbox needs of a channel's worker."""

    def snapshot(self) -> ChannelStats:
        """The channel's counters now (a copy)."""
        ...

    def restore(self, saved: Mapping[str, object]) -> None:
        """Take over counters saved by an earlier run."""
        ...

    def replay_backlog(self) -> None:
        """The outbox holds rows for this channel: deliver them."""
        ...


class Outbox(Protocol):
    """Durable storage for what a dispatcher accepted (all of it on its loop)."""

    durable: bool
    """Whether accepted alerts survive a failure or a restart here (``False``: a
    channel that fails holds what waits behind it in memory)."""

    @property
    def state(self) -> NotifierState | None:
        """The state file behind it, if any."""
        ...

    @property
    def settling(self) -> bool:
        """Delivered rows wait to be deleted (``flush()`` waits for that)."""
        ...

    def open(
        self, loop: asyncio.AbstractEventLoop, channels: Mapping[str, OutboxChannel]
    ) -> None:
        """Start on the loop: counters restored, rows to replay handed out."""
        ...

    def is_muted(
        self, agent: str | None, event: str | None, channel: str | None = None
    ) -> bool:
        """Whether a mute covers the alert (any thread, no file access)."""
        ...

    def muted(self, notification: Notification, channel: str) -> Mute | None:
        """The mute that covers ``notification`` on ``channel``, if any."""
        ...

    def write_ahead(
        self, plan: Sequence[tuple[Notification, list[str]]]
    ) -> list[dict[str, int | None]] | None:
        """Keep each notification for its channels; per notification, each channel's
        row (``None``: already kept); ``None`` if nothing was kept."""
        ...

    def hand_over(self, notification: Notification, channel: str) -> int | None:
        """Keep ``notification`` for ``channel`` (a fallback); its row."""
        ...

    def delivered(self, row: int) -> None:
        """``row`` was delivered: delete it (batched per loop iteration)."""
        ...

    def delete_delivered(self) -> None:
        """Delete the delivered rows now."""
        ...

    def keep(self, row: int, result: DeliveryResult) -> bool:
        """``row`` ended undelivered (``result``): keep it, ``failed`` (tried again
        later: returns ``True``) or ``dead``."""
        ...

    def pending(self, channel: str, limit: int) -> list[OutboxRow] | None:
        """The channel's oldest rows to deliver; ``None`` if it cannot be read."""
        ...

    def replayed(self, row: OutboxRow) -> Notification | None:
        """The notification a row holds (``None``: unreadable, marked dead)."""
        ...

    async def aclose(self) -> None:
        """Save and release everything (close's last step)."""
        ...


class NullOutbox:
    """No state file: nothing is kept, no mute applies; every method is a no-op."""

    durable = False
    state = None
    settling = False

    def open(
        self, loop: asyncio.AbstractEventLoop, channels: Mapping[str, OutboxChannel]
    ) -> None:
        return None

    def is_muted(
        self, agent: str | None, event: str | None, channel: str | None = None
    ) -> bool:
        return False

    def muted(self, notification: Notification, channel: str) -> Mute | None:
        return None

    def write_ahead(
        self, plan: Sequence[tuple[Notification, list[str]]]
    ) -> list[dict[str, int | None]] | None:
        return None

    def hand_over(self, notification: Notification, channel: str) -> int | None:
        return None

    def delivered(self, row: int) -> None:
        return None

    def delete_delivered(self) -> None:
        return None

    def keep(self, row: int, result: DeliveryResult) -> bool:
        return False

    def pending(self, channel: str, limit: int) -> list[OutboxRow] | None:
        return None

    def replayed(self, row: OutboxRow) -> Notification | None:
        return None

    async def aclose(self) -> None:
        return None
