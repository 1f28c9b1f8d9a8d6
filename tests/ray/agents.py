"""Agents the Ray tests run in actors: plain agent classes, at module level, run
unchanged (the actor imports this module, as a process agent's child does)."""

from __future__ import annotations

import os
import threading
import time

from pyorchestrate.core.agent import (
    LoopingConfig,
    LoopingThreadAgent,
    OneShotThreadAgent,
    PeriodicThreadAgent,
)


class Counter(LoopingThreadAgent):
    """Counts cycles (``limit`` of them, -1: until stopped); sends ``{"cycle": n}``
    every cycle and ``{"closed": n}`` at the end."""

    class Config(LoopingConfig):
        pause: float = 0.01

    def setup(self) -> None:
        super().setup()
        self.count = 0
        self.send_message({"setup": os.getpid()})

    def cycle(self) -> None:
        self.count += 1
        self.send_message({"cycle": self.count})
        self.wait(self.config.pause)  # type: ignore[attr-defined]

    def on_close(self) -> None:
        self.send_message({"closed": self.count})


class Failing(LoopingThreadAgent):
    """Raises in its ``fail_at``-th cycle."""

    fail_at: int = 2

    def cycle(self) -> None:
        self.done = getattr(self, "done", 0) + 1
        if self.done >= self.fail_at:
            raise ValueError(f"cycle {self.done} failed on purpose")
        self.wait(0.01)


class LongCycle(LoopingThreadAgent):
    """One cycle that sleeps ``duration`` seconds unless stopped (via on_stop)."""

    duration: float = 60.0

    def setup(self) -> None:
        super().setup()
        self.woken = threading.Event()

    def cycle(self) -> None:
        self.send_message({"long_cycle": "begins"})
        self.woken.wait(self.duration)
        self.send_message({"long_cycle": "ends", "woken": self.woken.is_set()})

    def on_stop(self) -> None:
        self.woken.set()


class Stubborn(LoopingThreadAgent):
    """One cycle that never ends and ignores stops: only ray.kill ends it."""

    def cycle(self) -> None:
        while True:
            time.sleep(0.05)


class Once(OneShotThreadAgent):
    """Does one thing and ends: sends ``{"did": value}``."""

    value: int = 42

    def task(self) -> None:
        self.send_message({"did": self.value})


class Ticker(PeriodicThreadAgent):
    """Sends ``{"tick": n}`` on every run."""

    def runner(self) -> None:
        self.n = getattr(self, "n", 0) + 1
        self.send_message({"tick": self.n})


class BadInit(LoopingThreadAgent):
    """Its constructor raises (in the actor)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("no constructor for you")

    def cycle(self) -> None:  # pragma: no cover
        pass
