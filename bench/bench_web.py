"""The dashboard: event to browser DOM, ``/api/agents`` and ``/metrics``.

* **Event → DOM**: headless Chromium (Debian's, driven offline by Selenium) shows the
  events page with follow on; a thread agent is stopped and started again and again,
  and a ``MutationObserver`` in the page stamps (wall clock) when each event's row
  appears. Latency: that stamp minus the event's ``t_wall`` in the history.
  Baseline, interleaved: a bare sse-starlette echo (an ``EventSource`` page on a
  Starlette app of its own) that the benchmark feeds messages stamped with
  ``time.time()``. Target: p50 within 2x the bare echo.
* **/api/agents** with 200 idle thread agents, over one keep-alive connection.
  Baseline, interleaved: a bare Starlette route answering the same JSON from memory.
  Target: p99 < 50 ms.
* **/metrics** with 200 agents and 10,000 events in the history. Baseline,
  interleaved: the same scrape of an orchestrator with 200 agents and an almost empty
  history (the scrape cost must not grow with the history). Target: p50 within 1.5x.

Run: ``python bench/bench_web.py [--quick] [--events N] [--requests N]``;
``python bench/bench_web.py --screenshot docs/img/dashboard.png`` refreshes the
docs' picture of the overview instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _stats

AGENTS = 200
HISTORY_EVENTS = 10_000
DOM_RATIO = 2.0  # event -> DOM p50 within 2x the bare SSE echo
API_TARGET = 0.050  # /api/agents p99 under 50 ms
METRICS_RATIO = 1.5  # /metrics p50 with 10k events within 1.5x an empty history
HIGH = 99  # the HTTP rows' upper percentile
DOM_HIGH = 95  # the DOM row's

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

_OBSERVER = """
window.__seen = {};
const body = document.querySelector(arguments[0]);
new MutationObserver(() => {
  const now = performance.timeOrigin + performance.now();
  for (const row of body.children) {
    const key = row.firstChild && row.firstChild.textContent;
    if (key && !(key in window.__seen)) window.__seen[key] = now;
  }
}).observe(body, {childList: true});
"""

_ECHO_PAGE = """<!doctype html><html><body><div id="echo"></div><script>
const box = document.getElementById("echo");
new EventSource("/echo").addEventListener("echo", (e) => {
  const data = JSON.parse(e.data);
  const row = document.createElement("div");
  const cell = document.createElement("span");
  cell.textContent = String(data.n);
  row.appendChild(cell);
  box.insertBefore(row, box.firstChild);
});
</script></body></html>"""


# ---------------------------------------------------------------- parts


@contextlib.contextmanager
def fleet(
    socket_path: str, agents: int, history: int = 0, name: str = "bench-web"
) -> Iterator[Any]:
    """A DAEMON orchestrator with ``agents`` idle thread agents (READY) and
    ``history`` filler events; stopped and joined on the way out."""
    from bench._agents import IdleThread
    from pyorchestrate import Orchestrator, RunMode
    from pyorchestrate.core.control.client import ControlClient
    from pyorchestrate.testing import wait_until

    config = Orchestrator.Config(
        run_mode=RunMode.DAEMON,
        command_socket_path=socket_path,
        max_workers=agents + 1,
        agent_stop_timeout=5.0,
        history_max_events=max(5000, history + 1000),
    )

    def ready() -> bool:
        try:
            with ControlClient(socket_path, timeout=1.0) as client:
                return bool(client.ps()["running_count"] == agents)
        except Exception:  # not listening yet
            return False

    with Orchestrator(name, config) as orchestrator:
        for i in range(agents):
            orchestrator.register_agent(IdleThread, f"agent-{i:03d}")
        orchestrator.start()
        joiner = threading.Thread(target=orchestrator.join, name="bench-join")
        joiner.start()
        try:
            if not wait_until(ready, _stats.WAIT_TIMEOUT * 3):
                raise TimeoutError(f"{agents} agents not READY behind {socket_path}")
            for i in range(history):
                orchestrator.history.record(
                    "agent_error",
                    agent=f"agent-{i % agents:03d}",
                    data={"error_message": f"filler {i}"},
                )
            yield orchestrator
        finally:
            orchestrator.stop()
            joiner.join(_stats.WAIT_TIMEOUT + 5)


class Served:
    """An ASGI app served by uvicorn on 127.0.0.1 (a free port), on a thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self._sock = socket.socket(  # TCP proto: asyncio then sets TCP_NODELAY
            socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
        )
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name="bench-uvicorn",
        )
        self._thread.start()
        deadline = time.monotonic() + _stats.WAIT_TIMEOUT
        while not self._server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(_stats.WAIT_TIMEOUT)
        self._sock.close()


