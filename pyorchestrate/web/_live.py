"""``/api/stream``: server-sent events for the live pages.

Each connection is one :class:`~pyorchestrate.web._hub.PageStream`: a bounded queue
the hub fills; a page that falls ``sse_queue_size`` messages behind is dropped, and a
send that blocks for ``SEND_TIMEOUT`` seconds drops it too (the browser reconnects by
itself and starts from a fresh table). Messages: ``status`` (connected or not),
``agents`` (the ``ps`` data; with ``agent=NAME`` only that agent's row; none with
``table=false``), ``event`` (one history record; none with ``events=false``) and,
with ``alerts=true``, ``alerts`` (the Alerts panel's data when it changed), each
JSON.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from pydantic import Field
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response

from ._api import EventQuery, QueryError, error_response, parse_query
from ._hub import EventHub

__all__ = ["PING_SECONDS", "SEND_TIMEOUT", "StreamQuery", "stream_endpoint"]

SEND_TIMEOUT = 5.0
"""Seconds one send may block before the client is dropped."""
PING_SECONDS = 15
"""A comment line this often keeps proxies from closing an idle stream."""


class StreamQuery(EventQuery):
    """``/api/stream``'s filters (events only; status and agents always come)."""

    agent: str | None = Field(default=None, min_length=1)
    table: bool = True
    """``false``: no ``agents`` messages (a page that shows no agent table)."""
    events: bool = True
    """``false``: no ``event`` messages (a page that shows no events)."""
    alerts: bool = False
    """``true``: ``alerts`` messages, the Alerts panel's data when it changes."""


def stream_endpoint(hub: EventHub) -> Callable[[Request], Awaitable[Response]]:
    """The ``/api/stream`` endpoint bound to ``hub``."""

    async def stream(request: Request) -> Response:
        try:
            query = parse_query(StreamQuery, request)
        except QueryError as exc:
            return error_response(exc, hub.link)
        page = hub.open_page(
            agent=query.agent,
            event_name=query.event_type,
            table=query.table,
            alerts=query.alerts,
            events=query.events,
        )

        async def messages() -> AsyncIterator[ServerSentEvent]:
            try:
                while True:
                    message = await page.queue.get()
                    if message is None:
                        return
                    kind, text = message
                    yield ServerSentEvent(text, event=kind)
            finally:
                hub.close_page(page)

        return EventSourceResponse(
            messages(),
            ping=PING_SECONDS,
            send_timeout=SEND_TIMEOUT,
            headers={"Cache-Control": "no-store"},
        )

    return stream
