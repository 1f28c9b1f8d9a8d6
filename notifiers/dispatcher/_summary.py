"""What a dispatcher's channels did: counts per channel, and close()'s report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..base import DeliveryResult, DeliveryStatus

__all__ = ["ChannelSummary", "CloseReport", "Tally"]

# Results that only say an alert waits behind an earlier failure: it gets another
# result later (delivered, failed, dropped or abandoned), which is the one counted.
_WAITING = frozenset({"Held", "Outboxed"})
_FAILED = frozenset(
    {DeliveryStatus.FAILED, DeliveryStatus.PERMANENT, DeliveryStatus.MAYBE_DELIVERED}
)


@dataclass(frozen=True, slots=True)
class ChannelSummary:
    """What one channel's results were, over the dispatcher's life.

    ``failed`` counts results ``failed``, ``permanent`` and ``maybe_delivered`` (an
    alert kept in the outbox and delivered by a later try counts once failed and
    once delivered); results that only say an alert is held or outboxed behind an
    earlier failure are not counted (its later result is). ``dropped``: the queue
    was full, or the alert left the outbox unsent; ``abandoned``: still waiting
    when the dispatcher closed.
    """

    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    abandoned: int = 0

    @property
    def ok(self) -> bool:
        """Nothing failed, dropped or abandoned."""
        return not (self.failed or self.dropped or self.abandoned)

    def __str__(self) -> str:
        return (
            f"{self.delivered} delivered, {self.failed} failed, "
            f"{self.dropped} dropped, {self.abandoned} abandoned"
        )


class Tally:
    """A channel's running counts (written on the dispatcher's loop only; a fixed
    set of int attributes, so reading them from another thread is safe)."""

    __slots__ = ("abandoned", "delivered", "dropped", "failed")

    def __init__(self) -> None:
        self.delivered = self.failed = self.dropped = self.abandoned = 0

    def add(self, result: DeliveryResult) -> None:
        status = result.status
        if status is DeliveryStatus.DELIVERED:
            self.delivered += 1
        elif status is DeliveryStatus.DROPPED:
            self.dropped += 1
        elif status is DeliveryStatus.ABANDONED:
            self.abandoned += 1
        elif status in _FAILED and result.error_class not in _WAITING:
            self.failed += 1

    def snapshot(self) -> ChannelSummary:
        return ChannelSummary(self.delivered, self.failed, self.dropped, self.abandoned)


class CloseReport(list[DeliveryResult]):
    """What :meth:`Dispatcher.close() <notifiers.dispatcher.Dispatcher.close>` and
    :meth:`Attachment.detach() <notifiers.presets.Attachment.detach>` return.

    A list of the ``ABANDONED`` results, as before (``detach() == []`` when nothing
    was abandoned), that also carries ``summary``, the counts per channel over the
    dispatcher's life (:class:`ChannelSummary`); ``ok`` is ``True`` when no channel
    failed, dropped or abandoned anything, and ``str()`` is one line per channel,
    e.g. ``telegram: 3 delivered, 1 failed, 0 dropped, 0 abandoned``.
    """

    summary: dict[str, ChannelSummary]

    def __init__(
        self,
        abandoned: Iterable[DeliveryResult] = (),
        summary: Mapping[str, ChannelSummary] | None = None,
    ) -> None:
        super().__init__(abandoned)
        self.summary = dict(summary or {})

    @property
    def ok(self) -> bool:
        """No channel failed, dropped or abandoned anything."""
        return all(counts.ok for counts in self.summary.values())

    def __str__(self) -> str:
        if not self.summary:
            return "no channel"
        return "\n".join(f"{name}: {counts}" for name, counts in self.summary.items())
