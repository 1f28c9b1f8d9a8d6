"""The one "wait until N things arrived" used by every fake and recorder."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def wait_for_items(
    cond: threading.Condition,
    items: Sequence[T],
    count: int,
    timeout: float,
    *,
    what: str,
    describe: Callable[[T], object],
) -> list[T]:
    """Wait on ``cond`` until ``items`` holds ``count``; return a copy of them.

    Raises:
        TimeoutError: naming ``what`` and describing what did arrive.
    """
    with cond:
        if not cond.wait_for(lambda: len(items) >= count, timeout):
            seen = [describe(item) for item in items]
            raise TimeoutError(f"{count} {what} not received in {timeout} s: {seen}")
        return list(items)
