"""The JSON API: the original dashboard's routes, as GET, over the command socket.

=====================================  =========================================
``/api/health``                        the orchestrator answers (``status``)
``/api/orchestrator/status``           ``status``
``/api/orchestrator/dependencies``     ``dependencies``
``/api/orchestrator/stats``            ``stats``
``/api/agents``                        ``ps``
``/api/agents/{name}``                 ``status NAME`` (secrets masked); 404
``/api/history``                       ``history`` (``last``, ``agent``,
                                       ``event_type``, ``after_seq``)
``/api/history/stats``                 ``history-stats`` (``agent``)
=====================================  =========================================

Errors: 503 when the orchestrator does not answer (the body says so and names the
socket), 504 when it does not reply in time, 404 for an unknown agent, 422 for a
bad query parameter (the body names it, as FastAPI would:
``{"detail": [{"loc": ["query", "last"], "msg": ..., "type": ...}]}``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..core.errors import (
    AgentNotFound,
    CommandForbidden,
    Conflict,
    ControlError,
    ControlTimeout,
    ControlUnavailable,
)
from ..core.events import OrchestratorEvent
from ._link import OrchestratorLink

__all__ = [
    "EventQuery",
    "HistoryQuery",
    "HistoryStatsQuery",
    "QueryError",
    "error_response",
    "mask_secrets",
    "parse_query",
    "routes_for",
]

_SECRET_KEY = re.compile(
    r"token|secret|passw|api[_-]?key|auth|credential|private|webhook|dsn|cookie",
    re.IGNORECASE,
)
MASK = "****"


def mask_secrets(value: Any) -> Any:
    """``value`` with the value of every key that looks secret replaced by ``****``
    (nested dicts and lists included). The core masks a command agent's env already;
    this catches a secret in any other config field."""
    if isinstance(value, dict):
        return {
            key: MASK
            if isinstance(key, str)
            and _SECRET_KEY.search(key)
            and item not in (None, "")
            else mask_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_secrets(item) for item in value]
    return value


_EVENT_NAMES = sorted(event.value for event in OrchestratorEvent)


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventQuery(_Query):
    """An ``event_type`` filter: one of the orchestrator's event names."""

    event_type: str | None = None

    @field_validator("event_type")
    @classmethod
    def _known_event(cls, value: str | None) -> str | None:
        if value is not None and value not in _EVENT_NAMES:
            raise ValueError(
                f"unknown event {value!r}; known: {', '.join(_EVENT_NAMES)}"
            )
        return value


class HistoryQuery(EventQuery):
    """``/api/history``'s query parameters."""

    last: int = Field(default=100, ge=0, le=100_000)
    agent: str | None = Field(default=None, min_length=1)
    after_seq: int | None = Field(default=None, ge=0)

    def filters(self) -> dict[str, Any]:
        """The ``history`` command's filter object."""
        values = {
            "last": self.last,
            "agent": self.agent,
            "event_name": self.event_type,
            "after_seq": self.after_seq,
        }
        return {key: value for key, value in values.items() if value is not None}


class HistoryStatsQuery(_Query):
    """``/api/history/stats``'s query parameters."""

    agent: str | None = Field(default=None, min_length=1)


class _NoQuery(_Query):
    pass


_Q = TypeVar("_Q", bound=_Query)


class QueryError(ValueError):
    """Bad query parameters; ``detail`` is FastAPI's shape of the problems."""

    def __init__(self, detail: list[dict[str, Any]]) -> None:
        self.detail = detail
        super().__init__("; ".join(f"{d['loc'][-1]}: {d['msg']}" for d in detail))


def parse_query(model: type[_Q], request: Request) -> _Q:
    """The request's query parameters as ``model``.

    Raises:
        QueryError: naming each bad (or unknown, or repeated) parameter.
    """
    params = request.query_params
    repeated = [
        {
            "loc": ["query", key],
            "msg": "given more than once",
            "type": "repeated",
        }
        for key in dict.fromkeys(params.keys())
        if len(params.getlist(key)) > 1
    ]
    if repeated:
        raise QueryError(repeated)
    try:
        return model.model_validate(dict(params))
    except ValidationError as exc:
        raise QueryError(
            [
                {
                    "loc": ["query", *(str(part) for part in err["loc"])],
                    "msg": "unknown query parameter"
                    if err["type"] == "extra_forbidden"
                    else str(err["msg"]),
                    "type": err["type"],
                }
                for err in exc.errors(include_url=False)
            ]
        ) from None


_FAILURES: dict[type[Exception], tuple[int, str]] = {
    AgentNotFound: (404, "agent_not_found"),
    CommandForbidden: (403, "forbidden"),
    Conflict: (409, "conflict"),
}


def error_response(exc: Exception, link: OrchestratorLink) -> JSONResponse:
    """The HTTP answer for a failed command (or a bad query)."""
    if isinstance(exc, QueryError):
        return JSONResponse({"detail": exc.detail}, status_code=422)
    if isinstance(exc, ControlUnavailable):
        return JSONResponse(
            {
                "error": "orchestrator_unreachable",
                "detail": f"no orchestrator answers on {link.socket_path}: is it "
                "running with its command interface enabled?",
                "socket": link.socket_path,
            },
            status_code=503,
        )
    if isinstance(exc, ControlTimeout):
        return JSONResponse(
            {"error": "orchestrator_timeout", "detail": str(exc)}, status_code=504
        )
    status, kind = _FAILURES.get(type(exc), (502, "command_failed"))
    return JSONResponse({"error": kind, "detail": str(exc)}, status_code=status)


Endpoint = Callable[[Request], Awaitable[Response]]


def routes_for(link: OrchestratorLink) -> dict[str, Endpoint]:
    """The API's endpoints by path (bound to ``link``)."""

    def command(
        name: str,
        query: type[_Query] = _NoQuery,
        args: Callable[[Request, Any], list[Any]] = lambda request, q: [],
        shape: Callable[[dict[str, Any]], Any] = lambda data: data,
    ) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                parsed = parse_query(query, request)
                data = await link.acall(name, *args(request, parsed))
            except (QueryError, ControlError) as exc:
                return error_response(exc, link)
            return JSONResponse(shape(data))

        return endpoint

    def agent_name(request: Request, query: Any) -> list[Any]:
        return [request.path_params["name"]]

    def history_filters(request: Request, query: Any) -> list[Any]:
        return [query.filters()]

    def agent_filter(request: Request, query: Any) -> list[Any]:
        return [{"agent": query.agent}] if query.agent else []

    def health(data: dict[str, Any]) -> dict[str, Any]:
        return {
            "status": "ok",
            "orchestrator": data.get("name"),
            "socket": link.socket_path,
        }

    return {
        "/api/health": command("status", shape=health),
        "/api/orchestrator/status": command("status"),
        "/api/orchestrator/dependencies": command("dependencies"),
        "/api/orchestrator/stats": command("stats"),
        "/api/agents": command("ps"),
        "/api/agents/{name:path}": command(
            "status", args=agent_name, shape=mask_secrets
        ),
        "/api/history": command("history", HistoryQuery, args=history_filters),
        "/api/history/stats": command(
            "history-stats", HistoryStatsQuery, args=agent_filter
        ),
    }
