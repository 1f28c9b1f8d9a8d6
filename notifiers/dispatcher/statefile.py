"""The state file from the loop: guarded calls, mutes, claims, deletes, counters."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
from collections.abc import Callable
from typing import TypeVar

from ..base import Notification
from ..redact import redact
from ..state import Mute, NotifierState
from .channels import _WAKE
from .delivery import _Delivery

__all__: list[str] = []

logger = logging.getLogger("notifiers.dispatcher")

_T = TypeVar("_T")
_HEARTBEAT = 5.0  # seconds between heartbeats (the state's stale_after is 30 s)
_RECLAIM = 30.0  # seconds between looks for a dead process's rows, if nothing changed


class _StateFile(_Delivery):
    """The durable state's side of the dispatcher (all of it on the loop thread)."""

    def _db(self, what: str, call: Callable[[], _T]) -> _T | None:
        """Run a state call; on a database error log it (redacted) and return None."""
        try:
            return call()
        except (sqlite3.Error, OSError, ValueError) as exc:
            self._db_errors += 1
            if self._db_errors == 1 or self._db_errors % 100 == 0:
                logger.error(
                    "notifier state %s failed (%d error(s) so far): %s; alerts go "
                    "on without it",
                    what,
                    self._db_errors,
                    redact(f"{type(exc).__name__}: {exc}"),
                )
            return None

    def _open_state(self, state: NotifierState) -> None:
        self._db("register", lambda: state.register(self._owner))
        self._refresh(state)
        saved = self._db("load stats", state.load_stats) or {}
        for name, channel in self._channels.items():
            previous = saved.get(name, {})
            channel.stats.last_success = previous.get("last_success")
            channel.stats.last_error = previous.get("last_error")
        self._housekeeper = self._loop.create_task(self._housekeep(state))

    def _refresh(self, state: NotifierState, *, force: bool = False) -> None:
        """Re-read mutes; claim the rows nobody alive owns (a replay, or a dead
        process's) and let their channels deliver them. Only if the file changed
        (or ``force``)."""
        version = self._db("version", state.version)
        if not force and version is not None and version == self._version:
            return
        self._version = version
        self._claimed_at = self._loop.time()
        mutes = self._db("read mutes", state.mutes)
        if mutes is not None:
            self._mutes = mutes
        claimed = self._db(
            "claim", lambda: state.claim(self._owner, list(self._channels))
        )
        for name, count in (claimed or {}).items():
            channel = self._channels[name]
            logger.info(
                "channel %r: %d alert(s) to replay from the outbox", name, count
            )
            channel.backlog = True
            if channel.queue is not None:
                with contextlib.suppress(asyncio.QueueFull):
                    channel.queue.put_nowait(_WAKE)

    async def _housekeep(self, state: NotifierState) -> None:
        while True:
            await asyncio.sleep(self._state_refresh)
            # A process that died does not write: look for its rows now and then.
            idle = self._loop.time() - self._claimed_at >= _RECLAIM
            self._refresh(state, force=idle)
            self._save_stats(state)

    def _save_stats(self, state: NotifierState, *, force: bool = False) -> None:
        snapshot = {name: dataclasses.asdict(s) for name, s in self.stats().items()}
        now = self._loop.time()
        if not force and snapshot == self._saved and now - self._beat < _HEARTBEAT:
            return
        self._db(
            "save stats", lambda: state.save_stats(snapshot, heartbeat=self._owner)
        )
        self._saved, self._beat = snapshot, now

    def _muted(self, notification: Notification, channel: str) -> Mute | None:
        mutes, state = self._mutes, self._state
        if not mutes or state is None:
            return None
        now = state.clock()
        for mute in mutes:
            if mute.active(now) and mute.matches(
                channel=channel, agent=notification.agent, event=notification.event
            ):
                return mute
        return None

    def _done(self, row: int) -> None:
        """A row delivered: deleted with the others of this loop iteration."""
        self._done_rows.append(row)
        if not self._done_scheduled:
            self._done_scheduled = True
            self._loop.call_soon(self._flush_done)

    def _flush_done(self) -> None:
        rows, self._done_rows = self._done_rows, []
        state = self._state
        if rows and state is not None:
            self._db("delete delivered", lambda: state.delivered(rows))
        # Only now: flush() must not see the dispatcher settled mid-delete.
        self._done_scheduled = False
        if self._recorded >= self._due:
            self._notify_idle()

    def _close_state(self) -> None:
        state = self._state
        if state is None:
            return
        self._flush_done()
        self._save_stats(state, force=True)
        self._db("release", lambda: state.release(self._owner))
        if self._owns_state:
            self._db("close", state.close)
