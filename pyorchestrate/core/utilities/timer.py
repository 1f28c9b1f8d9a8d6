"""A drift-aware periodic timer that waits on a stop event."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["PeriodicTimer", "Waitable"]


class Waitable(Protocol):
    """Anything with ``wait(timeout) -> bool``: ``threading.Event``, ``multiprocessing.Event``."""

    def wait(self, timeout: float | None = None) -> bool: ...


class PeriodicTimer:
    """Wait until the next tick of a fixed schedule, or until an event is set.

    Args:
        interval: seconds between ticks; must be greater than 0.
        compensate: when a tick is missed, keep the old schedule and catch up (True),
            or restart the schedule from now (False).
        clock: a monotonic clock, injectable for tests.

    Raises:
        ValueError: when ``interval <= 0``.
    """

    def __init__(
        self,
        interval: float,
        compensate: bool = False,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval: must be greater than 0, got {interval!r}")
        self.interval = float(interval)
        self.compensate = compensate
        self._clock = clock
        self._deadline = clock()

    def reset(self) -> None:
        """Restart the schedule from now."""
        self._deadline = self._clock()

    @property
    def deadline(self) -> float:
        """The clock value of the next tick after the last ``wait``."""
        return self._deadline

    def wait(
        self,
        event: Waitable,
        *,
        beat: Callable[[], None] | None = None,
        beat_every: float | None = None,
    ) -> bool:
        """Move the deadline one interval on and wait for it or for ``event``.

        Args:
            event: ends the wait early when set.
            beat: called every ``beat_every`` seconds while waiting (a watchdog's
                heartbeat, so a long interval is not mistaken for a hang).
            beat_every: seconds between beats.

        Returns:
            ``True`` if ``event`` was set (stop requested), ``False`` at the tick.
        """
        self._deadline += self.interval
        now = self._clock()
        if self._deadline <= now:
            if not self.compensate:
                self._deadline = now
            return bool(event.wait(0))
        if beat is None or beat_every is None:
            return bool(event.wait(self._deadline - now))
        while (remaining := self._deadline - self._clock()) > 0:
            if event.wait(min(remaining, beat_every)):
                return True
            beat()
        return False