class BareEcho:
    """A bare Starlette + sse-starlette app: a page with an ``EventSource`` and the
    ``/echo`` stream fed by :meth:`send`; plus ``/json`` answering fixed bytes."""

    def __init__(self, json_body: bytes) -> None:
        from sse_starlette import EventSourceResponse
        from starlette.applications import Starlette
        from starlette.responses import HTMLResponse, Response
        from starlette.routing import Route

        self.loop: asyncio.AbstractEventLoop | None = None
        self.queues: set[asyncio.Queue[str | None]] = set()

        async def page(request: Any) -> Any:
            return HTMLResponse(_ECHO_PAGE)

        async def echo(request: Any) -> Any:
            self.loop = asyncio.get_running_loop()
            queue: asyncio.Queue[str | None] = asyncio.Queue()
            self.queues.add(queue)

            async def stream() -> Any:
                try:
                    while (data := await queue.get()) is not None:
                        yield {"event": "echo", "data": data}
                finally:
                    self.queues.discard(queue)

            return EventSourceResponse(stream())

        async def as_json(request: Any) -> Any:
            return Response(json_body, media_type="application/json")

        self.app = Starlette(
            routes=[Route("/", page), Route("/echo", echo), Route("/json", as_json)]
        )

    def send(self, n: int) -> float:
        """Send message ``n`` to every page; return when (``time.time()``)."""
        sent = time.time()
        message = json.dumps({"n": n, "t": sent})
        assert self.loop is not None, "no page is connected"
        for queue in list(self.queues):
            self.loop.call_soon_threadsafe(queue.put_nowait, message)
        return sent

    def close(self) -> None:
        if self.loop is not None:
            for queue in list(self.queues):
                with contextlib.suppress(RuntimeError):
                    self.loop.call_soon_threadsafe(queue.put_nowait, None)


