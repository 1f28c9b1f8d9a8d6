"""Agents that run :meth:`runner` on a fixed schedule."""

from __future__ import annotations

import abc
from typing import ClassVar, final

from pydantic import Field, StrictBool

from ..errors import RecoverableException
from ..utilities.timer import PeriodicTimer
from .base import AgentConfig
from .looping import LoopingAgent, LoopingConfig

__all__ = ["PeriodicAgent", "PeriodicConfig"]


class PeriodicConfig(LoopingConfig):
    """``execution_interval`` seconds between runs; ``delay_compensation`` catches up."""

    execution_interval: float = Field(default=1.0, gt=0, strict=True)
    delay_compensation: StrictBool = False


class PeriodicAgent(LoopingAgent):
    """Runs :meth:`runner` every ``execution_interval`` seconds (first run at once).

    A stop cuts the wait short. With ``delay_compensation`` a late run keeps the
    schedule and the missed runs are caught up; without it the schedule restarts.
    """

    Config: ClassVar[type[AgentConfig]] = PeriodicConfig
    config: PeriodicConfig

    _timer: PeriodicTimer | None = None

    def setup(self) -> None:
        """Create the timer, then wait for ``setup_event``."""
        self._timer = PeriodicTimer(
            self.config.execution_interval, self.config.delay_compensation
        )
        super().setup()

    @property
    def timer(self) -> PeriodicTimer:
        """The schedule; raises ``RuntimeError`` before ``setup()``."""
        if self._timer is None:
            raise RuntimeError(f"agent {self.name!r}: timer is created in setup()")
        return self._timer

    @final
    def cycle(self) -> None:
        """Run :meth:`runner`, then wait for the next tick (or a stop).

        A :class:`RecoverableException` from the runner still waits for the next tick
        (a failing runner must not turn into a busy loop); a
        :class:`NonRecoverableException` ends the loop at once.
        """
        try:
            self.runner()
        except RecoverableException:
            self._wait_next_tick()
            raise
        self._wait_next_tick()

    def _wait_next_tick(self) -> None:
        if self.config.limit < 0 or self.cycles_done + 1 < self.config.limit:
            self.timer.wait(
                self.stop_event, beat=self._beat_if_due, beat_every=self.beat_interval
            )

    def _before_loop(self) -> None:
        # The schedule starts when execution starts, not when setup() ran: time held
        # back by a custom execute_event is not a run missed.
        self.timer.reset()

    @abc.abstractmethod
    def runner(self) -> None:
        """The periodic work."""
