"""The outbox in a state file: write-ahead rows, mutes, claims, saved counters."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import sqlite3
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from ..base import DeliveryResult, DeliveryStatus, Notification
from ..redact import redact
from ..state import Mute, NotifierState, OutboxRow
from ._outbox import OutboxChannel

__all__ = ["SqliteOutbox"]

logger = logging.getLogger("notifiers.dispatcher")

_T = TypeVar("_T")
_HEARTBEAT = 5.0  # seconds between heartbeats (the state's stale_after is 30 s)
_RECLAIM = 30.0  # seconds between looks for a dead process's rows, if nothing changed


class SqliteOutbox:
    """The :class:`~notifiers.dispatcher._outbox.Outbox` over a
    :class:`~notifiers.state.NotifierState` (see the package docstring for what it
    guarantees). Used on the dispatcher's loop thread only, except
    :meth:`is_muted`; every state call is guarded: a failing file is logged at ERROR
    and alerts go on without it.

    Args:
        state: the state.
        owns: whether :meth:`aclose` closes ``state``.
        refresh: seconds between looks at the file (mutes, replays asked for by
            another process) and saves of the counters.
        on_settled: called after delivered rows were deleted (``flush()`` may be
            done).
    """

    durable = True

    def __init__(
        self,
        state: NotifierState,
        *,
        owns: bool,
        refresh: float,
        on_settled: Callable[[], None] = lambda: None,
    ) -> None:
        self.state = state
        self._on_settled = on_settled
        self._owns = owns
        self._refresh_every = refresh
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._mutes: list[Mute] = []
        self._version: tuple[int, int] | None = None
        self._saved: dict[str, dict[str, object]] | None = None
        self._beat = 0.0
        self._claimed_at = 0.0
        self._done_rows: list[int] = []
        self._done_scheduled = False
        self._errors = 0
        self._housekeeper: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._channels: Mapping[str, OutboxChannel] = {}

    @property
    def settling(self) -> bool:
        return self._done_scheduled

    def _db(self, what: str, call: Callable[[], _T]) -> _T | None:
        """Run a state call; on a database error log it (redacted) and return None."""
        try:
            return call()
        except (sqlite3.Error, OSError, ValueError) as exc:
            self._errors += 1
            if self._errors == 1 or self._errors % 100 == 0:
                logger.error(
                    "notifier state %s failed (%d error(s) so far): %s; alerts go "
                    "on without it",
                    what,
                    self._errors,
                    redact(f"{type(exc).__name__}: {exc}"),
                )
            return None

    # ------------------------------------------------------------ lifecycle
    def open(
        self, loop: asyncio.AbstractEventLoop, channels: Mapping[str, OutboxChannel]
    ) -> None:
        self._loop, self._channels = loop, channels
        state = self.state
        self._db("register", lambda: state.register(self.owner))
        self._refresh()
        saved = self._db("load stats", state.load_stats) or {}
        for name, channel in channels.items():
            channel.restore(saved.get(name, {}))
        self._housekeeper = loop.create_task(self._housekeep())

    def _refresh(self, *, force: bool = False) -> None:
        """Re-read mutes; claim the rows nobody alive owns (a replay, or a dead
        process's) and let their channels deliver them. Only if the file changed
        (or ``force``)."""
        assert self._loop is not None
        state = self.state
        version = self._db("version", state.version)
        if not force and version is not None and version == self._version:
            return
        self._version = version
        self._claimed_at = self._loop.time()
        mutes = self._db("read mutes", state.mutes)
        if mutes is not None:
            self._mutes = mutes
        claimed = self._db(
            "claim", lambda: state.claim(self.owner, list(self._channels))
        )
        for name, count in (claimed or {}).items():
            logger.info(
                "channel %r: %d alert(s) to replay from the outbox", name, count
            )
            self._channels[name].replay_backlog()

    async def _housekeep(self) -> None:
        assert self._loop is not None
        while True:
            await asyncio.sleep(self._refresh_every)
            # A process that died does not write: look for its rows now and then.
            idle = self._loop.time() - self._claimed_at >= _RECLAIM
            self._refresh(force=idle)
            self._save_stats()

    def _save_stats(self, *, force: bool = False) -> None:
        assert self._loop is not None
        snapshot = {
            name: dataclasses.asdict(channel.snapshot())
            for name, channel in self._channels.items()
        }
        now = self._loop.time()
        if not force and snapshot == self._saved and now - self._beat < _HEARTBEAT:
            return
        state = self.state
        self._db("save stats", lambda: state.save_stats(snapshot, heartbeat=self.owner))
        self._saved, self._beat = snapshot, now

    async def aclose(self) -> None:
        housekeeper = self._housekeeper
        if housekeeper is not None:
            housekeeper.cancel()
            await asyncio.wait([housekeeper], timeout=1)
        state = self.state
        self.delete_delivered()
        if self._loop is not None:
            self._save_stats(force=True)
        self._db("release", lambda: state.release(self.owner))
        if self._owns:
            self._db("close", state.close)

    # ------------------------------------------------------------ mutes
    def is_muted(
        self, agent: str | None, event: str | None, channel: str | None = None
    ) -> bool:
        mutes = self._mutes
        if not mutes:
            return False
        now = self.state.clock()
        return any(
            m.active(now) and m.matches(channel=channel, agent=agent, event=event)
            for m in mutes
        )

    def muted(self, notification: Notification, channel: str) -> Mute | None:
        mutes = self._mutes
        if not mutes:
            return None
        now = self.state.clock()
        for mute in mutes:
            if mute.active(now) and mute.matches(
                channel=channel, agent=notification.agent, event=notification.event
            ):
                return mute
        return None

    # ------------------------------------------------------------ rows
    def write_ahead(
        self, plan: Sequence[tuple[Notification, list[str]]]
    ) -> list[dict[str, int | None]] | None:
        state = self.state
        return self._db(
            "write-ahead", lambda: state.put_many(list(plan), owner=self.owner)
        )

    def hand_over(self, notification: Notification, channel: str) -> int | None:
        state = self.state
        rows = self._db(
            "hand over",
            lambda: state.put_many([(notification, [channel])], owner=self.owner),
        )
        return rows[0].get(channel) if rows else None

    def delivered(self, row: int) -> None:
        """Deleted with the others of this loop iteration."""
        assert self._loop is not None
        self._done_rows.append(row)
        if not self._done_scheduled:
            self._done_scheduled = True
            self._loop.call_soon(self.delete_delivered)

    def delete_delivered(self) -> None:
        rows, self._done_rows = self._done_rows, []
        state = self.state
        if rows:
            self._db("delete delivered", lambda: state.delivered(rows))
        # Only now: flush() must not see the dispatcher settled mid-delete.
        self._done_scheduled = False
        self._on_settled()

    def keep(self, row: int, result: DeliveryResult) -> bool:
        state = self.state
        failed = result.status is DeliveryStatus.FAILED
        mark = state.failed if failed else state.dead
        self._db(
            f"mark {result.status.value}",
            lambda: mark(
                row,
                attempts=result.attempts,
                error=result.error,
                error_class=result.error_class,
            ),
        )
        return failed

    def pending(self, channel: str, limit: int) -> list[OutboxRow] | None:
        state = self.state
        return self._db(
            "read the outbox",
            lambda: state.pending(channel, owner=self.owner, limit=limit),
        )

    def replayed(self, row: OutboxRow) -> Notification | None:
        try:
            return row.notification()
        except Exception as exc:
            reason = type(exc).__name__
            logger.error(
                "outbox row %d (%s) cannot be read: %s; marked dead",
                row.id,
                row.channel,
                redact(exc),
            )
            state = self.state
            self._db(
                "mark dead",
                lambda: state.dead(row.id, error=f"unreadable: {reason}"),
            )
            return None
