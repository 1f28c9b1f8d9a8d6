"""Agents that repeat a cycle: forever, a fixed number of times, or until stopped."""

from __future__ import annotations

import abc
from typing import ClassVar, final

from pydantic import Field

from ..errors import NonRecoverableException, RecoverableException
from .base import AgentConfig, BaseAgent

__all__ = ["LoopingAgent", "LoopingConfig"]


class LoopingConfig(AgentConfig):
    """``limit``: how many cycles to run; -1 runs until stopped."""

    limit: int = Field(
        default=-1, ge=-1, strict=True, description="cycles to run; -1 = forever"
    )


class LoopingAgent(BaseAgent):
    """Runs :meth:`cycle` until ``limit`` is reached or a stop is requested.

    In a cycle, raise :class:`RecoverableException` to log and go on,
    :class:`NonRecoverableException` to end cleanly; any other exception ends the agent
    with AGENT_ERROR.
    """

    Config: ClassVar[type[AgentConfig]] = LoopingConfig
    config: LoopingConfig

    cycles_done: int = 0

    @final
    def execute(self) -> None:
        """Wait for ``execute_event``, then run cycles until done or stopped."""
        if not self._wait_control(self.control_events.execute_event):
            return
        limit = self.config.limit
        self.cycles_done = 0
        self._before_loop()
        while not self.stop_requested and (limit < 0 or self.cycles_done < limit):
            self._beat_if_due()
            if not self.safe_cycle():
                break
            self.cycles_done += 1

    def _before_loop(self) -> None:
        """Called once, after ``execute_event`` and before the first cycle."""

    @final
    def safe_cycle(self) -> bool:
        """Run one cycle; return ``False`` if the loop must end cleanly."""
        try:
            self.cycle()
        except RecoverableException as exc:
            self.logger.warning("agent %r: recoverable error: %s", self.name, exc)
        except NonRecoverableException as exc:
            self.logger.info("agent %r: stopping: %s", self.name, exc)
            return False
        return True

    @abc.abstractmethod
    def cycle(self) -> None:
        """One unit of the agent's work."""
