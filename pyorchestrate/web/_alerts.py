"""The Alerts page's API: what the notifier layer holds, and mute/unmute.

=====================================  =========================================
``GET /api/alerts``                    channels (sent/failed/retried/queued),
                                       the outbox, the mutes; 404 when no
                                       notifier state is configured
``POST /api/alerts/mute``              ``{"kind", "value", "seconds", "reason"}``
``POST /api/alerts/unmute``            ``{"kind", "value"}``; 404 if no such mute
=====================================  =========================================

Mute and unmute are actions: the token and the ``operator`` preset, as for
start/stop/restart (:func:`~pyorchestrate.web._actions.refusal`). They change the
notifier state file through the panel (the same call ``pyorchestrate notify mute``
makes) and are then recorded in the orchestrator's history with ``record-action``
(source ``web``, actor ``<actor>@<client address>``). A mute that is done but could
not be recorded (the orchestrator does not answer) still answers 200, with
``"recorded": false`` and why, and is logged at WARNING.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..core.errors import ControlError
from ._actions import actor_of, refusal
from ._config import WebConfig
from ._link import OrchestratorLink
from ._panels import AlertsPanel

__all__ = [
    "MuteRequest",
    "UnmuteRequest",
    "alerts_routes",
    "panel_error",
    "unavailable",
]

logger = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]


class UnmuteRequest(BaseModel):
    """``POST /api/alerts/unmute``'s body."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["agent", "event", "channel"]
    value: str = Field(min_length=1, max_length=200)


class MuteRequest(UnmuteRequest):
    """``POST /api/alerts/mute``'s body."""

    seconds: float = Field(gt=0, le=366 * 86400)
    reason: str | None = Field(default=None, max_length=200)


def unavailable(exc: Exception) -> JSONResponse:
    """The panel failed (a broken or unreadable state file): 503, said and logged."""
    logger.error("the alerts panel failed: %s: %s", type(exc).__name__, exc)
    return JSONResponse(
        {"error": "alerts_unavailable", "detail": panel_error(exc)}, status_code=503
    )


def panel_error(exc: Exception) -> str:
    """What the page says when the panel failed."""
    return f"cannot read the notifier state: {type(exc).__name__}: {exc}"


def _off() -> JSONResponse:
    return JSONResponse(
        {
            "error": "alerts_off",
            "detail": "no notifier state is configured: start the dashboard with "
            "--notify-state PATH or --notify-config FILE",
        },
        status_code=404,
    )


def _invalid(loc: str, message: str, kind: str = "value_error") -> JSONResponse:
    return JSONResponse(
        {"detail": [{"loc": ["body", loc], "msg": message, "type": kind}]},
        status_code=422,
    )


async def _body(request: Request, model: type[UnmuteRequest]) -> Any:
    """The JSON body as ``model``, or a 422 naming the field."""
    try:
        data = json.loads(await request.body() or b"null")
    except ValueError:
        return _invalid("body", "not JSON", "json_invalid")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        return JSONResponse(
            {
                "detail": [
                    {
                        "loc": ["body", *(str(part) for part in err["loc"])],
                        "msg": str(err["msg"]),
                        "type": err["type"],
                    }
                    for err in exc.errors(include_url=False)
                ]
            },
            status_code=422,
        )


def alerts_routes(
    panel: AlertsPanel | None, link: OrchestratorLink, config: WebConfig
) -> dict[str, tuple[Endpoint, list[str]]]:
    """The endpoints by path, with their methods."""

    async def show(request: Request) -> Response:
        if panel is None:
            return _off()
        try:
            data = await anyio.to_thread.run_sync(panel.alerts)
        except Exception as exc:  # the provider's failure: a 503 that says it
            return unavailable(exc)
        return JSONResponse(dict(data), headers={"Cache-Control": "no-store"})

    async def record(
        request: Request, action: str, fields: Mapping[str, Any], result: str
    ) -> dict[str, Any]:
        actor = actor_of(request, config)
        kind, value = fields["kind"], fields["value"]
        outside = {
            "action": action,
            # A mute of an agent is that agent's (its history shows it); a glob or
            # an unknown name is kept as the event's target.
            "agent": value if kind == "agent" else None,
            "ok": True,
            "result": result,
            "kind": kind,
            "value": value,
        }
        try:
            await link.acall_as(actor, "record-action", outside)
        except ControlError as exc:
            logger.warning(
                "web %s of %s %r by %s done but not recorded in the history: %s",
                action,
                kind,
                value,
                actor,
                exc,
            )
            return {"recorded": False, "record_error": str(exc)}
        logger.info("web action: %s %s %r by %s", action, kind, value, actor)
        return {"recorded": True}

    async def mute(request: Request) -> Response:
        if panel is None:
            return _off()
        refused = refusal(request, config, "mute")
        if refused is not None:
            return refused
        body = await _body(request, MuteRequest)
        if isinstance(body, Response):
            return body
        try:
            done = await anyio.to_thread.run_sync(
                lambda: panel.mute(
                    body.kind,
                    body.value,
                    seconds=body.seconds,
                    reason=body.reason,
                    actor=actor_of(request, config),
                )
            )
        except ValueError as exc:
            field, _, message = str(exc).partition(": ")
            return _invalid(field if message else "value", message or str(exc))
        except Exception as exc:  # the state file cannot be written
            return unavailable(exc)
        result = f"muted {body.kind} {body.value!r} for {body.seconds:g} s"
        recorded = await record(request, "mute", body.model_dump(), result)
        return JSONResponse({"action": "mute", "mute": dict(done), **recorded})

    async def unmute(request: Request) -> Response:
        if panel is None:
            return _off()
        refused = refusal(request, config, "unmute")
        if refused is not None:
            return refused
        body = await _body(request, UnmuteRequest)
        if isinstance(body, Response):
            return body
        try:
            ended = await anyio.to_thread.run_sync(
                lambda: panel.unmute(body.kind, body.value)
            )
        except ValueError as exc:
            return _invalid("value", str(exc))
        except Exception as exc:  # the state file cannot be written
            return unavailable(exc)
        if not ended:
            return JSONResponse(
                {
                    "error": "no_such_mute",
                    "detail": f"no mute of {body.kind} {body.value!r}",
                },
                status_code=404,
            )
        result = f"unmuted {body.kind} {body.value!r}"
        recorded = await record(request, "unmute", body.model_dump(), result)
        return JSONResponse(
            {"action": "unmute", "kind": body.kind, "value": body.value, **recorded}
        )

    return {
        "/api/alerts": (show, ["GET"]),
        "/api/alerts/mute": (mute, ["POST"]),
        "/api/alerts/unmute": (unmute, ["POST"]),
    }
