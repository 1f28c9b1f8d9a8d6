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

import collections
import contextlib
import enum
import errno
import logging
import multiprocessing
import os
import pickle
import queue
import socket
import threading
import time
import weakref
from dataclasses import dataclass, field
from multiprocessing import context, util
from multiprocessing.connection import Connection
from typing import Any

from .fdwait import readable, writable

__all__ = [
    "AgentLink",
    "MessageChannel",
    "MessageType",
    "ServiceMessage",
    "mp_context",
]

logger = logging.getLogger("pyorchestrate.messaging")

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
    LOG = "LOG"
    """A ``logging`` record of a process agent, for the orchestrator to log (see
    :mod:`.agentlog`); not copied to the agent's ``msg_channel``."""


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

    It is one ``SOCK_SEQPACKET`` socket pair: each message is one packet, written and
    read whole, so any number of processes and threads put and get at once with no
    lock between them and no named semaphore (a ``multiprocessing.Queue`` holds
    three, whose finalizers race multiprocessing's resource tracker on Python 3.12+).
    :meth:`put` never waits for a reader: when the socket is full, messages wait in
    order in a buffer of the putting process, which a feeder thread empties (and
    which is flushed, for up to :data:`EXIT_FLUSH` seconds, when the process ends).
    One message can be as large as the socket's send buffer allows (hundreds of
    kilobytes; ``net.core.wmem_max``). Like multiprocessing's queues, a channel
    reaches a child process only as the child starts.

    Args:
        maxsize: the most messages the buffer of one process holds before
            :meth:`put` waits for room (0: no limit).
    """

    def __init__(self, maxsize: int = 0) -> None:
        reader, writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for end in (reader, writer):
            with contextlib.suppress(OSError):  # as large as the system allows
                end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _WANTED_BUFFER)
        self._reader = reader
        self._writer = writer
        self._maxsize = maxsize
        self._start_local()

    def _start_local(self) -> None:
        """State of this process alone: its buffer, its feeder, whether it closed."""
        # A channel nobody closed closes its copy when it is collected, quietly.
        weakref.finalize(self, _close_sockets, self._reader, self._writer)
        self._packet = self._writer.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pending: collections.deque[bytes] = collections.deque()
        self._feeder: threading.Thread | None = None
        self._closed = False

    # ------------------------------------------------------------------ put
    def put(self, message: ServiceMessage) -> None:
        """Send ``message``; never waits for a reader (see the class).

        Raises:
            ValueError: the channel is closed in this process, or the message is
                larger than one packet can be.
        """
        data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        with self._lock:
            if self._closed:
                raise ValueError("MessageChannel is closed")
            if not self._pending and self._send(data, wait=False):
                return
            while self._maxsize and len(self._pending) >= self._maxsize:
                self._changed.wait()
                if self._closed:
                    raise ValueError("MessageChannel is closed")
            self._pending.append(data)
            if self._feeder is None:
                self._feeder = threading.Thread(
                    target=self._feed, name="pyorchestrate-channel-feeder", daemon=True
                )
                self._feeder.start()
                _flush_at_exit(self)

    def _send(self, data: bytes, *, wait: bool) -> bool:
        """Send one packet; ``False`` if the socket is full (when not waiting)."""
        try:
            self._writer.send(data, 0 if wait else socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno in (errno.EMSGSIZE, errno.ENOBUFS):
                raise ValueError(
                    f"a message of {len(data)} bytes does not fit in one "
                    f"MessageChannel packet (at most about {self._packet} bytes here)"
                ) from None
            raise
        return True

    def _feed(self) -> None:
        """The feeder thread: send the buffer in order, as the socket has room."""
        while True:
            with self._lock:
                if not self._pending:
                    self._feeder = None
                    self._changed.notify_all()
                    return
                data = self._pending[0]
            try:
                sent = writable(self._writer, 0.1) and self._send(data, wait=False)
            except (OSError, ValueError):  # closed under us, or a broken socket
                logger.exception("MessageChannel: a buffered message was lost")
                sent = True  # drop it rather than block the ones behind it
            if sent:
                with self._lock:
                    if self._pending:
                        self._pending.popleft()
                    self._changed.notify_all()

    def flush(self, timeout: float = 1.0) -> bool:
        """Close this process's end for puts and wait up to ``timeout`` seconds for
        its buffered messages to be sent; return whether all were.

        For a process about to end abruptly.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closed = True
            self._changed.notify_all()
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    # ------------------------------------------------------------------ get
    def get(self, timeout: float | None = None) -> ServiceMessage:
        """Return the next message; raise ``queue.Empty`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                data = self._reader.recv(self._packet, socket.MSG_DONTWAIT)
            except BlockingIOError:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise queue.Empty from None
                readable(self._reader, left)
                continue
            if not data:
                raise EOFError("every copy of the MessageChannel is closed")
            message: ServiceMessage = pickle.loads(data)
            return message

    def get_nowait(self) -> ServiceMessage:
        """Return the next message or raise ``queue.Empty``."""
        return self.get(timeout=0)

    def drain(self, timeout: float = 0.0) -> list[ServiceMessage]:
        """Return every message available now (waiting up to ``timeout`` for the first)."""
        out: list[ServiceMessage] = []
        try:
            out.append(self.get(timeout=timeout))
            while True:
                out.append(self.get_nowait())
        except queue.Empty:
            pass
        return out

    def close(self, timeout: float = 10.0) -> None:
        """Flush this process's buffer (up to ``timeout`` seconds), then close this
        process's copy of the channel: ``put`` and ``get`` raise after it."""
        if not self.flush(timeout):
            with self._lock:
                lost = len(self._pending)
                self._pending.clear()
            logger.warning(
                "MessageChannel closed with %d message(s) nobody read in %.1f s",
                lost,
                timeout,
            )
        feeder = self._feeder
        if feeder is not None:
            feeder.join(1.0)
        self._reader.close()
        self._writer.close()

    # ---------------------------------------------------------- processes
    def __getstate__(self) -> dict[str, Any]:
        context.assert_spawning(self)  # the sockets go to the child as it starts
        return {
            "reader": self._reader,
            "writer": self._writer,
            "maxsize": self._maxsize,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._reader = state["reader"]
        self._writer = state["writer"]
        self._maxsize = state["maxsize"]
        self._start_local()


_WANTED_BUFFER = 4 << 20
"""Send buffer asked for each end (the kernel caps it at ``net.core.wmem_max``)."""

EXIT_FLUSH = 5.0
"""Seconds a process that ends waits for its channels' buffered messages to be sent."""

_to_flush: weakref.WeakSet[MessageChannel] = weakref.WeakSet()
_to_flush_lock = threading.Lock()
_exit_hook: list[int] = []  # the pid that registered it (a forked child needs its own)


def _flush_at_exit(channel: MessageChannel) -> None:
    """Have this process flush ``channel``'s buffer when it ends (agents end through
    multiprocessing, whose exit function runs these finalizers; others at exit)."""
    with _to_flush_lock:
        _to_flush.add(channel)
        if _exit_hook != [os.getpid()]:
            _exit_hook[:] = [os.getpid()]
            util.Finalize(None, _flush_all, exitpriority=10)


def _flush_all() -> None:
    deadline = time.monotonic() + EXIT_FLUSH
    for channel in list(_to_flush):
        channel.flush(max(0.0, deadline - time.monotonic()))


def _close_sockets(*socks: socket.socket) -> None:
    for sock in socks:
        sock.close()
