"""Quiet hours: alerts held while they last, then sent as one digest."""

from __future__ import annotations

import datetime as _dt

from ..base import Notification, Severity
from ..templates import render_alert
from .base import _PipelineBase
from .events import ALERTS_DIGEST
from .records import _Held

__all__: list[str] = []


class _QuietHoursMixin(_PipelineBase):
    """The quiet-hours part of :class:`~notifiers.pipeline.AlertPipeline`."""

    def _holding(self, n: Notification) -> bool:
        quiet = self.config.quiet_hours
        if quiet is None or n.severity >= quiet.hold_below:
            return False
        return self._in_quiet_hours(self._wall())

    def _in_quiet_hours(self, wall: float) -> bool:
        quiet = self.config.quiet_hours
        if quiet is None:
            return False
        if wall < self._quiet_valid_until:
            return self._quiet_active
        tz = self._quiet_tz
        local = _dt.datetime.fromtimestamp(wall, tz)
        now = local.time().replace(tzinfo=None)
        start, end = quiet.start, quiet.end
        active = start <= now < end if start < end else (now >= start or now < end)
        boundary = end if active else start
        nxt = _dt.datetime.combine(local.date(), boundary, tzinfo=tz)
        if nxt <= local:
            nxt = _dt.datetime.combine(
                local.date() + _dt.timedelta(days=1), boundary, tzinfo=tz
            )
        self._quiet_active = active
        self._quiet_valid_until = max(nxt.timestamp(), wall + 1e-3)
        return active

    def _hold(self, n: Notification, count: int) -> None:
        self._stats.held += count
        self._held_total += count
        wall = self._wall()
        hkey = (n.agent, n.event)
        held = self._held.get(hkey)
        last = n.error or n.title
        if held is not None:
            held.count += count
            held.last_wall = wall
            held.last = last
            held.severity = max(held.severity, n.severity)
        elif len(self._held) < self.config.max_keys:
            self._held[hkey] = _Held(count, wall, wall, last, n.severity)
        else:
            self._held_overflow += count
        if self._digest_due is None:
            now = self._clock()
            self._in_quiet_hours(wall)
            self._digest_due = now + max(0.0, self._quiet_valid_until - wall)
            self._push(self._digest_due, "digest", None, 0)

    def _emit_digest(self, out: list[Notification]) -> None:
        quiet = self.config.quiet_hours
        limit = quiet.digest_lines if quiet else 20
        entries = sorted(self._held.items(), key=lambda item: item[1].first_wall)
        lines = [
            render_alert(
                "digest_line",
                {
                    "agent": agent or "-",
                    "event": event,
                    "count": held.count,
                    "first": self._time(held.first_wall),
                    "last_time": self._time(held.last_wall),
                    "last": held.last,
                },
                self._templates,
            )[1]
            for (agent, event), held in entries[:limit]
        ]
        more = len(entries) - len(lines)
        if more > 0 or self._held_overflow:
            extra = self._held_overflow + sum(h.count for _, h in entries[limit:])
            lines.append(f"… and {extra} more")
        severity = max((h.severity for h in self._held.values()), default=Severity.INFO)
        title, body, _ = render_alert(
            "alerts_digest",
            {
                "count": self._held_total,
                "lines": "\n".join(lines),
                "shown": len(entries[:limit]),
                "more": max(more, 0),
            },
            self._templates,
        )
        self._held.clear()
        self._held_total = self._held_overflow = 0
        self._digest_due = None
        self._stats.digests += 1
        self._stats.sent += 1
        out.append(Notification(title, body, severity, event=ALERTS_DIGEST))
