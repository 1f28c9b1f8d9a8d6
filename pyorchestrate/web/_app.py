"""``build_app``: the dashboard as a Starlette application.

It holds one :class:`Dashboard` (the link to the orchestrator, the event hub, the
metrics registry, the Alerts panel if any) in ``app.state.dashboard``; the hub
follows the orchestrator's events for as long as the application runs (its
lifespan).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..core.control.client import resolve_socket_path
from ._actions import action_endpoint
from ._alerts import alerts_routes
from ._api import routes_for
from ._config import WebConfig, is_loopback
from ._hub import EventHub
from ._link import OrchestratorLink
from ._live import stream_endpoint
from ._metrics import EventTally, OrchestratorCollector
from ._pages import Pages
from ._panels import AlertsPanel, PanelCollector, load_alerts_panel

__all__ = ["Dashboard", "build_app"]

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Dashboard:
    """What one dashboard holds: its settings, link, hub and metrics."""

    config: WebConfig
    link: OrchestratorLink
    hub: EventHub
    registry: CollectorRegistry
    tally: EventTally
    alerts: AlertsPanel | None = None
    """The Alerts page's provider (``None``: no notifier state configured)."""
    owns_alerts: bool = False
    """Whether the dashboard loaded ``alerts`` itself (and closes it)."""

    @classmethod
    def from_config(
        cls, config: WebConfig, alerts: AlertsPanel | None = None
    ) -> Dashboard:
        """Build the parts (nothing connects yet). ``alerts``: an Alerts panel of
        the caller's (else one is loaded when ``notify_state``/``notify_config``
        is set).

        Raises:
            SeveralOrchestrators: no socket or name given and several run.
            ConfigError: the Alerts panel cannot be had for the notifier settings.
        """
        path = resolve_socket_path(config.socket_path, name=config.name)
        link = OrchestratorLink(path, timeout=config.timeout)
        registry = CollectorRegistry(auto_describe=False)
        tally = EventTally(registry)
        owns = alerts is None
        if alerts is None:
            alerts = load_alerts_panel(config.notify_state, config.notify_config)
        hub = EventHub(
            link,
            queue_size=config.sse_queue_size,
            refresh_interval=config.refresh_interval,
            reconnect_interval=config.reconnect_interval,
            on_event=tally.on_event,
            alerts=alerts,
        )
        registry.register(OrchestratorCollector(link, hub, tally))
        if alerts is not None:
            registry.register(PanelCollector(alerts))
        return cls(
            config, link, hub, registry, tally, alerts, owns and alerts is not None
        )

    _loop: asyncio.AbstractEventLoop | None = None

    def end_pages(self) -> None:
        """End every live page's stream, from any thread (the server stops)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self.hub.close)

    async def metrics(self, request: Request) -> Response:
        body = await anyio.to_thread.run_sync(generate_latest, self.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._loop = asyncio.get_running_loop()
        self.link.open()
        task = self._loop.create_task(self.hub.run(), name="pyorchestrate-web-hub")
        task.add_done_callback(_report_hub_end)
        try:
            yield
        finally:
            self.hub.close()
            # Cancelled, or failed and already reported by _report_hub_end. Cancel
            # until it ends: one cancellation can be lost (3.11's wait_for, or a
            # library's), and then the hub would follow events forever.
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=1.0)
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.to_thread(self.link.close)  # joins its threads
            if self.owns_alerts and self.alerts is not None:
                await asyncio.to_thread(self.alerts.close)  # reopens if served again
            self._loop = None


def _report_hub_end(task: asyncio.Task[None]) -> None:
    """Live updates stop only at shutdown: anything else is a bug, and said so."""
    if not task.cancelled() and task.exception() is not None:
        logger.error(
            "live updates stopped: the event hub failed", exc_info=task.exception()
        )


def _hosts(config: WebConfig) -> list[str]:
    """The ``Host`` headers accepted: on loopback only loopback names, so a web
    page elsewhere cannot read the dashboard through DNS rebinding (its requests
    carry its own host name). Beyond loopback (a token is required there), any."""
    if not is_loopback(config.host) or ":" in config.host:
        return ["*"]  # (Starlette cannot match an IPv6 literal's Host header)
    return sorted({"127.0.0.1", "localhost", config.host})


def build_app(
    config: WebConfig | None = None,
    *,
    alerts: AlertsPanel | None = None,
    **settings: Any,
) -> Starlette:
    """The dashboard for ``config`` (or a ``WebConfig`` of ``settings``).
    ``alerts``: the Alerts page's provider, e.g. a ``notifiers.web_panel.NotifierPanel``
    over a dispatcher of this process (default: loaded for ``notify_state`` or
    ``notify_config``, else no Alerts page).

    Raises:
        ConfigError: a bad setting (it names the field).
        SeveralOrchestrators: no socket or name given and several run.
    """
    if config is None:
        config = WebConfig(**settings)
    elif settings:
        config = WebConfig(**{**config.model_dump(), **settings})
    dashboard = Dashboard.from_config(config, alerts)
    routes: list[BaseRoute] = [
        Route(path, endpoint) for path, endpoint in routes_for(dashboard.link).items()
    ]
    pages = Pages(dashboard.link, config, dashboard.alerts)
    routes += [
        Route(path, endpoint, methods=methods)
        for path, (endpoint, methods) in alerts_routes(
            dashboard.alerts, dashboard.link, config
        ).items()
    ]
    routes += [
        Route("/", pages.overview, name="overview"),
        Route("/events", pages.events, name="events"),
        Route("/alerts", pages.alerts, name="alerts"),
        Route("/agents/{name:path}", pages.agent, name="agent"),
        Route("/api/stream", stream_endpoint(dashboard.hub)),
        Route(
            "/api/agents/{name:path}/{action}",
            action_endpoint(dashboard.link, config),
            methods=["POST"],
        ),
        Route("/metrics", dashboard.metrics),
        Mount(
            "/static",
            StaticFiles(packages=[("pyorchestrate.web", "static")]),
            name="static",
        ),
    ]
    app = Starlette(
        routes=routes,
        lifespan=dashboard.lifespan,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=_hosts(config))],
    )
    app.state.dashboard = dashboard
    return app
