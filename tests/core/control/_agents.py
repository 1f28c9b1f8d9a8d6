"""Module-level agents for the command-channel tests.

The keyword argument these agents read (``gate``, a ``threading.Event``) is not
declared as a class attribute.
"""

from __future__ import annotations

from pyorchestrate.core.agent import BaseThreadAgent, LoopingThreadAgent


class HangOnStopThread(LoopingThreadAgent):
    """Loops until stopped, but its ``on_stop`` blocks until ``gate`` is set."""

    def cycle(self) -> None:
        self.wait(0.01)

    def on_stop(self) -> None:
        self.gate.wait(30)  # type: ignore[attr-defined]


class GatedThread(BaseThreadAgent):
    """Ignores stop requests; ends only when ``gate`` is set."""

    def execute(self) -> None:
        self.gate.wait(30)  # type: ignore[attr-defined]
