"""The router: one thread that watches every agent and turns what it sees into events.

It waits, with no polling interval, on every agent's link (messages, and end of file
when a thread agent ends), every process agent's sentinel (the process ended), and a
wake-up pipe (something changed, or a signal arrived). The handles stay registered in
one selector (epoll on Linux) and only what changed is added or removed, so a wake-up
costs the same with 5 agents or 500 (``multiprocessing.connection.wait`` registers
every handle again on each call: 0.3 ms for 200 handles, paid on every message). What it reads goes to the
lifecycle manager, which records events and queues callbacks; the router itself never
runs user code.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection

from .lifecycle import LifecycleManager
from .registry import AgentEntry

__all__ = ["MessageRouter"]

logger = logging.getLogger("pyorchestrate.router")

_MAX_READS_PER_WAKE = 256

_Watched = dict[Connection | int, tuple[AgentEntry, str]]
_Key = tuple[int, str, int]
"""What one registration is for: (id of the entry, reader/sentinel, generation)."""


class MessageRouter:
    """Owns the ``pyorchestrate-router`` thread.

    Args:
        lifecycle: receives messages and exits.
        check_interval: longest wait between deadline checks (seconds).
        name: the orchestrator's name, for the thread's name.
        on_tick: called after each wake-up (signals, run-mode checks), on this thread.
    """

    def __init__(
        self,
        lifecycle: LifecycleManager,
        *,
        check_interval: float,
        name: str,
        on_tick: Callable[[], None] = lambda: None,
    ) -> None:
        self._lifecycle = lifecycle
        self._check_interval = check_interval
        self._on_tick = on_tick
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name=f"pyorchestrate-router-{name}", daemon=True
        )
        self._started = False
        self._closed = False
        self.messages = 0

    @property
    def wake_fd(self) -> int:
        """Write a byte here to wake the router (safe from a signal handler)."""
        return self._wake_w

    def wake(self) -> None:
        """Make the router re-read what it watches."""
        if self._closed:
            return
        # A full pipe already guarantees a wake-up.
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"w")

    def start(self) -> None:
        """Start the thread (once)."""
        if not self._started:
            self._started = True
            self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop and join the thread; return ``True`` if it ended. Idempotent."""
        self._stopping = True
        self.wake()
        if self._started:
            self._thread.join(timeout)
        ended = not self._thread.is_alive()
        if ended and not self._closed:
            self._closed = True
            os.close(self._wake_r)
            os.close(self._wake_w)
        return ended

    def _run(self) -> None:
        lifecycle = self._lifecycle
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ, self._wake_r)
        registered: dict[_Key, int] = {}
        version = -1
        watched: _Watched = {}
        next_deadline: float | None = None
        try:
            while not self._stopping:
                if version != lifecycle.watch_version:
                    version = lifecycle.watch_version
                    watched = lifecycle.watched()
                    _sync(selector, registered, watched)
                timeout = self._check_interval
                if next_deadline is not None:
                    timeout = max(0.0, min(timeout, next_deadline - lifecycle.clock()))
                try:
                    ready = [key.data for key, _ in selector.select(timeout)]
                except OSError:
                    # A handle closed under us: register everything again.
                    _sync(selector, registered, {})
                    version = -1
                    continue
                try:
                    self._handle(ready, watched)
                    next_deadline = lifecycle.check_deadlines()
                    self._on_tick()
                except Exception:
                    logger.exception("router: unexpected error (continuing)")
                    version = -1
        finally:
            selector.close()

    def _handle(self, ready: Sequence[object], watched: _Watched) -> None:
        if self._wake_r in ready:
            with contextlib.suppress(BlockingIOError, OSError):
                while os.read(self._wake_r, 4096):
                    pass
        readers: list[tuple[AgentEntry, Connection]] = []
        exited: list[AgentEntry] = []
        for obj in ready:
            if not isinstance(obj, Connection | int):
                continue
            found = watched.get(obj)
            if found is None:
                continue
            entry, kind = found
            if kind == "reader" and isinstance(obj, Connection):
                readers.append((entry, obj))
            elif kind == "sentinel":
                exited.append(entry)
        if not readers and not exited:
            return
        with self._lifecycle.lock:
            # Messages first: a process's last words are in its pipe before it exits.
            for entry, reader in readers:
                self._read(entry, reader)
            for entry in exited:
                self._lifecycle.report_exit(entry)
                if entry.reader is not None:
                    self._read(entry, entry.reader, drain=True)
                self._lifecycle.on_exit(entry)

    def _read(
        self, entry: AgentEntry, reader: Connection, *, drain: bool = False
    ) -> None:
        lifecycle = self._lifecycle
        reads = 0
        while reader is entry.reader and (drain or reads < _MAX_READS_PER_WAKE):
            try:
                if not reader.poll(0):
                    return
                message = reader.recv()
            except (EOFError, OSError):
                entry.reader_eof = True
                lifecycle.watch_version += 1
                if entry.flavour == "thread":
                    lifecycle.on_exit(entry)
                return
            except Exception:
                logger.exception(
                    "agent %r sent a message that cannot be read", entry.name
                )
                continue
            reads += 1
            self.messages += 1
            try:
                lifecycle.on_message(entry, message)
            except Exception:
                logger.exception("agent %r: message handling failed", entry.name)


def _sync(
    selector: selectors.BaseSelector, registered: dict[_Key, int], watched: _Watched
) -> None:
    """Make ``selector`` watch exactly ``watched``, touching only what changed.

    Registrations are keyed by entry, kind and generation, never by the handle's
    number alone: a closed pipe's number can come back at once as the next
    generation's pipe, and must then be registered anew.
    """
    wanted: dict[_Key, Connection | int] = {
        (id(entry), kind, entry.generation_id): handle
        for handle, (entry, kind) in watched.items()
    }
    for key in [k for k in registered if k not in wanted]:
        fd = registered.pop(key)
        with contextlib.suppress(KeyError, ValueError, OSError):
            selector.unregister(fd)
    for key, handle in wanted.items():
        if key in registered:
            continue
        try:
            fd = handle.fileno() if isinstance(handle, Connection) else handle
            with contextlib.suppress(KeyError):  # a stale number: replace it
                selector.unregister(fd)
            selector.register(fd, selectors.EVENT_READ, handle)
        except (OSError, ValueError):  # closed meanwhile: its end is seen elsewhere
            continue
        registered[key] = fd
