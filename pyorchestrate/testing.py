"""Helpers for testing code that uses pyorchestrate (and for our own tests).

``EventRecorder`` collects every event an orchestrator emits and lets a test wait for
one without sleeping::

    recorder = EventRecorder().attach(orchestrator)
    orchestrator.start()
    recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, agent_name="worker")
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from .core.events import OrchestratorEvent

__all__ = ["EventRecorder", "FakeClock", "SupportsRegisterEvent", "wait_until"]


class FakeClock:
    """A monotonic clock that moves only when told to, for fast deterministic tests.

    Pass it as ``Orchestrator(name, config, clock=clock)``: every deadline of the
    orchestrator (backoff delays, watchdog, ready, start and stop timeouts) is then
    measured on it, and :meth:`advance` wakes the orchestrator at once to act on what
    became due. A test of a 30-second backoff takes milliseconds::

        clock = FakeClock()
        orchestrator = Orchestrator("t", config, clock=clock)
        ...
        clock.advance(30.0)   # the restart happens now

    Keep real agents cooperative under a fake clock: a shutdown waits for them on this
    clock too, and it does not move by itself.

    It keeps a wall clock beside it (seconds since the epoch, ``wall``), for
    schedules: :meth:`advance` moves both, :meth:`jump_wall` moves only the wall
    clock, as an NTP step or a suspend does::

        orchestrator = Orchestrator("t", config, clock=clock, wall_clock=clock.wall)
    """

    def __init__(
        self, start: float = 1_000.0, *, wall: float = 1_800_000_000.0
    ) -> None:
        self._now = float(start)
        self._wall = float(wall)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def __call__(self) -> float:
        return self._now

    def monotonic(self) -> float:
        """The current fake time (seconds)."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time on by ``seconds`` and wake whoever listens; return the new time."""
        if seconds < 0:
            raise ValueError(f"seconds: a monotonic clock cannot go back ({seconds})")
        with self._lock:
            self._now += seconds
            self._wall += seconds
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
        return self._now

    def wall(self) -> float:
        """The fake wall-clock time (seconds since the epoch)."""
        return self._wall

    def jump_wall(self, seconds: float) -> float:
        """Move only the wall clock, by ``seconds`` (either way), and wake whoever
        listens; return the new wall time."""
        with self._lock:
            self._wall += seconds
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
        return self._wall

    def sleep(self, seconds: float) -> None:
        """What ``time.sleep`` becomes under this clock: time moves, nobody waits."""
        self.advance(seconds)

    def on_advance(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every :meth:`advance` (the orchestrator's wake-up)."""
        with self._lock:
            self._listeners.append(listener)


class SupportsRegisterEvent(Protocol):
    """Anything events can be registered on (an ``Orchestrator``)."""

    def register_event(
        self, event: OrchestratorEvent, callback: Callable[..., object]
    ) -> None: ...


def wait_until(
    predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01
) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class EventRecorder:
    """Records the keyword arguments of every event it is attached to, in arrival order."""

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._cond = threading.Condition()

    def attach(
        self,
        orchestrator: SupportsRegisterEvent,
        events: Iterable[OrchestratorEvent] = tuple(OrchestratorEvent),
    ) -> EventRecorder:
        """Register on each of ``events``; return ``self``."""
        for event in events:
            orchestrator.register_event(event, self._record)
        return self

    def _record(self, **kwargs: Any) -> None:
        with self._cond:
            self._events.append(kwargs)
            self._cond.notify_all()

    @property
    def events(self) -> list[dict[str, Any]]:
        """A copy of everything recorded."""
        with self._cond:
            return list(self._events)

    def of(
        self, event: OrchestratorEvent | None = None, agent_name: str | None = None
    ) -> list[dict[str, Any]]:
        """Recorded events, filtered by event and agent."""
        return [
            e
            for e in self.events
            if (event is None or e["event"] is event)
            and (agent_name is None or e["agent_name"] == agent_name)
        ]

    def names(self, agent_name: str | None = None) -> list[str]:
        """The event values recorded (for ``agent_name``), in order of seq (a
        heartbeat after the event whose seq it carries)."""
        found = sorted(
            self.of(agent_name=agent_name),
            key=lambda e: (e["seq"], e["event"] is OrchestratorEvent.AGENT_HEARTBEAT),
        )
        return [e["event"].value for e in found]

    def wait_for(
        self,
        event: OrchestratorEvent,
        agent_name: str | None = None,
        *,
        count: int = 1,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Wait until ``count`` matching events arrived; return the last of them.

        Raises:
            TimeoutError: listing what was recorded, if they did not arrive in time.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [
                    e
                    for e in self._events
                    if e["event"] is event
                    and (agent_name is None or e["agent_name"] == agent_name)
                ]
                if len(found) >= count:
                    return found[count - 1]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(e["event"].value, e["agent_name"]) for e in self._events]
                    raise TimeoutError(
                        f"{count} x {event.value} for {agent_name!r} not seen within "
                        f"{timeout} s; recorded: {seen}"
                    )
                self._cond.wait(remaining)
