"""``EventHub``: one subscription to the orchestrator, fanned out to every live page.

The hub runs two tasks on the server's loop:

* **follow**: reads the orchestrator's ``subscribe`` stream; each event is counted
  (``on_event``, the metrics' counter), sent to every page whose filter it passes,
  and marks the agent table stale. When the stream ends or cannot be opened, the hub
  is *disconnected*: pages are told, and it tries again every
  ``reconnect_interval`` seconds, on its own.
* **refresh**: runs ``ps`` when the table is stale (at once after an event) or every
  ``refresh_interval`` seconds, and sends the table to every page. One ``ps`` serves
  every page, however many are open; none runs while no open page shows a table
  (the events page, or no page at all).

* **alerts** (with an Alerts panel): reads the panel every ``alerts_interval``
  seconds while an Alerts page is open, and sends its data when it changed.

Each page gets a bounded queue (``queue_size`` messages). A page that falls that far
behind is dropped (its stream ends; the browser's ``EventSource`` reconnects and
starts from a fresh table), so a slow client never makes the server buffer without
limit, and never slows the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import ControlError
from ._link import OrchestratorLink
from ._panels import AlertsPanel

__all__ = ["EventHub", "Message", "PageStream"]

logger = logging.getLogger(__name__)

Message = tuple[str, str]
"""``(kind, JSON text)``: ``event`` (a record), ``agents`` (the ``ps`` data; only the
page's agent for an agent's page), ``status`` (``{"connected": bool, "error":
str | None}``) or ``alerts`` (the Alerts panel's data, or ``{"error": ...}``). Each
is encoded once, however many pages it goes to."""

_QUIET_EVENTS = frozenset({"agent_heartbeat"})
"""Counted, but not sent to pages (one per agent per interval)."""


@dataclass(eq=False)
class PageStream:
    """One live page: its filter and its bounded queue (``None`` ends it)."""

    queue: asyncio.Queue[Message | None]
    agent: str | None = None
    event_name: str | None = None
    table: bool = True
    """Whether the page shows agents (the events page does not)."""
    alerts: bool = False
    """Whether the page shows the Alerts panel's data."""
    events: bool = True
    """Whether the page shows events (the Alerts page does not)."""
    dropped: bool = field(default=False)

    def wants(self, event: dict[str, Any]) -> bool:
        if not self.events or event.get("event_name") in _QUIET_EVENTS:
            return False
        if self.agent is not None and event.get("agent") != self.agent:
            return False
        return self.event_name is None or event.get("event_name") == self.event_name


class EventHub:
    """Follows one orchestrator's events and feeds every live page.

    Args:
        link: the way to the orchestrator.
        queue_size: messages buffered per page before it is dropped.
        refresh_interval: seconds between agent-table refreshes.
        reconnect_interval: seconds between attempts to reach the orchestrator.
        on_event: called with each event as it arrives (on the loop; must be quick).
        alerts: the Alerts panel whose data the Alerts pages follow.
        alerts_interval: seconds between two reads of it (while an Alerts page is
            open).
    """

    def __init__(
        self,
        link: OrchestratorLink,
        *,
        queue_size: int = 256,
        refresh_interval: float = 2.0,
        reconnect_interval: float = 1.0,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        alerts: AlertsPanel | None = None,
        alerts_interval: float = 1.0,
    ) -> None:
        self.link = link
        self.queue_size = queue_size
        self.refresh_interval = refresh_interval
        self.reconnect_interval = reconnect_interval
        self.on_event = on_event
        self.connected = False
        self.error: str | None = None
        self.agents: dict[str, Any] | None = None
        self.last_seq: int | None = None
        self.dropped_total = 0
        self.alerts = alerts
        self.alerts_interval = alerts_interval
        self._alerts_text: str | None = None  # the last alerts data sent, encoded
        self._pages: set[PageStream] = set()
        self._stale: asyncio.Event | None = None  # made by run(), on its loop
        self._alerts_stale: asyncio.Event | None = None

    # ------------------------------------------------------------ pages
    @property
    def page_count(self) -> int:
        """Live pages now."""
        return len(self._pages)

    def open_page(
        self,
        *,
        agent: str | None = None,
        event_name: str | None = None,
        table: bool = True,
        alerts: bool = False,
        events: bool = True,
    ) -> PageStream:
        """A new page's stream, primed with the connection state and the table
        (and the alerts data)."""
        page = PageStream(
            asyncio.Queue(self.queue_size),
            agent,
            event_name,
            table,
            alerts=alerts and self.alerts is not None,
            events=events,
        )
        page.queue.put_nowait(("status", _encode(self._status())))
        self._mark_stale()  # a fresh table for it at once
        if self.agents is not None and table:
            page.queue.put_nowait(("agents", _encode(_table_for(self.agents, agent))))
        if page.alerts:
            if self._alerts_text is not None:
                page.queue.put_nowait(("alerts", self._alerts_text))
            if self._alerts_stale is not None:
                self._alerts_stale.set()
        self._pages.add(page)
        return page

    def close_page(self, page: PageStream) -> None:
        self._pages.discard(page)

    def close(self) -> None:
        """End every page's stream (the server is stopping). Idempotent."""
        for page in list(self._pages):
            self._end(page)

    def _end(self, page: PageStream) -> None:
        self._pages.discard(page)
        while not page.queue.empty():
            page.queue.get_nowait()
        page.queue.put_nowait(None)

    def _put(self, page: PageStream, message: Message) -> None:
        try:
            page.queue.put_nowait(message)
        except asyncio.QueueFull:
            page.dropped = True
            self.dropped_total += 1
            logger.warning(
                "a live page fell %d messages behind: dropped", self.queue_size
            )
            self._end(page)

    def _send_status(self) -> None:
        message = ("status", _encode(self._status()))
        for page in list(self._pages):
            self._put(page, message)

    def _send_event(self, event: dict[str, Any]) -> None:
        message: Message | None = None
        for page in list(self._pages):
            if page.wants(event):
                message = message or ("event", _encode(event))
                self._put(page, message)

    def _send_table(self, agents: dict[str, Any]) -> None:
        encoded: dict[str | None, Message] = {}
        for page in list(self._pages):
            if not page.table:
                continue
            if page.agent not in encoded:
                table = _table_for(agents, page.agent)
                encoded[page.agent] = ("agents", _encode(table))
            self._put(page, encoded[page.agent])

    def _status(self) -> dict[str, Any]:
        return {"connected": self.connected, "error": self.error}

    def _set_connected(self, connected: bool, error: str | None = None) -> None:
        changed = connected != self.connected or error != self.error
        self.connected, self.error = connected, error
        if changed:
            if connected:
                logger.info(
                    "connected to the orchestrator at %s", self.link.socket_path
                )
            else:
                logger.warning("orchestrator unreachable: %s", error)
            self._send_status()

    # ------------------------------------------------------------ tasks
    async def run(self) -> None:
        """Follow and refresh until cancelled (on one loop at a time; a server that
        starts again runs it again)."""
        self._stale = asyncio.Event()
        self._alerts_stale = asyncio.Event()
        self.connected, self.error = False, None
        async with asyncio.TaskGroup() as group:
            group.create_task(self._follow(), name="pyorchestrate-web-follow")
            group.create_task(self._refresh(), name="pyorchestrate-web-refresh")
            if self.alerts is not None:
                group.create_task(
                    self._follow_alerts(self.alerts), name="pyorchestrate-web-alerts"
                )

    async def _follow(self) -> None:
        while True:
            try:
                async for event in self.link.subscribe(
                    self.last_seq, on_subscribed=self._on_subscribed
                ):
                    self._on_event(event)
                reason = "the orchestrator closed the event stream"
            except ControlError as exc:
                reason = str(exc)
            self._set_connected(False, reason)
            self._mark_stale()
            await asyncio.sleep(self.reconnect_interval)

    def _mark_stale(self) -> None:
        if self._stale is not None:
            self._stale.set()

    def _on_subscribed(self) -> None:
        self._set_connected(True)
        self._mark_stale()

    def _on_event(self, event: dict[str, Any]) -> None:
        seq = event.get("seq")
        if isinstance(seq, int):
            self.last_seq = seq if self.last_seq is None else max(self.last_seq, seq)
        if self.on_event is not None:
            self.on_event(event)
        if event.get("event_name") in _QUIET_EVENTS:
            return
        self._send_event(event)
        self._mark_stale()

    async def _refresh(self) -> None:
        stale = self._stale
        assert stale is not None
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.refresh_interval):
                    await stale.wait()
            stale.clear()
            if not any(page.table for page in self._pages):
                # Nobody shows a table: no ps per event or interval for nothing
                # (it would also compete with the events' own way to the pages).
                # A page that opens marks the table stale and gets a fresh one.
                continue
            await self.refresh()

    async def _follow_alerts(self, panel: AlertsPanel) -> None:
        stale = self._alerts_stale
        assert stale is not None
        failed = False
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.alerts_interval):
                    await stale.wait()
            stale.clear()
            if not any(page.alerts for page in self._pages):
                continue  # no Alerts page open: no read
            try:
                data = dict(await asyncio.to_thread(panel.alerts))
            except Exception as exc:  # said on the page, logged once per outage
                if not failed:
                    logger.error(
                        "the alerts panel failed: %s: %s", type(exc).__name__, exc
                    )
                failed = True
                data = {
                    "error": f"cannot read the notifier state: {type(exc).__name__}: {exc}"
                }
            else:
                failed = False
            text = _encode(_steady(data))
            if text == self._alerts_text:
                continue
            self._alerts_text = text
            message = ("alerts", text)
            for page in list(self._pages):
                if page.alerts:
                    self._put(page, message)

    async def refresh(self) -> None:
        """Read the agent table now and send it to every page."""
        try:
            agents = await self.link.acall("ps")
        except ControlError as exc:
            self._set_connected(False, str(exc))
            return
        self.agents = agents
        self._send_table(agents)


def _encode(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))


def _steady(data: dict[str, Any]) -> dict[str, Any]:
    """The alerts data without what moves by itself (``now``, a mute's ``left``:
    the page counts down from ``until``), so an unchanged state sends nothing."""
    steady = {key: value for key, value in data.items() if key != "now"}
    if isinstance(data.get("mutes"), list):
        steady["mutes"] = [
            {k: v for k, v in mute.items() if k != "left"}
            if isinstance(mute, dict)
            else mute
            for mute in data["mutes"]
        ]
    return steady


def _table_for(agents: dict[str, Any], agent: str | None) -> dict[str, Any]:
    """The ``ps`` data a page shows: all of it, or one agent's row and the counts."""
    if agent is None:
        return agents
    rows = [row for row in agents.get("agents") or [] if row.get("name") == agent]
    return {**agents, "agents": rows}
