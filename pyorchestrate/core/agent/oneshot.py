"""An agent that does one task, then closes."""

from __future__ import annotations

import abc
from typing import Any, final

from .base import BaseAgent

__all__ = ["OneShotAgent"]


class OneShotAgent(BaseAgent):
    """Waits for ``execute_event``, runs :meth:`task` once, then closes.

    The task's return value is kept in ``result`` (in the agent's own thread or
    process). A stop requested before the task starts skips it.
    """

    result: Any = None

    @final
    def execute(self) -> None:
        """Run :meth:`task` once, unless a stop came first."""
        if not self._wait_control(self.control_events.execute_event):
            return
        if self.stop_requested:
            return
        self.result = self.task()

    @abc.abstractmethod
    def task(self) -> Any:
        """The one piece of work."""
