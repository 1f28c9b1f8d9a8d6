"""Escalation chains: checked; what a channel failed for good handed to the next."""

from __future__ import annotations

import logging

from ..base import DeliveryResult, DeliveryStatus
from .channels import _Channel, _Item
from .intake import _Intake

__all__: list[str] = []

logger = logging.getLogger("notifiers.dispatcher")

_HANDED_OVER = frozenset({DeliveryStatus.FAILED, DeliveryStatus.PERMANENT})
"""Ends of a delivery that send the notification on to the channel's fallback (not
MAYBE_DELIVERED: it may have arrived, and a second channel would say it twice)."""


def _check_fallbacks(fallbacks: dict[str, str], channels: list[str]) -> dict[str, str]:
    """Validate escalation chains: known channels, one fallback each, no loop."""
    for name, fallback in fallbacks.items():
        for what in (name, fallback):
            if what not in channels:
                raise ValueError(
                    f"fallbacks: no channel named {what!r} "
                    f"(channels: {', '.join(channels)})"
                )
    targets = list(fallbacks.values())
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        raise ValueError(
            f"fallbacks: {', '.join(twice)} is the fallback of two channels"
        )
    for start in fallbacks:
        seen = [start]
        current = start
        while current in fallbacks:
            current = fallbacks[current]
            if current in seen:
                raise ValueError("fallbacks: a loop: " + " -> ".join([*seen, current]))
            seen.append(current)
    return fallbacks


class _Escalation(_Intake):
    """The hand-over from a channel that failed for good to its fallback."""

    def _hand_over(
        self, failed: _Channel, fallback: _Channel, item: _Item, result: DeliveryResult
    ) -> None:
        """``failed`` could not deliver ``item``: record that, and give it to its
        fallback (which owns it from now on, in the outbox too)."""
        notification = item.notification
        logger.warning(
            "channel %r failed notification %d (%s): handing it to %r",
            failed.notifier.name,
            notification.id,
            result.status.value,
            fallback.notifier.name,
        )
        state, old_row = self._state, item.row
        row: int | None = None
        if state is not None:
            rows = self._db(
                "hand over",
                lambda: state.put_many(
                    [(notification, [fallback.notifier.name])], owner=self._owner
                ),
            )
            row = rows[0].get(fallback.notifier.name) if rows else None
            if old_row is not None:
                self._done(old_row)  # the fallback's row replaces it
        if item.counted:
            self._due += 1  # first: flush() must never see this item as settled
            self._record(result)
        self._enqueue(
            fallback,
            _Item(
                notification,
                row,
                counted=item.counted,
                fallback_for=failed.notifier.name,
            ),
        )
