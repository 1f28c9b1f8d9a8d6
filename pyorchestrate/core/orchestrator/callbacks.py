"""The event bus: record every event, then run its callbacks off the router thread.

Callbacks run on a few worker threads. Events of one agent always go to the same
worker, so **one agent's callbacks run in event order** (STARTED before TERMINATED)
while a slow callback for one agent does not hold up the others. The router only
enqueues; a full queue drops the call, counts it and logs it at ERROR.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..events import (
    CALLBACK_KEYWORDS,
    AgentEvent,
    EventCallback,
    EventRecord,
    OrchestratorEvent,
    Severity,
    severity_of,
)
from .history import EventHistory

__all__ = ["CallbackExecutor", "EventBus"]

logger = logging.getLogger(__name__)

_Job = tuple[Callable[[Any], object], Any] | None


class CallbackExecutor:
    """A fixed set of named worker threads, each with its own bounded queue.

    Threads start on the first :meth:`submit` (no callbacks: no threads).
    """

    def __init__(
        self, workers: int = 4, queue_size: int = 10_000, *, name: str = "pyorchestrate"
    ) -> None:
        self._size = workers
        self._queue_size = queue_size
        self._name = name
        self._queues: list[queue.SimpleQueue[_Job]] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False
        self.dropped = 0
        self.completed = 0
        self.failed = 0

    def _ensure_started(self) -> None:
        with self._lock:
            if self._threads or self._closed:
                return
            for index in range(self._size):
                q: queue.SimpleQueue[_Job] = queue.SimpleQueue()
                thread = threading.Thread(
                    target=self._work,
                    args=(q,),
                    name=f"{self._name}-callbacks-{index}",
                    daemon=True,
                )
                self._queues.append(q)
                self._threads.append(thread)
                thread.start()

    def submit(self, key: str | None, fn: Callable[[Any], object], arg: Any) -> bool:
        """Queue ``fn(arg)`` on the worker for ``key``; never blocks.

        Returns ``False`` (and logs at ERROR) if the executor is closed or full.
        """
        if not self._threads:
            self._ensure_started()
        if self._closed:
            return False
        shard = zlib.crc32((key or "").encode()) % self._size
        q = self._queues[shard]
        if q.qsize() >= self._queue_size:
            self.dropped += 1
            logger.error(
                "callback queue %d is full (%d pending): dropped a call to %r",
                shard,
                self._queue_size,
                getattr(fn, "__qualname__", fn),
            )
            return False
        q.put((fn, arg))
        return True

    def _work(self, q: queue.SimpleQueue[_Job]) -> None:
        while True:
            job = q.get()
            if job is None:
                return
            fn, arg = job
            try:
                fn(arg)
            except Exception:
                self.failed += 1
                logger.exception("callback %r raised", getattr(fn, "__qualname__", fn))
            else:
                self.completed += 1

    def pending(self) -> int:
        """How many calls are queued and not yet started."""
        return sum(q.qsize() for q in self._queues)

    def shutdown(self, timeout: float = 5.0) -> list[str]:
        """Run what is queued, then stop the workers; return threads still running.

        Idempotent. Calls still queued at the deadline are abandoned and logged.
        """
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for q in self._queues:
            q.put(None)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0))
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            logger.error("callback threads still busy after %.1f s: %s", timeout, alive)
        return alive


@dataclass(frozen=True, slots=True)
class _Listener:
    callback: EventCallback
    takes_all: bool
    names: frozenset[str]

    @classmethod
    def build(cls, callback: EventCallback) -> _Listener:
        if not callable(callback):
            raise TypeError(f"callback must be callable, not {type(callback).__name__}")
        try:
            params = inspect.signature(callback).parameters.values()
        except (TypeError, ValueError):
            return cls(callback, True, frozenset())
        takes_all = any(p.kind is p.VAR_KEYWORD for p in params)
        names = set()
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.name in CALLBACK_KEYWORDS and p.kind is not p.POSITIONAL_ONLY:
                names.add(p.name)
            elif p.default is p.empty:
                known = ", ".join(CALLBACK_KEYWORDS)
                raise TypeError(
                    f"callback {getattr(callback, '__qualname__', callback)!r} requires "
                    f"{p.name!r}, which events do not provide (they provide: {known})"
                )
        return cls(callback, takes_all, frozenset(names))

    def __call__(self, occurrence: _Occurrence) -> object:
        kwargs = occurrence.kwargs()
        if self.takes_all:
            return self.callback(**kwargs)
        return self.callback(**{k: kwargs[k] for k in self.names})


class _Occurrence:
    """One emitted event, shared by its listeners; keywords are built on first use."""

    __slots__ = ("_kwargs", "agent_name", "context", "event", "orchestrator", "record")

    def __init__(
        self,
        event: object,
        agent_name: str | None,
        context: Mapping[str, object],
        record: EventRecord,
        orchestrator: str,
    ) -> None:
        self.event = event
        self.agent_name = agent_name
        self.context = context
        self.record = record
        self.orchestrator = orchestrator
        self._kwargs: dict[str, Any] | None = None

    def kwargs(self) -> dict[str, Any]:
        """The callback keywords (see ``core.events``); a fresh copy."""
        if self._kwargs is None:
            kwargs = _EMPTY_KWARGS.copy()
            kwargs.update(self.context)
            date, clock = _stamp(self.record.t_wall)
            kwargs["event"] = self.event
            kwargs["agent_name"] = self.agent_name
            kwargs["event_date"] = date
            kwargs["event_time"] = clock
            kwargs["orchestrator"] = self.orchestrator
            kwargs["seq"] = self.record.seq
            kwargs["record"] = self.record
            self._kwargs = kwargs
        return self._kwargs.copy()


_EMPTY_KWARGS: dict[str, Any] = dict.fromkeys(CALLBACK_KEYWORDS)

_stamp_cache: tuple[int, str, str] = (-1, "", "")


def _stamp(t_wall: float) -> tuple[str, str]:
    """``(ISO date, ISO time)`` in local time, reusing the work for the same second."""
    global _stamp_cache
    second = int(t_wall)
    cached = _stamp_cache
    if cached[0] != second:
        when = _dt.datetime.fromtimestamp(second)
        cached = (second, when.date().isoformat(), when.time().isoformat())
        _stamp_cache = cached
    micros = min(round((t_wall - second) * 1_000_000), 999_999)
    return cached[1], f"{cached[2]}.{micros:06d}"


class EventBus:
    """Records events in the history and hands them to callbacks, keyed by enum member.

    Listeners are keyed by the enum member itself, so a listener on
    ``AgentEvent.ERROR`` never fires for ``OrchestratorEvent.AGENT_ERROR``.
    """

    def __init__(
        self,
        history: EventHistory,
        executor: CallbackExecutor,
        *,
        orchestrator: str = "orchestrator",
    ) -> None:
        self.history = history
        self._executor = executor
        self._orchestrator = orchestrator
        self._listeners: dict[object, tuple[_Listener, ...]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def register(self, event: object, callback: EventCallback) -> None:
        """Call ``callback`` each time ``event`` is emitted.

        Raises:
            TypeError: ``event`` is not an event enum member, or ``callback`` needs an
                argument events do not provide.
        """
        if not isinstance(event, OrchestratorEvent | AgentEvent):
            raise TypeError(f"event must be an OrchestratorEvent member, not {event!r}")
        listener = _Listener.build(callback)
        with self._lock:
            self._listeners[event] = (*self._listeners.get(event, ()), listener)

    def unregister(self, event: object, callback: EventCallback) -> bool:
        """Remove ``callback`` from ``event``; return whether it was registered."""
        with self._lock:
            current = self._listeners.get(event, ())
            # == so a bound method (a new object on each access) still matches.
            kept = tuple(lst for lst in current if lst.callback != callback)
            self._listeners[event] = kept
            return len(kept) != len(current)

    @property
    def executor(self) -> CallbackExecutor:
        """The worker threads that run callbacks (and other work kept off the router)."""
        return self._executor

    def has_listeners(self, event: object) -> bool:
        """Whether any callback is registered for ``event``."""
        return bool(self._listeners.get(event))

    def emit(
        self,
        event: OrchestratorEvent,
        *,
        agent_name: str | None = None,
        severity: Severity | None = None,
        context: Mapping[str, object] | None = None,
    ) -> EventRecord | None:
        """Record ``event`` and queue its callbacks; return the record.

        ``severity`` overrides :func:`~pyorchestrate.core.events.severity_of`, which
        decides it otherwise.

        After :meth:`close`, the event is dropped with a warning and ``None`` returned.
        """
        if self._closed:
            logger.warning(
                "event %s for %r after shutdown: dropped", event.value, agent_name
            )
            return None
        ctx = dict(context or {})
        if severity is None:
            severity = severity_of(event, ctx)
        record = self.history.record(
            event.value, agent=agent_name, severity=severity, data=ctx
        )
        listeners = self._listeners.get(event)
        if listeners:
            occurrence = _Occurrence(event, agent_name, ctx, record, self._orchestrator)
            for listener in listeners:
                self._executor.submit(agent_name, listener, occurrence)
        return record

    def close(self, timeout: float = 5.0) -> list[str]:
        """Stop accepting events, finish queued callbacks; return busy threads."""
        self._closed = True
        return self._executor.shutdown(timeout)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed
