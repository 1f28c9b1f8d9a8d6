"""drop_muted: the one place the alert rules check mutes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ClassVar

from ..state import find_mute
from ._rule import AlertRule
from ._state import Alert, PipelineState

__all__ = ["MutedPredicate", "drop_muted"]

logger = logging.getLogger("notifiers.pipeline")

MutedPredicate = Callable[[str | None, str | None], bool]
"""``muted(agent, event) -> bool``: true drops the alert."""


class drop_muted(AlertRule):
    """Drops alerts under a mute: the pipeline's mutes (``mutes`` in the config,
    :meth:`AlertPipeline.mute`) or ``muted(agent, event)``. A dropped alert is counted
    for the agent's next message ("+3 muted since 09:58").

    Args:
        muted: ``muted(agent, event) -> bool``; true drops the alert. Called under
            the pipeline's lock: keep it quick, and do not call the pipeline from it.
    """

    sees_taken: ClassVar[bool] = False

    def __init__(self, muted: MutedPredicate | None = None) -> None:
        self.muted = muted

    def __call__(self, alert: Alert) -> bool:
        state = alert.state
        if self.muted is None and not state.mutes:
            return False
        n = alert.notification
        if not self.is_muted(state, n.agent, n.event):
            return False
        state.stats.muted += 1
        if not alert.synthesized:
            state.note(alert.agent, ("muted",), 1, state.wall())
        return True

    def is_muted(
        self, state: PipelineState, agent: str | None, event: str | None
    ) -> bool:
        """Whether an alert of ``agent`` and ``event`` is muted now (expired mutes go)."""
        predicate = self.muted
        if predicate is not None:
            try:
                if predicate(agent, event):
                    return True
            except Exception:
                logger.exception("the muted() predicate raised; not muting")
        mutes = state.mutes
        if not mutes:
            return False
        wall = state.wall()
        if any(m.until is not None and m.until <= wall for m in mutes):
            mutes = state.mutes = [m for m in mutes if m.active(wall)]
        return find_mute(mutes, now=wall, agent=agent, event=event) is not None
