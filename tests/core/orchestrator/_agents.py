"""More module-level agents for the orchestrator tests (process agents must unpickle).

``agent(kind, flavour)`` returns the class of a kind for ``"thread"`` or ``"process"``.
Keyword arguments these agents read are deliberately *not* declared as class
attributes (the orchestrator refuses keywords that shadow class attributes).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from pyorchestrate.core.agent import (
    BaseThreadAgent,
    LoopingProcessAgent,
    OneShotProcessAgent,
    OneShotThreadAgent,
)
from tests.agents import TermCleanupProcess


class SegfaultProcess(OneShotProcessAgent):
    """Crashes its own process with SIGSEGV."""

    def task(self) -> Any:
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(30)  # not reached: SIGSEGV's default action ends the process


class _Echo:
    """Sends ``{"echo": self.echo}`` (kwarg ``echo``) as a DATA message."""

    def task(self) -> Any:
        self.send_message({"echo": self.echo})  # type: ignore[attr-defined]


class EchoThread(_Echo, OneShotThreadAgent):
    pass


class EchoProcess(_Echo, OneShotProcessAgent):
    pass


class RecordingPlugin:
    """A plugin that reports ``initialize``/``finalize`` through its owner agent."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.owner: Any = None

    def set_owner(self, owner: Any) -> None:
        self.owner = owner

    def initialize(self) -> None:
        self.owner.send_message({"plugin": self.label, "step": "initialize"})

    def finalize(self) -> None:
        self.owner.send_message({"plugin": self.label, "step": "finalize"})


class _InitBoom:
    """Its constructor raises: the start fails before anything runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("constructor failed")

    def task(self) -> Any:  # pragma: no cover - never constructed
        return None


class InitBoomThread(_InitBoom, OneShotThreadAgent):
    pass


class InitBoomProcess(_InitBoom, OneShotProcessAgent):
    pass


class NeverStartsThread(OneShotThreadAgent):
    """Its thread never gets to ``run()``: if stopped, it ends without a word."""

    def task(self) -> Any:
        return None

    def _thread_main(self) -> None:
        if self.stop_event.wait(30):
            link = self._link
            if link is not None:
                link.close()
            return
        super()._thread_main()  # type: ignore[misc]


class NeverStartsProcess(OneShotProcessAgent):
    """Its child hangs while unpickling the agent, before ``run()`` (SIGTERM ends it)."""

    def task(self) -> Any:
        return None

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Only the child unpickles the agent.
        time.sleep(30)
        super().__setstate__(state)


class GatedStubbornThread(BaseThreadAgent):
    """Ignores stop; ends only when the ``gate`` event (kwarg) is set."""

    def execute(self) -> None:
        self.gate.wait(30)  # type: ignore[attr-defined]


class TermCleanupMarkerProcess(TermCleanupProcess):
    """TermCleanupProcess that also writes the file ``marker`` (kwarg) in on_close."""

    def on_close(self) -> None:
        super().on_close()
        Path(self.marker).write_text("on_close ran")  # type: ignore[attr-defined]


_KINDS: dict[str, dict[str, type]] = {
    "echo": {"thread": EchoThread, "process": EchoProcess},
    "init_boom": {"thread": InitBoomThread, "process": InitBoomProcess},
    "never_starts": {"thread": NeverStartsThread, "process": NeverStartsProcess},
}


def agent(kind: str, flavour: str) -> type:
    """The agent class of ``kind`` in ``flavour`` (``thread`` or ``process``)."""
    return _KINDS[kind][flavour]


class CloseMarkerProcess(LoopingProcessAgent):
    """Loops until stopped; writes the file ``marker`` (kwarg) in on_close."""

    def cycle(self) -> None:
        self.wait(0.02)

    def on_close(self) -> None:
        Path(self.marker).write_text("on_close ran")  # type: ignore[attr-defined]
