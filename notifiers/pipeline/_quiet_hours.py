"""hold_in_quiet_hours: alerts held while quiet hours last, then sent as one digest."""

from __future__ import annotations

import datetime as _dt
from typing import ClassVar

from ..base import Notification
from ._rule import AlertRule
from ._state import Alert, Held, PipelineState

__all__ = ["hold_in_quiet_hours"]


class hold_in_quiet_hours(AlertRule):
    """Between ``quiet_hours.start`` and ``.end`` (local time in a time zone; may cross
    midnight) alerts below ``quiet_hours.hold_below`` are held and sent as one "Quiet
    hours digest: 14 alerts held" when the quiet hours end."""

    sees_taken: ClassVar[bool] = False

    def __call__(self, alert: Alert) -> bool:
        state = alert.state
        quiet = state.config.quiet_hours
        n = alert.notification
        if quiet is None or n.severity >= quiet.hold_below:
            return False
        if not self._in_quiet_hours(state, state.wall()):
            return False
        self._hold(state, n, alert.count)
        if alert.notes:  # its count includes them: they are told in the digest
            agent = state.agents.get(n.agent)
            if agent is not None:
                agent.notes.clear()
        return True

    def _in_quiet_hours(self, state: PipelineState, wall: float) -> bool:
        quiet = state.config.quiet_hours
        if quiet is None:
            return False
        if wall < state.quiet_valid_until:
            return state.quiet_active
        tz = state.quiet_tz
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
        state.quiet_active = active
        state.quiet_valid_until = max(nxt.timestamp(), wall + 1e-3)
        return active

    def _hold(self, state: PipelineState, n: Notification, count: int) -> None:
        state.stats.held += count
        state.held_total += count
        wall = state.wall()
        hkey = (n.agent, n.event)
        held = state.held.get(hkey)
        last = n.error or n.title
        if held is not None:
            held.count += count
            held.last_wall = wall
            held.last = last
            held.severity = max(held.severity, n.severity)
        elif len(state.held) < state.config.max_keys:
            state.held[hkey] = Held(count, wall, wall, last, n.severity)
        else:
            state.held_overflow += count
        if state.digest_due is None:
            now = state.clock()
            self._in_quiet_hours(state, wall)
            self._schedule(state, now + max(0.0, state.quiet_valid_until - wall))

    def _schedule(self, state: PipelineState, deadline: float) -> None:
        state.digest_due = deadline

        def valid(deadline: float) -> bool:
            return state.digest_due == deadline

        def fire(deadline: float, now: float) -> None:
            wall = state.wall()
            if self._in_quiet_hours(state, wall):
                self._schedule(state, now + max(1e-3, state.quiet_valid_until - wall))
            else:
                state.emit_digest()

        state.schedule(deadline, fire, valid)
