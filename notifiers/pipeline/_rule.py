"""AlertRule: the one interface of an alert rule."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from ._state import Alert, PipelineState

__all__ = ["AlertRule", "RuleLike"]


class AlertRule(abc.ABC):
    """A rule of the :class:`AlertPipeline`: called with each :class:`Alert` in turn.

    Return ``True`` to take the alert: it is not sent, and the rules after this one
    do not see it (unless they set :attr:`sees_taken`). A rule that takes an alert
    says why in :attr:`PipelineState.stats` or in a note for the agent's next
    message, so nothing disappears silently. Keep what the rule knows between calls
    in :attr:`Alert.state` (or in the rule itself, for a rule of your own); the
    pipeline calls rules under its lock, one at a time.

    A plain callable ``rule(alert) -> bool`` works too.
    """

    sees_taken: ClassVar[bool] = False
    """``True``: also called with alerts an earlier rule took, and with alerts
    offered with ``forward=False`` (to watch what happens)."""

    @abc.abstractmethod
    def __call__(self, alert: Alert) -> bool:
        """Look at ``alert``; ``True`` takes it."""

    def flush(self, state: PipelineState) -> None:
        """Hand on what the rule still holds (at detach), with
        :meth:`PipelineState.emit`. Called in reverse order of the rules."""


RuleLike = AlertRule | Callable[["Alert"], bool]
"""An :class:`AlertRule`, or a plain callable ``rule(alert) -> bool``."""
