"""drop_duplicates: an identical alert is not sent again within the dedup window."""

from __future__ import annotations

from typing import ClassVar

from ._rule import AlertRule
from ._state import Alert

__all__ = ["drop_duplicates"]


class drop_duplicates(AlertRule):
    """An alert identical to one sent (same agent, event and error text) within
    ``dedup_window`` seconds, of at least ``dedup_min_severity``, is dropped and
    counted: the agent's next message says "(+7 identical suppressed since 09:58)"."""

    sees_taken: ClassVar[bool] = False

    def __call__(self, alert: Alert) -> bool:
        if alert.final:
            return False
        state = alert.state
        cfg = state.config
        window = cfg.dedup_window
        n = alert.notification
        if window is None or n.severity < cfg.dedup_min_severity:
            return False
        now = alert.now
        key = n.key
        dedup = state.dedup
        last = dedup.get(key)
        if last is not None and now - last < window:
            state.stats.deduplicated += 1
            state.note(
                alert.agent,
                ("dedup", key),
                1,
                state.wall(),
                n.event,
                n.error or n.title,
            )
            return True
        dedup[key] = now
        dedup.move_to_end(key)
        while dedup:
            at = next(iter(dedup.values()))
            if now - at < window and len(dedup) <= cfg.max_keys:
                break
            dedup.popitem(last=False)
        return False
