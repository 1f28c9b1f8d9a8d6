"""Delivery times per channel: a cumulative histogram with fixed bounds, kept with
the channel's counters (in memory by the dispatcher, in the state file's stats row
by :meth:`~notifiers.state.StatsTable.save_stats`).

Standard library only, and outside the state package: a dispatcher counts with it
whether or not it has a state file (without one it loads no state code), and the
dashboard's Alerts panel reads what was saved with it.

In a channel's stats (a :class:`~notifiers.dispatcher.ChannelStats`, or the JSON of
its saved row):

* ``delivery_buckets``: how many deliveries took at most each bound of
  :data:`DELIVERY_BUCKETS` (cumulative, one count per bound);
* ``delivery_count``: how many deliveries (the ``+Inf`` bucket);
* ``delivery_sum``: their seconds, added up.

A delivery is one run of the channel's send under its retry policy: from its first
attempt (its wait for the rate limiter included) to its end, delivered or not.
A row saved before these keys existed reads as no delivery yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["DELIVERY_BUCKETS", "empty_buckets", "observe", "read_histogram"]

DELIVERY_BUCKETS: tuple[float, ...] = (
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
"""The upper bounds, in seconds, of ``notify_delivery_seconds``' buckets (``+Inf``
is the count)."""


def empty_buckets() -> list[int]:
    """One count per bound, all 0."""
    return [0] * len(DELIVERY_BUCKETS)


def observe(buckets: list[int], seconds: float) -> None:
    """Count a delivery of ``seconds`` in ``buckets`` (cumulative: every bound at or
    above it). O(bounds)."""
    for i, bound in enumerate(DELIVERY_BUCKETS):
        if seconds <= bound:
            buckets[i] += 1


def read_histogram(stats: Mapping[str, Any]) -> tuple[list[int], int, float]:
    """``(buckets, count, sum)`` from a channel's stats (live or saved); zeros when
    they hold none (a row saved by an older version) or not in this shape."""
    buckets = stats.get("delivery_buckets")
    count = stats.get("delivery_count")
    total = stats.get("delivery_sum")
    if (
        isinstance(buckets, list)
        and len(buckets) == len(DELIVERY_BUCKETS)
        and all(_is_count(n) for n in buckets)
        and isinstance(count, int)
        and _is_count(count)
        and isinstance(total, int | float)
        and not isinstance(total, bool)
    ):
        return [int(n) for n in buckets], count, float(total)
    return empty_buckets(), 0, 0.0


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
