"""``pyorchestrate.web``: a live dashboard, a JSON API and Prometheus metrics for a
running orchestrator, over its command socket (the ``[web]`` extra).

Run it with ``pyorchestrate web`` (or ``pyorchestrate-web``), or build the ASGI
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
    from ._server import WebServer

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "WEB_PERMISSION_PRESETS": "._config",
        "Dashboard": "._app",
        "WebConfig": "._config",
        "WebServer": "._server",
        "build_app": "._app",
        "is_loopback": "._config",
    },
)

__all__ = [
    "WEB_PERMISSION_PRESETS",
    "Dashboard",
    "WebConfig",
    "WebServer",
    "build_app",
    "is_loopback",
]
