"""Worker slots and the FIFO queue of agents waiting for one."""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["StartStatus", "WorkerPool", "WorkerStartResult"]


class StartStatus(enum.StrEnum):
    """What a start request did."""

    STARTED = "started"
    QUEUED = "queued"
    CANCELLED = "cancelled"
    FAILED_CLEAN = "failed_clean"
    FAILED_LIVE = "failed_live"
    SCHEDULED = "scheduled"
    """It has a schedule: it starts when due."""


@dataclass(frozen=True, slots=True)
class WorkerStartResult:
    """The outcome of a start request, with a reason a person can read."""

    status: StartStatus
    reason: str = ""


class WorkerPool:
    """At most ``max_workers`` agents hold a slot; the rest wait in FIFO order.

    Pure bookkeeping: the lifecycle manager calls it under its lock.
    """

    def __init__(self, max_workers: int) -> None:
        self.max_workers = max_workers
        self._active: set[str] = set()
        self._queue: deque[str] = deque()
        self.accepting = True

    def occupy(self, name: str) -> None:
        """Mark ``name`` as holding a slot."""
        self._active.add(name)

    def release(self, name: str) -> bool:
        """Free ``name``'s slot; return whether it held one."""
        if name in self._active:
            self._active.discard(name)
            return True
        return False

    def enqueue(self, name: str) -> None:
        """Append ``name`` to the queue (once)."""
        if name not in self._queue:
            self._queue.append(name)

    def dequeue(self, name: str) -> bool:
        """Remove ``name`` from the queue; return whether it was there."""
        try:
            self._queue.remove(name)
        except ValueError:
            return False
        return True

    def take_launchable(self, eligible: Callable[[str], bool]) -> list[str]:
        """Remove and return, in FIFO order, queued names that are eligible and fit."""
        taken: list[str] = []
        free = self.max_workers - len(self._active)
        for name in list(self._queue):
            if free <= 0:
                break
            if eligible(name):
                self._queue.remove(name)
                taken.append(name)
                free -= 1
        return taken

    def clear_queue(self) -> list[str]:
        """Empty the queue and return what it held."""
        names = list(self._queue)
        self._queue.clear()
        return names

    def queued(self) -> list[str]:
        """The names waiting in the queue, first first (a copy)."""
        return list(self._queue)

    def is_queued(self, name: str) -> bool:
        """Whether ``name`` waits in the queue."""
        return name in self._queue

    def queue_position(self, name: str) -> int | None:
        """``name``'s 0-based place in the queue, or ``None``."""
        try:
            return list(self._queue).index(name)
        except ValueError:
            return None

    @property
    def queue_size(self) -> int:
        """How many agents wait for a slot."""
        return len(self._queue)

    @property
    def running_count(self) -> int:
        """How many agents hold a slot."""
        return len(self._active)

    @property
    def has_free_slot(self) -> bool:
        """Whether another agent could start now."""
        return len(self._active) < self.max_workers

    def stats(self) -> dict[str, object]:
        """Counts and the queue, for reports."""
        return {
            "max_workers": self.max_workers,
            "running_count": len(self._active),
            "waiting_count": len(self._queue),
            "queue": list(self._queue),
            "accepting": self.accepting,
        }
