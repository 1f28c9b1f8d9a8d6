"""``OrchestratorLink``: the dashboard's way to the orchestrator's command socket.

Commands go through the same :class:`~pyorchestrate.core.control.client.ControlClient`
the CLI uses, run on the link's own worker threads (``pyorchestrate-web-link_N``; the
client blocks) from a small pool of open connections, so a request costs one round
trip and no connect. At most ``size`` commands are in flight at once; more wait.
The threads are plain ``asyncio`` executor threads: a caller that is cancelled stops
waiting at once, and the command finishes on its thread (bounded by ``timeout``).

The event stream (``subscribe``) is read by :meth:`subscribe`, an async iterator on the
server's own loop: cancelling the task that reads it closes the connection at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..core.control.client import ControlClient
from ..core.control.protocol import build_request, encode, parse_reply
from ..core.errors import ControlUnavailable, ProtocolError

__all__ = ["OrchestratorLink"]

_STREAM_LIMIT = 16 * 1024 * 1024
"""Longest event line read from the subscription (the server caps what it sends)."""


class OrchestratorLink:
    """Pooled connections to one orchestrator.

    Args:
        socket_path: the command socket.
        timeout: seconds to wait for connecting and for each reply.
        size: connections kept open (and commands in flight) at most.
    """

    def __init__(self, socket_path: str, *, timeout: float = 5.0, size: int = 4):
        self.socket_path = socket_path
        self.timeout = timeout
        self.size = size
        self._idle: list[ControlClient] = []
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    def call(self, command: str, *args: Any) -> dict[str, Any]:
        """Run one command and return its ``data`` (blocking).

        Raises:
            ControlUnavailable: nothing answers on the socket.
            ControlTimeout: no reply within ``timeout``.
            ControlError: the reply's error (``AgentNotFound`` for 404, ...).
        """
        with self._lock:
            client = self._idle.pop() if self._idle else None
        if client is None:
            client = ControlClient(self.socket_path, timeout=self.timeout, sender="web")
        try:
            return client.call(command, *args)
        finally:
            with self._lock:
                if self._closed or len(self._idle) >= self.size:
                    client.close()
                else:
                    self._idle.append(client)

    def call_as(self, actor: str, command: str, *args: Any) -> dict[str, Any]:
        """:meth:`call` for an action someone asked for: on a connection of its own
        whose requests name ``actor`` (the orchestrator records the action with
        source ``web`` and this actor). Actions are rare: no pooling.

        Raises:
            ControlError: as :meth:`call`.
        """
        with ControlClient(
            self.socket_path,
            timeout=self.timeout,
            sender="web",
            meta={"actor": actor},
        ) as client:
            return client.call(command, *args)

    async def acall(self, command: str, *args: Any) -> dict[str, Any]:
        """:meth:`call` on one of the link's threads, from the server's loop."""
        return await self._on_thread(functools.partial(self.call, command, *args))

    async def acall_as(self, actor: str, command: str, *args: Any) -> dict[str, Any]:
        """:meth:`call_as` on one of the link's threads, from the server's loop."""
        return await self._on_thread(
            functools.partial(self.call_as, actor, command, *args)
        )

    async def _on_thread(self, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.size, thread_name_prefix="pyorchestrate-web-link"
                )
            executor = self._executor
        return await asyncio.get_running_loop().run_in_executor(executor, work)

    async def subscribe(
        self,
        after_seq: int | None = None,
        *,
        on_subscribed: Callable[[], None] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield every new event (``EventRecord.to_dict()``); after ``after_seq``,
        the stored ones first. Ends when the orchestrator closes the connection.
        ``on_subscribed`` is called once the orchestrator has accepted.

        Raises:
            ControlUnavailable: cannot connect.
            ControlError: the orchestrator refused the subscription.
        """
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for may swallow a
            # cancellation that comes as the connection is made.
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_unix_connection(
                    self.socket_path, limit=_STREAM_LIMIT
                )
        except (OSError, TimeoutError) as exc:
            raise ControlUnavailable(
                f"Cannot connect to an orchestrator at {self.socket_path} ({exc})"
            ) from None
        try:
            filters = {} if after_seq is None else {"after_seq": after_seq}
            request = build_request("subscribe", [filters], sender="web")
            writer.write(encode(request))
            await writer.drain()
            while True:
                try:
                    line = await reader.readline()
                except (OSError, ValueError):
                    return  # reset, or a line over the limit: the caller reconnects
                if not line:
                    return
                try:
                    reply = parse_reply(line)
                except ProtocolError:
                    return
                payload = reply.get("payload") or {}
                if reply.get("event_name") == "EVENT":
                    event = payload.get("event")
                    if isinstance(event, dict):
                        yield event
                elif payload.get("status") != "success":
                    raise ControlUnavailable(
                        f"the orchestrator at {self.socket_path} refused to stream "
                        f"events: {payload.get('error')}"
                    )
                elif on_subscribed is not None:
                    on_subscribed()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def open(self) -> None:
        """Pool connections again after :meth:`close` (a server that starts again)."""
        with self._lock:
            self._closed = False

    def close(self) -> None:
        """Join the link's threads (a command in flight ends within ``timeout``) and
        close every pooled connection; later ones are closed after use until
        :meth:`open`. Idempotent; blocks, so call it off the loop."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            idle, self._idle = self._idle, []
        for client in idle:
            client.close()
