"""A channel's queue, worker and counters, and the items that pass through it."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from ..base import Notification, Notifier
from ..retry import RetryPolicy

__all__ = ["ChannelStats"]


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


class _Wake:
    """Put in a channel's queue to make its idle worker look at the outbox."""


_WAKE = _Wake()


@dataclass(eq=False, slots=True)
class _Item:
    notification: Notification
    row: int | None = None  # its outbox row
    counted: bool = True  # owes a result to flush()'s count (a replay does not)
    fallback_for: str | None = None  # the channel that failed and handed it over


@dataclass(eq=False)
class _Channel:
    notifier: Notifier
    policy: RetryPolicy
    queue: asyncio.Queue[_Item | _Wake | None] | None = None
    task: asyncio.Task[None] | None = None
    current: _Item | None = None
    closing: bool = False
    started: asyncio.Event = field(default_factory=asyncio.Event)
    stats: ChannelStats = field(default_factory=ChannelStats)
    # With a state: the outbox holds alerts that go before the queue's, so the
    # worker delivers from the outbox (in row order) until it is empty.
    backlog: bool = False
    probe: asyncio.Task[None] | None = None  # parked: the wait before trying again
    # Items whose outbox rows the worker delivers instead (by row id): the same
    # objects (same ids in results); those still ``counted`` owe their result.
    awaiting: dict[int, _Item] = field(default_factory=dict)
    stop_seen: bool = False
    # Without a state, while parked: the alerts behind the failure, oldest first,
    # delivered in order once a try gets through.
    held: deque[_Item] = field(default_factory=deque)
    releasing: bool = False  # delivering what was held (flush() waits for it)
