"""Messages between agents and their orchestrator, and the channels that carry them.

Each started agent gets its own :class:`AgentLink`: the write end of a one-way pipe
whose read end the orchestrator's router watches. One pipe per agent means an agent
killed mid-write cannot wedge a lock that other agents need, and a closed pipe tells
the router that a thread agent has ended.

A :class:`MessageChannel` is a cross-process queue users can hand to an agent
(``register_agent(..., msg_channel=ch)``): it receives a copy of every message the
agent sends, lifecycle included, and is read with ``get()``.
"""

from __future__ import annotations

import enum
import multiprocessing
import queue
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

__all__ = [
    "AgentLink",
    "MessageChannel",
    "MessageType",
    "ServiceMessage",
    "mp_context",
]

_SPAWN = multiprocessing.get_context("spawn")


def mp_context() -> multiprocessing.context.SpawnContext:
    """Return the context that builds cross-process primitives (events, queues, pipes).

    Primitives built from the ``spawn`` context can be handed to children started with
    ``spawn`` or ``forkserver`` alike (a ``fork`` context unlinks its semaphores at once).
    """
    return _SPAWN


class MessageType(enum.StrEnum):
    """The kind of a :class:`ServiceMessage` (its ``event_name`` on the wire)."""

    STATUS = "STATUS"
    COMMAND = "COMMAND"
    DATA = "DATA"


@dataclass(frozen=True, slots=True)
class ServiceMessage:
    """One message: who sent it, its kind, a payload and when it was made."""

    sender: str
    type: MessageType
    payload: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)


class AgentLink:
    """The write end of an agent's pipe to its orchestrator (one per generation)."""

    def __init__(self, writer: Connection) -> None:
        self._writer: Connection | None = writer
        self._lock = threading.Lock()

    @classmethod
    def open_pair(cls) -> tuple[Connection, AgentLink]:
        """Return ``(reader, link)``: the router keeps the reader, the agent the link."""
        reader, writer = _SPAWN.Pipe(duplex=False)
        return reader, cls(writer)

    def send(self, message: ServiceMessage) -> bool:
        """Send ``message``; return ``False`` if the link is closed or broken."""
        with self._lock:
            if self._writer is None:
                return False
            try:
                self._writer.send(message)
            except (OSError, ValueError):
                return False
            return True

    def close(self) -> None:
        """Close the write end; the router then sees end-of-file. Idempotent."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._writer is None

    def __getstate__(self) -> dict[str, Any]:
        return {"writer": self._writer}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._writer = state["writer"]
        self._lock = threading.Lock()


class MessageChannel:
    """A queue that works between threads and processes alike.

    Pass one as ``msg_channel`` to an agent to receive a copy of everything it sends.
    """

    def __init__(self, maxsize: int = 0) -> None:
        self._queue: multiprocessing.queues.Queue[ServiceMessage] = _SPAWN.Queue(
            maxsize
        )

    def put(self, message: ServiceMessage) -> None:
        """Put a message without blocking the sender for long."""
        self._queue.put(message)

    def get(self, timeout: float | None = None) -> ServiceMessage:
        """Return the next message; raise ``queue.Empty`` after ``timeout`` seconds."""
        return self._queue.get(timeout=timeout)

    def get_nowait(self) -> ServiceMessage:
        """Return the next message or raise ``queue.Empty``."""
        return self._queue.get_nowait()

    def drain(self, timeout: float = 0.0) -> list[ServiceMessage]:
        """Return every message available now (waiting up to ``timeout`` for the first)."""
        out: list[ServiceMessage] = []
        try:
            out.append(
                self._queue.get(timeout=timeout) if timeout else self.get_nowait()
            )
            while True:
                out.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return out

    def close(self) -> None:
        """Close the channel and flush its feeder thread."""
        self._queue.close()
        self._queue.join_thread()

    def flush(self, timeout: float = 1.0) -> bool:
        """Close this end and wait up to ``timeout`` for queued messages to be written.

        For a process about to end abruptly; returns whether everything was written.
        """
        self._queue.close()
        done = threading.Event()

        def join() -> None:
            self._queue.join_thread()
            done.set()

        threading.Thread(
            target=join, name="pyorchestrate-channel-flush", daemon=True
        ).start()
        return done.wait(timeout)