@contextlib.contextmanager
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, offline (driver and binary by path)."""
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,860",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--proxy-server=http://127.0.0.1:9",  # loopback bypasses it; all else dies
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_seen(driver: Any, keys: list[str]) -> dict[str, float]:
    deadline = time.monotonic() + _stats.WAIT_TIMEOUT
    while True:
        seen: dict[str, float] = driver.execute_script("return window.__seen")
        if all(key in seen for key in keys):
            return {key: seen[key] / 1e3 for key in keys}
        if time.monotonic() > deadline:
            missing = [key for key in keys if key not in seen]
            shown = driver.execute_script("return document.body.innerText")
            raise TimeoutError(
                f"never shown in the page: {missing}; it shows {shown[:600]!r}"
            )
        time.sleep(0.005)


# ---------------------------------------------------------------- measurements


def dom_latencies(
    orchestrator: Any, dashboard_url: str, echo: BareEcho, echo_url: str, events: int
) -> tuple[list[float], list[float]]:
    """Event -> DOM latencies (seconds) and the bare echo's, interleaved."""
    from bench._agents import IdleThread
    from pyorchestrate.testing import wait_until

    orchestrator.register_agent(IdleThread, "probe")
    orchestrator.start_agent("probe")
    wait_until(
        lambda: orchestrator.agent_status("probe")["lifecycle_state"] == "READY",
        _stats.WAIT_TIMEOUT,
    )
    found: list[float] = []
    bare: list[float] = []
    with browser() as page, browser() as echo_page:
        page.get(f"{dashboard_url}/events?agent=probe&severity=DEBUG&follow=1")
        page.execute_script(_OBSERVER, "#events tbody")
        echo_page.get(echo_url + "/")
        echo_page.execute_script(_OBSERVER, "#echo")
        deadline = time.monotonic() + _stats.WAIT_TIMEOUT
        while echo.loop is None or not echo.queues:  # the EventSource connected
            if time.monotonic() > deadline:
                raise TimeoutError("the echo page never connected")
            time.sleep(0.01)
        # Wait for the dashboard page to be live (its stream open).
        deadline = time.monotonic() + _stats.WAIT_TIMEOUT
        while page.find_element("id", "connection").text != "live":
            if time.monotonic() > deadline:
                raise TimeoutError("the dashboard page never went live")
            time.sleep(0.01)
        n = 0
        warmup = 3
        seq = int(orchestrator.history.last(1)[-1].seq)  # shown when the page loaded
        while len(found) < events + warmup:
            running = orchestrator.agent_status("probe")["alive"]
            (orchestrator.stop_agent if running else orchestrator.start_agent)("probe")
            wait_until(
                lambda r=running: (
                    orchestrator.agent_status("probe")["lifecycle_state"]
                    in (("TERMINATED",) if r else ("READY",))
                ),
                _stats.WAIT_TIMEOUT,
            )
            records = [
                r
                for r in orchestrator.history.last(50, agent="probe", after_seq=seq)
                if r.event_name != "agent_heartbeat"
            ]
            if not records:
                continue
            seq = max(r.seq for r in records)
            shown = _wait_seen(page, [str(r.seq) for r in records])
            found += [shown[str(r.seq)] - r.t_wall for r in records]
            n += 1
            sent = echo.send(n)
            bare.append(_wait_seen(echo_page, [str(n)])[str(n)] - sent)
        echo.close()
    return found[warmup : events + warmup], bare[1:] or bare


def http_samples(
    url: str, path: str, requests: int, baseline: str
) -> tuple[list[float], list[float]]:
    """GET ``url+path`` and ``baseline`` in turn over keep-alive connections."""
    import httpx

    with httpx.Client(timeout=10) as ours, httpx.Client(timeout=10) as theirs:

        def sample(client: Any, target: str) -> Callable[[], float]:
            def run() -> float:
                t0 = time.perf_counter()
                response = client.get(target)
                response.read()
                elapsed = time.perf_counter() - t0
                if response.status_code != 200:
                    raise RuntimeError(f"{target}: {response.status_code}")
                return elapsed

            return run

        a, b = _stats.interleave(
            requests, 5, sample(ours, url + path), sample(theirs, baseline)
        )
    return a, b


# ---------------------------------------------------------------- screenshot


