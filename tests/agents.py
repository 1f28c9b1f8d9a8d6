"""Agents for the tests, at module level so process agents can be unpickled.

``agent(kind, flavour)`` returns the class of a kind for ``"thread"`` or ``"process"``.
Agents report what they did through ``send_message`` (read it from a
``MessageChannel`` passed as ``msg_channel``) or through events passed as kwargs.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from pyorchestrate.core.agent import (
    BaseProcessAgent,
    BaseThreadAgent,
    LoopingProcessAgent,
    LoopingThreadAgent,
    OneShotProcessAgent,
    OneShotThreadAgent,
    PeriodicProcessAgent,
    PeriodicThreadAgent,
)
from pyorchestrate.core.config import ValidationResult, ValidationSeverity
from pyorchestrate.core.errors import NonRecoverableException, RecoverableException


class _Forever:
    """Loops until stopped, 10 ms a cycle."""

    def cycle(self) -> None:
        self.wait(0.01)  # type: ignore[attr-defined]


class ForeverThread(_Forever, LoopingThreadAgent):
    pass


class ForeverProcess(_Forever, LoopingProcessAgent):
    pass


class _Counter:
    """Sends ``{"cycle": n}`` each cycle."""

    def cycle(self) -> None:
        self.send_message({"cycle": self.cycles_done})  # type: ignore[attr-defined]


class CounterThread(_Counter, LoopingThreadAgent):
    pass


class CounterProcess(_Counter, LoopingProcessAgent):
    pass


class _Quick:
    """Returns at once."""

    def task(self) -> Any:
        return 42


class QuickThread(_Quick, OneShotThreadAgent):
    pass


class QuickProcess(_Quick, OneShotProcessAgent):
    pass


class _Slow:
    """Sleeps ``duration`` seconds (kwarg, default 0.3), waking on stop."""

    duration: float = 0.3

    def task(self) -> Any:
        self.wait(self.duration)  # type: ignore[attr-defined]


class SlowThread(_Slow, OneShotThreadAgent):
    pass


class SlowProcess(_Slow, OneShotProcessAgent):
    pass


class _Boom:
    """Raises ValueError("boom") in its task."""

    def task(self) -> Any:
        raise ValueError("boom")


class BoomThread(_Boom, OneShotThreadAgent):
    pass


class BoomProcess(_Boom, OneShotProcessAgent):
    pass


class _SetupBoom:
    """Raises in setup(); execute never runs."""

    def setup(self) -> None:
        self.send_message({"setup": True})  # type: ignore[attr-defined]
        raise RuntimeError("setup failed")

    def execute(self) -> None:
        self.send_message({"execute": True})  # type: ignore[attr-defined]

    def on_close(self) -> None:
        self.send_message({"on_close": True})  # type: ignore[attr-defined]


class SetupBoomThread(_SetupBoom, BaseThreadAgent):
    pass


class SetupBoomProcess(_SetupBoom, BaseProcessAgent):
    pass


class _Recovering:
    """Raises Recoverable on cycles 0 and 1, NonRecoverable on cycle 3."""

    def cycle(self) -> None:
        n = self.cycles_done  # type: ignore[attr-defined]
        self.send_message({"cycle": n})  # type: ignore[attr-defined]
        if n in (0, 1):
            raise RecoverableException(f"hiccup {n}")
        if n == 3:
            raise NonRecoverableException("done")


class RecoveringThread(_Recovering, LoopingThreadAgent):
    pass


class RecoveringProcess(_Recovering, LoopingProcessAgent):
    pass


class _Ticker:
    """Periodic: sends the monotonic time of each run."""

    def runner(self) -> None:
        self.send_message({"tick": time.monotonic()})  # type: ignore[attr-defined]


class TickerThread(_Ticker, PeriodicThreadAgent):
    pass


class TickerProcess(_Ticker, PeriodicProcessAgent):
    pass


class _BadConfig:
    """Its Config's check() reports an ERROR on field ``threshold``."""

    def cycle(self) -> None:
        self.send_message({"cycle": self.cycles_done})  # type: ignore[attr-defined]


class BadConfigThread(_BadConfig, LoopingThreadAgent):
    class Config(LoopingThreadAgent.Config):
        threshold: int = 5

        def check(self) -> list[ValidationResult]:
            results = super().check()
            if self.threshold > 3:
                results.append(
                    ValidationResult(field="threshold", message="must be at most 3")
                )
            return results


class BadConfigProcess(_BadConfig, LoopingProcessAgent):
    Config = BadConfigThread.Config


