"""``pyorchestrate.web``: a live dashboard, a JSON API and Prometheus metrics for a
running orchestrator, over its command socket (the ``[web]`` extra).

Run it with ``pyorchestrate web`` (or ``pyorchestrate-web``), inside the
orchestrator's own process with ``orchestrator.serve_web()``, or build the ASGI
application yourself::

    from pyorchestrate.web import build_app
    app = build_app(socket_path="/run/user/1000/pyorchestrate/Orchestrator.sock")

Importing this package costs nothing until a name is used: the CLI lists ``web``
without loading Starlette.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._app import Dashboard, build_app
    from ._config import WEB_PERMISSION_PRESETS, WebConfig, is_loopback
    from ._embed import EmbeddedWeb, serve_web
    from ._panels import PANEL_GROUP, AlertsPanel
    from ._server import WebServer

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "PANEL_GROUP": "._panels",
        "WEB_PERMISSION_PRESETS": "._config",
        "AlertsPanel": "._panels",
        "Dashboard": "._app",
        "EmbeddedWeb": "._embed",
        "WebConfig": "._config",
        "WebServer": "._server",
        "build_app": "._app",
        "is_loopback": "._config",
        "serve_web": "._embed",
    },
)

__all__ = [
    "PANEL_GROUP",
    "WEB_PERMISSION_PRESETS",
    "AlertsPanel",
    "Dashboard",
    "EmbeddedWeb",
    "WebConfig",
    "WebServer",
    "build_app",
    "is_loopback",
    "serve_web",
]
