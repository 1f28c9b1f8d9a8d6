"""The events an agent is steered by (control) and signals through (state).

Thread agents use ``threading.Event``; process agents use :class:`ProcessEvent`, an
event kept in the kernel (an ``eventfd`` on Linux, a pipe elsewhere) that a child
process receives as a file descriptor when it starts, under ``forkserver`` and
``spawn`` alike. Build events for your own agents with :func:`make_event`.

Why not ``multiprocessing.Event``: each is five named POSIX semaphores, registered
with multiprocessing's resource tracker and unregistered by finalizers that run when
the garbage collector gets to them. Six per agent made thousands; a finalizer that
ran while the tracker was being called printed ``ReentrantCallError`` and "might
leak" warnings on Python 3.12+ (and ``KeyError`` tracebacks on 3.11 when the tracker
or forkserver died). A :class:`ProcessEvent` is one descriptor, closed with its
object, and needs no tracker. A ``multiprocessing.Event`` of your own still works.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from dataclasses import dataclass, fields
from multiprocessing import context, reduction
from multiprocessing.synchronize import Event as MultiprocessingEvent
from typing import Any, Literal, Self

from ..utilities.fdwait import readable

__all__ = [
    "AnyEvent",
    "ControlEvents",
    "Flavour",
    "ProcessEvent",
    "StateEvents",
    "make_event",
]

Flavour = Literal["thread", "process", "ray"]
"""Where an agent runs: a thread, a process, or a Ray actor (whose orchestrator-side
object, :class:`~.ray_backend.RayAgent`, uses thread events)."""


class ProcessEvent:
    """An event shared by threads and processes: ``set``, ``clear``, ``is_set``, ``wait``.

    The flag lives in the kernel: an ``eventfd`` whose counter is non-zero while the
    event is set (a pipe holding a byte where there is no ``eventfd``). Every process
    holding a copy sees the same flag, and waiting is a ``poll()`` on the descriptor,
    so a waiter wakes the moment another process sets it. A copy reaches a child only
    as the child starts (as part of an agent, or in a ``Process``'s arguments), like
    ``multiprocessing``'s own events.
    """

    __slots__ = ("__weakref__", "_fds", "_finalizer")

    def __init__(self, *, is_set: bool = False) -> None:
        if hasattr(os, "eventfd"):
            fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            self._adopt((fd,))
        else:  # pragma: no cover - Linux has eventfd
            r, w = os.pipe()
            os.set_blocking(r, False)
            os.set_blocking(w, False)
            self._adopt((r, w))
        if is_set:
            self.set()

    def _adopt(self, fds: tuple[int, ...]) -> None:
        self._fds = fds
        self._finalizer = weakref.finalize(self, _close_all, fds)

    @property
    def _read_fd(self) -> int:
        return self._fds[0]

    def set(self) -> None:
        """Set the flag and wake every waiter, in every process."""
        try:
            if len(self._fds) == 1:
                os.eventfd_write(self._fds[0], 1)
            elif not self.is_set():  # pragma: no cover - pipe fallback
                os.write(self._fds[1], b"s")
        except BlockingIOError:  # pragma: no cover - already as set as can be
            pass

    def clear(self) -> None:
        """Reset the flag."""
        with contextlib.suppress(BlockingIOError):
            if len(self._fds) == 1:
                os.eventfd_read(self._fds[0])
            else:  # pragma: no cover - pipe fallback
                while os.read(self._fds[0], 4096):
                    pass

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return readable(self._read_fd)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the flag is set or ``timeout`` seconds passed; return the flag."""
        return readable(self._read_fd, timeout)

    def close(self) -> None:
        """Close this copy's descriptor (also done when the object is collected)."""
        self._finalizer()

    def __reduce__(self) -> tuple[Any, ...]:
        context.assert_spawning(self)  # like multiprocessing's own synchronization
        return _rebuild, tuple(reduction.DupFd(fd) for fd in self._fds)

    def __repr__(self) -> str:
        state = (
            "closed"
            if not self._finalizer.alive
            else ("set" if self.is_set() else "unset")
        )
        return f"<ProcessEvent {state}>"


def _close_all(fds: tuple[int, ...]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _rebuild(*handles: Any) -> ProcessEvent:
    event = ProcessEvent.__new__(ProcessEvent)
    event._adopt(tuple(handle.detach() for handle in handles))
    return event


AnyEvent = threading.Event | ProcessEvent | MultiprocessingEvent


def make_event(flavour: Flavour, *, is_set: bool = False) -> AnyEvent:
    """Return an event usable by agents of ``flavour`` (``"thread"`` or ``"process"``).

    A ``"process"`` event works in threads too, so one event can gate agents of both
    flavours.
    """
    event: AnyEvent
    if flavour in ("thread", "ray"):
        event = threading.Event()
    elif flavour == "process":
        event = ProcessEvent()
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