class _WarnConfig:
    def cycle(self) -> None:
        raise NonRecoverableException("one cycle is enough")


class WarnConfigThread(_WarnConfig, LoopingThreadAgent):
    class Config(LoopingThreadAgent.Config):
        def check(self) -> list[ValidationResult]:
            return [
                ValidationResult(
                    field="limit",
                    message="just a warning",
                    severity=ValidationSeverity.WARNING,
                )
            ]


class WarnConfigProcess(_WarnConfig, LoopingProcessAgent):
    Config = WarnConfigThread.Config


class StubbornThread(BaseThreadAgent):
    """Ignores stop; ends only when the ``release`` event (kwarg) is set."""

    release: Any = None

    def execute(self) -> None:
        self.release.wait(30)


class StubbornProcess(BaseProcessAgent):
    """Ignores stop and SIGTERM; only SIGKILL ends it (or 30 s)."""

    def execute(self) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.05)


class TermCleanupProcess(BaseProcessAgent):
    """Ignores the stop event but ends on SIGTERM, running on_close."""

    def execute(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.05)

    def on_close(self) -> None:
        self.send_message({"on_close": True})


class ExitProcess(OneShotProcessAgent):
    """Ends its process abruptly with ``os._exit(code)`` (kwarg ``code``, default 3)."""

    code: int = 3

    def task(self) -> Any:
        os._exit(self.code)


class SleepForeverProcess(OneShotProcessAgent):
    """Sleeps in a plain loop (ready to be killed from outside)."""

    def task(self) -> Any:
        while True:
            time.sleep(0.05)


_KINDS: dict[str, dict[str, type]] = {
    "forever": {"thread": ForeverThread, "process": ForeverProcess},
    "counter": {"thread": CounterThread, "process": CounterProcess},
    "quick": {"thread": QuickThread, "process": QuickProcess},
    "slow": {"thread": SlowThread, "process": SlowProcess},
    "boom": {"thread": BoomThread, "process": BoomProcess},
    "setup_boom": {"thread": SetupBoomThread, "process": SetupBoomProcess},
    "recovering": {"thread": RecoveringThread, "process": RecoveringProcess},
    "ticker": {"thread": TickerThread, "process": TickerProcess},
    "bad_config": {"thread": BadConfigThread, "process": BadConfigProcess},
    "warn_config": {"thread": WarnConfigThread, "process": WarnConfigProcess},
}


def agent(kind: str, flavour: str) -> type:
    """The test agent class of ``kind`` in ``flavour`` (``thread`` or ``process``)."""
    return _KINDS[kind][flavour]


# ---------------------------------------------------------------- supervision


class _Hanging:
    """Loops like ``forever`` once the ``gate`` event (kwarg) is set; until then its
    cycle blocks on the gate and ignores stop (it stops beating: a hang)."""

    gate: Any = None

    def cycle(self) -> None:
        if not self.gate.is_set():
            self.gate.wait(30)
        self.wait(0.01)  # type: ignore[attr-defined]


class HangingThread(_Hanging, LoopingThreadAgent):
    pass


class HangingProcess(_Hanging, LoopingProcessAgent):
    pass


class _Beating:
    """A plain agent that calls ``heartbeat()`` itself every ``beat_every`` seconds."""

    beat_every: float = 0.02

    def execute(self) -> None:
        while not self.wait(self.beat_every):  # type: ignore[attr-defined]
            self.heartbeat()  # type: ignore[attr-defined]


class BeatingThread(_Beating, BaseThreadAgent):
    pass


class BeatingProcess(_Beating, BaseProcessAgent):
    pass


class _StopLog:
    """Loops until stopped; its ``on_stop`` (run in the orchestrator's process, for
    both flavours) appends ``(name, time.monotonic_ns())`` to ``stop_log`` (kwarg)."""

    stop_log: Any = None

    def cycle(self) -> None:
        self.wait(0.01)  # type: ignore[attr-defined]

    def on_stop(self) -> None:
        self.stop_log.append((self.name, time.monotonic_ns()))  # type: ignore[attr-defined]


class StopLogThread(_StopLog, LoopingThreadAgent):
    pass


class StopLogProcess(_StopLog, LoopingProcessAgent):
    pass


_KINDS["hanging"] = {"thread": HangingThread, "process": HangingProcess}
_KINDS["beating"] = {"thread": BeatingThread, "process": BeatingProcess}
_KINDS["stop_log"] = {"thread": StopLogThread, "process": StopLogProcess}
