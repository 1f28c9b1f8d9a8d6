"""Channel stats: each channel's counters, saved for ``notify status``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from ..redact import redact
from .connection import Connection
from .owners import HOST

__all__ = ["StatsTable"]


class StatsTable:
    """Each channel's counters, saved for ``notify status``."""

    def __init__(self, db: Connection) -> None:
        self.db = db

    def save_stats(
        self,
        stats: Mapping[str, Mapping[str, Any]],
        *,
        heartbeat: str | None = None,
    ) -> None:
        """Store each channel's counters (``last_success``, ``last_error`` as
        columns, everything as JSON: the delivery-time histogram too, see
        :mod:`notifiers._histogram`), and beat ``heartbeat``'s heart, in one commit."""
        now = self.db.clock()
        rows = []
        for channel, values in stats.items():
            data = dict(values)
            if data.get("last_error") is not None:
                data["last_error"] = redact(data["last_error"])
            rows.append(
                (
                    channel,
                    json.dumps(data, separators=(",", ":")),
                    data.get("last_success"),
                    data.get("last_error"),
                    HOST,
                    os.getpid(),
                    now,
                )
            )
        with self.db.write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO channel_stats "
                "(channel, stats, last_success, last_error, host, pid, saved_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            if heartbeat is not None:
                conn.execute(
                    "UPDATE owners SET heartbeat = ? WHERE owner = ?", (now, heartbeat)
                )

    def load_stats(self) -> dict[str, dict[str, Any]]:
        """What :meth:`save_stats` stored, per channel, plus ``saved_at``, ``host`` and
        ``pid`` (of the process that saved it)."""
        out: dict[str, dict[str, Any]] = {}
        for channel, stats, host, pid, saved_at in self.db.read(
            "SELECT channel, stats, host, pid, saved_at FROM channel_stats "
            "ORDER BY channel"
        ):
            values = json.loads(stats)
            values.update(saved_at=saved_at, host=host, pid=pid)
            out[channel] = values
        return out
