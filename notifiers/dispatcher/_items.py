"""What passes through a channel: its items, the wake-up marker, its counters."""

from __future__ import annotations

from dataclasses import dataclass

from ..base import Notification

__all__ = ["WAKE", "ChannelStats", "Item", "Wake"]


@dataclass
class ChannelStats:
    """Counters of one channel.

    ``failed`` counts deliveries that ended undelivered (a replay from the outbox
    that fails again counts again); ``suppressed``: alerts not sent because muted;
    ``outboxed``: alerts kept in the outbox for a later try (their channel failed);
    ``held``: the same without a state file, alerts kept in memory behind a failure
    until the channel is back; ``replayed``: alerts delivered from the outbox rather
    than straight from the queue; ``queued``: waiting now (in the queue or held).
    """

    sent: int = 0
    failed: int = 0
    retried: int = 0
    dropped: int = 0
    abandoned: int = 0
    queued: int = 0
    last_success: float | None = None
    last_error: str | None = None
    suppressed: int = 0
    outboxed: int = 0
    replayed: int = 0
    held: int = 0


class Wake:
    """Put in a channel's queue to make its idle worker look at the outbox."""


WAKE = Wake()


@dataclass(eq=False, slots=True)
class Item:
    """One notification on its way to one channel."""

    notification: Notification
    row: int | None = None  # its outbox row
    counted: bool = True  # owes a result to flush()'s count (a replay does not)
    fallback_for: str | None = None  # the channel that failed and handed it over
