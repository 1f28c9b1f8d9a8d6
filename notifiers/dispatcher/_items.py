"""What passes through a channel: its items, the wake-up marker, its counters."""

from __future__ import annotations

from dataclasses import dataclass, field

from .._histogram import empty_buckets, observe
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

    ``delivery_buckets``, ``delivery_count`` and ``delivery_sum``: the delivery
    times, a histogram over :data:`~notifiers._histogram.DELIVERY_BUCKETS`
    (cumulative counts per bound) with its count and sum in seconds. A delivery is
    one send under the retry policy, from its first attempt to its end, delivered
    or not (``sent + failed`` of them); saved with the counters, so a dashboard in
    another process shows ``notify_delivery_seconds``.
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
    delivery_buckets: list[int] = field(default_factory=empty_buckets)
    delivery_count: int = 0
    delivery_sum: float = 0.0

    def observe_delivery(self, seconds: float) -> None:
        """Count one delivery that took ``seconds``."""
        observe(self.delivery_buckets, seconds)
        self.delivery_count += 1
        self.delivery_sum += seconds


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
