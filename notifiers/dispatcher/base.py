"""What the parts of the Dispatcher share: attributes, the hook and gate types."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..base import DeliveryResult, Notification, Notifier
from ..ratelimit import RateLimiter
from ..state import Mute, NotifierState
from .channels import ChannelStats, _Channel
from .summary import _Tally

__all__ = ["ResultHook", "SendGate"]

ResultHook = Callable[[DeliveryResult], object]
SendGate = Callable[[Notifier, Notification], Awaitable[None]]
"""Awaited on the dispatcher's loop before each attempt to send (a rate limiter): it
may wait (an asyncio sleep, never a thread's), so only that channel's worker waits."""


class _DispatcherBase:
    """What every part of :class:`~notifiers.dispatcher.Dispatcher` shares (set up by
    ``Dispatcher.__init__``)."""

    fallbacks: dict[str, str]
    queue_size: int
    results: deque[DeliveryResult]
    rate_limiter: RateLimiter | None
    _channels: dict[str, _Channel]
    _tally: dict[str, _Tally]
    _hooks: list[ResultHook]
    _sleep: Callable[[float], Awaitable[None]] | None
    _gate: SendGate | None
    _intake: queue.SimpleQueue[Notification]
    _wake_scheduled: bool
    _closed: bool
    _submit_lock: threading.Lock
    _loop: asyncio.AbstractEventLoop
    _ready: threading.Event
    _idle: threading.Condition
    _due: int
    _recorded: int
    _draining: bool
    _progress: int
    _progressed: asyncio.Event
    _owns_state: bool
    _state: NotifierState | None
    _owner: str
    _outbox_retry: float
    _state_refresh: float
    _mutes: list[Mute]
    _version: tuple[int, int] | None
    _saved: dict[str, dict[str, object]] | None
    _beat: float
    _claimed_at: float
    _done_rows: list[int]
    _done_scheduled: bool
    _db_errors: int
    _housekeeper: asyncio.Task[None] | None
    _thread: threading.Thread

    if TYPE_CHECKING:
        # Public API of Dispatcher (core.py) that the state file's part calls.
        def stats(self) -> dict[str, ChannelStats]: ...
