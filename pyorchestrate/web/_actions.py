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
Each action is sent as ``web`` with the actor ``<actor>@<client address>``
(:func:`actor_of`), so the orchestrator records it (``OPERATOR_ACTION``) in its
history: ``pyorchestrate history --event operator_action`` shows who did what from
where.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..core.errors import ControlError
from ._api import error_response
from ._config import WebConfig
from ._link import OrchestratorLink

__all__ = ["ACTIONS", "action_endpoint", "actor_of", "is_authorized", "refusal"]

logger = logging.getLogger(__name__)

ACTIONS = frozenset({"start", "stop", "restart"})
"""The actions on an agent (``/api/agents/{name}/{action}``); mute and unmute are
the Alerts page's (``/api/alerts/{mute,unmute}``)."""


def is_authorized(request: Request, config: WebConfig) -> bool:
    """Whether ``request`` carries the configured Bearer token."""
    if config.token is None:
        return False
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        return False
    expected = config.token.get_secret_value().encode()
    return hmac.compare_digest(credentials.strip().encode(), expected)


def actor_of(request: Request, config: WebConfig) -> str:
    """Who acts, for the history: the token's ``actor`` name and the client's
    address (``token@127.0.0.1``)."""
    client = request.client
    return f"{config.actor}@{client.host if client is not None else 'unknown'}"


def refusal(request: Request, config: WebConfig, action: str) -> Response | None:
    """The answer refusing ``action`` (403 actions off, 401 no valid token, 403
    the preset), or ``None``: it may go ahead."""
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
                "detail": f"the {config.permissions!r} preset does not allow {action!r}",
            },
            status_code=403,
        )
    return None


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
        refused = refusal(request, config, action)
        if refused is not None:
            return refused
        actor = actor_of(request, config)
        try:
            data = await link.acall_as(actor, action, name)
        except ControlError as exc:
            return error_response(exc, link)
        logger.info(
            "web action: %s %r by %s", action, name, actor, extra={"agent": name}
        )
        return JSONResponse({"agent": name, "action": action, **data})

    return act