def screenshot(path: Path) -> int:
    """Save the overview of a small demo fleet as ``path`` (PNG)."""
    from bench._agents import IdleThread
    from pyorchestrate import BaseThreadAgent, Orchestrator, RunMode
    from pyorchestrate.testing import wait_until
    from pyorchestrate.web import WebServer

    class Ingest(IdleThread):
        pass

    class Flaky(BaseThreadAgent):
        def execute(self) -> None:
            raise ConnectionError("database unreachable at db:5432")

    class Report(BaseThreadAgent):
        def execute(self) -> None:
            pass

    work = Path(tempfile.mkdtemp(prefix="po-shot-", dir="/tmp"))
    config = Orchestrator.Config(
        run_mode=RunMode.DAEMON, command_socket_path=str(work / "o.sock")
    )
    try:
        with Orchestrator("shop", config) as orchestrator:
            orchestrator.register_agent(Ingest, "ingest-orders")
            orchestrator.register_agent(Ingest, "send-emails")
            orchestrator.register_agent(Report, "nightly-report")
            orchestrator.register_agent(
                Flaky,
                "sync-inventory",
                supervision={
                    "restart": "on-failure",
                    "immediate_restarts": 0,
                    "backoff_initial": 30.0,
                    "backoff_jitter": 0,
                },
            )
            orchestrator.start()
            joiner = threading.Thread(target=orchestrator.join, name="shot-join")
            joiner.start()
            server = WebServer(socket_path=str(work / "o.sock"), port=0).start()
            try:
                wait_until(
                    lambda: (
                        orchestrator.agent_status("sync-inventory")["lifecycle_state"]
                        == "BACKOFF"
                    ),
                    _stats.WAIT_TIMEOUT,
                )
                with browser() as page:
                    page.get(server.url + "/")
                    deadline = time.monotonic() + _stats.WAIT_TIMEOUT
                    while page.find_element("id", "connection").text != "live":
                        if time.monotonic() > deadline:
                            raise TimeoutError("the page never went live")
                        time.sleep(0.05)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    page.save_screenshot(str(path))
            finally:
                server.stop()
                orchestrator.stop()
                joiner.join(_stats.WAIT_TIMEOUT + 5)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"saved {path}")
    return _stats.finish()


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples (smoke run)")
    parser.add_argument("--events", type=int, help="events timed to the DOM (50)")
    parser.add_argument("--requests", type=int, help="HTTP requests per route (300)")
    parser.add_argument(
        "--screenshot", type=Path, metavar="PNG", help="save the overview instead"
    )
    args = parser.parse_args(argv)
    if args.screenshot:
        return screenshot(args.screenshot)
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not Path(binary).exists():
            print(f"{binary} is missing: apt-get install chromium chromium-driver")
            return 2
    events = args.events or (10 if args.quick else 50)
    requests = args.requests or (30 if args.quick else 300)
    agents = 20 if args.quick else AGENTS
    history = 1000 if args.quick else HISTORY_EVENTS

    from pyorchestrate.web import WebServer

    # The dashboards warn when their orchestrator goes away: it does, at the end.
    logging.getLogger("pyorchestrate.web").setLevel(logging.ERROR)
    _stats.print_title(
        "Dashboard: event to browser DOM, /api/agents, /metrics",
        agents=agents,
        history_events=history,
        events=events,
        requests=requests,
    )
    work = Path(tempfile.mkdtemp(prefix="po-bench-", dir="/tmp"))
    servers: list[Any] = []
    try:
        with (
            fleet(str(work / "a.sock"), agents, history, "bench-web") as orchestrator,
            fleet(str(work / "b.sock"), agents, 0, "bench-web-empty"),
        ):
            dashboard = WebServer(socket_path=str(work / "a.sock"), port=0).start()
            servers.append(dashboard)
            empty = WebServer(socket_path=str(work / "b.sock"), port=0).start()
            servers.append(empty)
            import httpx

            body = httpx.get(dashboard.url + "/api/agents", timeout=10).content
            echo = BareEcho(body)
            bare = Served(echo.app)
            servers.append(bare)
            api, api_bare = http_samples(
                dashboard.url, "/api/agents", requests, bare.url + "/json"
            )
            metrics, metrics_empty = http_samples(
                dashboard.url, "/metrics", requests, empty.url + "/metrics"
            )
            dom, dom_bare = dom_latencies(
                orchestrator, dashboard.url, echo, bare.url, events
            )
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(work, ignore_errors=True)

    # The issue asks p50/p99 of the HTTP routes, p50/p95 of the DOM latency.
    _stats.print_header(HIGH)
    _stats.latency_row(
        f"/api/agents, {agents} agents vs bare JSON", api, api_bare, API_TARGET, HIGH
    )
    _stats.ratio_row(
        f"/metrics, {agents} agents, {history // 1000}k events vs none",
        metrics,
        metrics_empty,
        METRICS_RATIO,
        HIGH,
    )
    print()
    _stats.print_header(DOM_HIGH)
    _stats.ratio_row(
        f"event -> DOM ({len(dom)} events) vs bare SSE echo",
        dom,
        dom_bare,
        DOM_RATIO,
        DOM_HIGH,
    )
    print()
    print(
        f"/api/agents reply: {len(body):,} bytes; the bare route sends the same bytes."
    )
    return _stats.finish()


if __name__ == "__main__":
    sys.exit(main())
