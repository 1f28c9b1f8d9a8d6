"""Actions: ``POST /api/agents/{name}/{start|stop|restart}``, off by default.

They go through the same command layer as the CLI (``start``/``stop``/``restart``
on the command socket, sent as ``web``). Each needs the dashboard's token as
``Authorization: Bearer <token>`` (compared in constant time; never read from a URL
or a cookie) and a permission preset that allows it:

* no token configured: 403, actions are off;
* no or a wrong ``Authorization`` header: 401 (``WWW-Authenticate: Bearer``);
* ``read_only`` (the default preset): 403 naming the preset;
* ``operator``: start, stop, restart.

The orchestrator's own ``allowed_commands`` still applies (its refusal is a 403).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..core.errors import ControlError
from ._api import error_response
from ._config import WEB_PERMISSION_PRESETS, WebConfig
from ._link import OrchestratorLink

__all__ = ["ACTIONS", "action_endpoint", "is_authorized"]

logger = logging.getLogger(__name__)

ACTIONS = frozenset().union(*WEB_PERMISSION_PRESETS.values())
"""Every action some preset allows."""


def is_authorized(request: Request, config: WebConfig) -> bool:
    """Whether ``request`` carries the configured Bearer token."""
    if config.token is None:
        return False
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        return False
    expected = config.token.get_secret_value().encode()
    return hmac.compare_digest(credentials.strip().encode(), expected)


def action_endpoint(
    link: OrchestratorLink, config: WebConfig
) -> Callable[[Request], Awaitable[Response]]:
    """The action endpoint bound to ``link`` and ``config``."""

    async def act(request: Request) -> Response:
        name = request.path_params["name"]
        action = request.path_params["action"]
        if action not in ACTIONS:
            return JSONResponse(
                {"error": "unknown_action", "detail": f"no action {action!r}"},
                status_code=404,
            )
        if config.token is None:
            return JSONResponse(
                {
                    "error": "actions_off",
                    "detail": "actions are off: start the dashboard with a token "
                    "(--token or PYORCHESTRATE_WEB_TOKEN) and --permissions operator",
                },
                status_code=403,
            )
        if not is_authorized(request, config):
            return JSONResponse(
                {"error": "unauthorized", "detail": "a valid Bearer token is required"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="pyorchestrate"'},
            )
        if action not in config.allowed_actions:
            return JSONResponse(
                {
                    "error": "forbidden",
                    "detail": f"the {config.permissions!r} preset does not allow "
                    f"{action!r}",
                },
                status_code=403,
            )
        try:
            data = await link.acall(action, name)
        except ControlError as exc:
            return error_response(exc, link)
        logger.info("web action: %s %r", action, name, extra={"agent": name})
        return JSONResponse({"agent": name, "action": action, **data})

    return act
