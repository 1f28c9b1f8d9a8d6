"""Live updates: the server-sent event stream through uvicorn on 127.0.0.1, and the
hub's bound on a slow page."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from pyorchestrate.testing import wait_until
from pyorchestrate.web import build_app
from pyorchestrate.web._hub import EventHub
from pyorchestrate.web._link import OrchestratorLink

from .conftest import LOCAL, Fleet, MakeServer


class SseReader:
    """Reads ``(event, data)`` pairs from a server-sent event response."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines

    def next(self) -> tuple[str, Any]:
        kind, data = "message", ""
        for line in self.lines:
            if line.startswith("event:"):
                kind = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data += line.partition(":")[2].strip()
            elif line == "" and data:
                return kind, json.loads(data)
        raise AssertionError("the stream ended")

    def until(self, predicate: Any, limit: int = 200) -> tuple[str, Any]:
        for _ in range(limit):
            kind, data = self.next()
            if predicate(kind, data):
                return kind, data
        raise AssertionError("no such message in the stream")


def test_the_stream_follows_the_orchestrator_and_reconnects(
    fleet: Fleet, make_server: MakeServer, short_tmp: Path
) -> None:
    server = make_server(socket_path=fleet.socket, reconnect_interval=0.1)
    timeout = httpx.Timeout(10.0)
    with (
        httpx.Client(timeout=timeout) as http,
        http.stream("GET", f"{server.url}/api/stream") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        sse = SseReader(response.iter_lines())
        sse.until(lambda kind, data: kind == "status" and data["connected"])
        _, table = sse.until(lambda kind, data: kind == "agents")
        assert {row["name"] for row in table["agents"]} == {"worker", "boom"}
        fleet.orchestrator.restart_agent("worker")
        _, event = sse.until(
            lambda kind, data: kind == "event" and data["event_name"] == "agent_ready"
        )
        assert event["agent"] == "worker"
        # The orchestrator goes away: the page is told, then reconnected by itself.
        fleet.close()
        sse.until(lambda kind, data: kind == "status" and not data["connected"])
        again = Fleet(Path(fleet.socket))
        try:
            sse.until(lambda kind, data: kind == "status" and data["connected"])
            sse.until(lambda kind, data: kind == "agents")
        finally:
            again.close()
        # The server stops with this stream still open (its pages are ended).
        server.stop()


def test_a_page_gets_the_table_it_shows(fleet: Fleet, make_server: MakeServer) -> None:
    """An agent's page gets that agent's row only; the events page (table=false)
    gets no table at all, only its events."""
    server = make_server(socket_path=fleet.socket)
    with (
        httpx.Client(timeout=httpx.Timeout(10.0)) as http,
        http.stream("GET", f"{server.url}/api/stream?agent=worker") as one,
        http.stream("GET", f"{server.url}/api/stream?table=false") as events,
    ):
        agent_page = SseReader(one.iter_lines())
        events_page = SseReader(events.iter_lines())
        # Subscribed (so the restart's events reach the hub), then a table.
        agent_page.until(lambda kind, data: kind == "status" and data["connected"])
        _, table = agent_page.until(lambda kind, data: kind == "agents")
        assert [row["name"] for row in table["agents"]] == ["worker"]
        fleet.orchestrator.restart_agent("worker")
        kinds = []
        while True:
            kind, data = events_page.next()
            kinds.append(kind)
            if kind == "event" and data["event_name"] == "agent_ready":
                break
        assert "agents" not in kinds
        assert "event" in kinds


def test_a_slow_page_is_dropped_and_the_others_go_on(fleet: Fleet) -> None:
    async def scenario() -> None:
        link = OrchestratorLink(fleet.socket)
        # Room for one restart's burst (its events and a table, pushed without the
        # reader running in between), so only the page that never reads falls
        # behind.
        hub = EventHub(link, queue_size=8, refresh_interval=60)
        task = asyncio.create_task(hub.run())
        try:
            await eventually(lambda: hub.connected)
            slow = hub.open_page()  # never read
            fast = hub.open_page()
            seen: list[str] = []

            async def read_fast() -> None:
                while (message := await fast.queue.get()) is not None:
                    if message[0] == "event":
                        seen.append(json.loads(message[1])["event_name"])

            reader = asyncio.create_task(read_fast())
            restarts = 0
            while not slow.dropped and restarts < 10:
                await asyncio.to_thread(fleet.orchestrator.restart_agent, "worker")
                await asyncio.to_thread(fleet.wait_state, "worker", "READY")
                restarts += 1
                await eventually(lambda n=restarts: seen.count("agent_ready") >= n)
            assert slow.dropped
            assert hub.dropped_total == 1
            assert hub.page_count == 1  # the fast one
            assert slow.queue.qsize() == 1 and slow.queue.get_nowait() is None
            assert not fast.dropped
            hub.close()
            await reader
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            link.close()

    asyncio.run(scenario())


async def eventually(predicate: Callable[[], bool]) -> None:
    """Wait for ``predicate`` (10 s at most)."""
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within the deadline")


def test_a_failure_of_the_hub_is_logged(
    fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    app = build_app(socket_path=fleet.socket)
    hub = app.state.dashboard.hub

    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("a bug in an event handler")

    hub.on_event = broken
    with TestClient(app, base_url=LOCAL):
        assert wait_until(lambda: hub.connected, 10)  # subscribed: events reach it
        fleet.orchestrator.restart_agent("worker")
        assert wait_until(lambda: "live updates stopped" in caplog.text, 10), (
            caplog.text
        )
    assert "a bug in an event handler" in caplog.text


class CountingLink(OrchestratorLink):
    """A link that counts the commands it runs."""

    def __init__(self, socket_path: str) -> None:
        super().__init__(socket_path)
        self.commands: list[str] = []

    def call(self, command: str, *args: Any) -> dict[str, Any]:
        self.commands.append(command)
        return super().call(command, *args)


def test_no_ps_runs_while_no_page_shows_a_table(fleet: Fleet) -> None:
    """Events alone (the events page, or nobody looking) cost no ``ps``; a page
    with the agent table gets a fresh one at once."""

    async def scenario() -> None:
        link = CountingLink(fleet.socket)
        hub = EventHub(link, refresh_interval=0.05)
        task = asyncio.create_task(hub.run())
        try:
            await eventually(lambda: hub.connected)
            events_page = hub.open_page(table=False)
            await asyncio.sleep(0.2)  # several refresh intervals
            link.commands.clear()
            await asyncio.to_thread(fleet.orchestrator.restart_agent, "worker")
            await asyncio.to_thread(fleet.wait_state, "worker", "READY")
            seen: list[str] = []
            while "agent_ready" not in seen:
                message = await asyncio.wait_for(events_page.queue.get(), 10)
                assert message is not None
                kind, text = message
                assert kind != "agents"
                if kind == "event":
                    seen.append(json.loads(text)["event_name"])
            await asyncio.sleep(0.2)
            assert link.commands == []
            table_page = hub.open_page()
            while message := await asyncio.wait_for(table_page.queue.get(), 10):
                if message[0] == "agents":
                    break
            assert "ps" in link.commands
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            link.close()

    asyncio.run(scenario())
