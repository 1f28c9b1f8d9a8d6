"""Waiting on one file descriptor, with ``poll()`` (any descriptor number, unlike
``select()``, which fails above 1,023: the orchestrator raises its open-files limit)."""

from __future__ import annotations

import select
from typing import Protocol

__all__ = ["readable", "writable"]


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


def _ready(fd: int | _HasFileno, event: int, timeout: float | None) -> bool:
    poller = select.poll()
    poller.register(fd, event)
    milliseconds = -1 if timeout is None else max(0, int(timeout * 1000 + 0.999))
    return bool(poller.poll(milliseconds))


def readable(fd: int | _HasFileno, timeout: float | None = 0) -> bool:
    """Whether ``fd`` is readable within ``timeout`` seconds (``None``: wait for it)."""
    return _ready(fd, select.POLLIN, timeout)


def writable(fd: int | _HasFileno, timeout: float | None = 0) -> bool:
    """Whether ``fd`` is writable within ``timeout`` seconds (``None``: wait for it)."""
    return _ready(fd, select.POLLOUT, timeout)
