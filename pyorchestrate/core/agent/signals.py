"""The events an agent is steered by (control) and signals through (state).

Thread agents use ``threading.Event``; process agents use ``multiprocessing`` events
built from the spawn context, which work under both ``spawn`` and ``forkserver``.
Build events for your own agents with :func:`make_event`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields
from multiprocessing.synchronize import Event as ProcessEvent
from typing import Literal, Self

from ..utilities.messaging import mp_context

__all__ = ["AnyEvent", "ControlEvents", "Flavour", "StateEvents", "make_event"]

Flavour = Literal["thread", "process"]
AnyEvent = threading.Event | ProcessEvent


def make_event(flavour: Flavour, *, is_set: bool = False) -> AnyEvent:
    """Return an event usable by agents of ``flavour`` (``"thread"`` or ``"process"``)."""
    event: AnyEvent
    if flavour == "thread":
        event = threading.Event()
    elif flavour == "process":
        event = mp_context().Event()
    else:
        raise ValueError(f"flavour: must be 'thread' or 'process', got {flavour!r}")
    if is_set:
        event.set()
    return event


@dataclass(slots=True)
class _EventSet:
    def _defaults(self) -> dict[str, bool]:
        return {}

    def filled(self, flavour: Flavour) -> Self:
        """Return a copy where every missing event is created for ``flavour``."""
        preset = self._defaults()
        values = {
            f.name: getattr(self, f.name)
            if getattr(self, f.name) is not None
            else make_event(flavour, is_set=preset.get(f.name, False))
            for f in fields(self)
        }
        return type(self)(**values)

    def check_flavour(self, flavour: Flavour) -> None:
        """Raise ``TypeError`` if an event cannot cross into a ``flavour`` agent."""
        if flavour != "process":
            return
        for f in fields(self):
            event = getattr(self, f.name)
            if isinstance(event, threading.Event):
                raise TypeError(
                    f"{type(self).__name__}.{f.name}: a threading.Event cannot reach a "
                    "process agent; build it with make_event('process')"
                )


@dataclass(slots=True)
class ControlEvents(_EventSet):
    """Events the owner sets to steer the agent.

    ``setup_event`` and ``execute_event`` start set unless you pass your own, in which
    case ``setup()`` / ``execute()`` wait until you set them. ``stop_event`` asks the
    agent to stop.
    """

    setup_event: AnyEvent | None = None
    execute_event: AnyEvent | None = None
    stop_event: AnyEvent | None = None

    def _defaults(self) -> dict[str, bool]:
        return {"setup_event": True, "execute_event": True}

    @classmethod
    def create(
        cls, flavour: Flavour, *, setup: bool = True, execute: bool = True
    ) -> Self:
        """Build a full set for ``flavour``; ``setup=False`` makes ``setup()`` wait."""
        return cls(
            setup_event=make_event(flavour, is_set=setup),
            execute_event=make_event(flavour, is_set=execute),
            stop_event=make_event(flavour),
        )


@dataclass(slots=True)
class StateEvents(_EventSet):
    """Events the agent sets as it goes: started, ready, closed."""

    start_event: AnyEvent | None = None
    ready_event: AnyEvent | None = None
    close_event: AnyEvent | None = None

    @classmethod
    def create(cls, flavour: Flavour) -> Self:
        """Build a full, unset set for ``flavour``."""
        return cls().filled(flavour)
