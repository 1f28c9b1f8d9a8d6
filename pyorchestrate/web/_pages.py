"""The server-rendered pages: overview, one agent, events, alerts.

Jinja2 with autoescape on for every template: an agent called
``<script>alert(1)</script>`` or an error holding HTML is text on the page. The
pages then follow the orchestrator through ``/api/stream`` (``static/app.js``),
which writes values with ``textContent`` only. A page rendered while the
orchestrator does not answer is a 503 that says "disconnected" and reconnects.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote

import anyio.to_thread
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import Field, field_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from ..core.errors import AgentNotFound, ControlError
from ..core.events import OrchestratorEvent, Severity
from ._actions import ACTIONS
from ._alerts import panel_error
from ._api import EventQuery, QueryError, error_response, mask_secrets, parse_query
from ._config import WebConfig
from ._link import OrchestratorLink
from ._panels import AlertsPanel

__all__ = ["EventsPageQuery", "Pages", "build_runs"]

logger = logging.getLogger(__name__)

_FAILING = frozenset({"FAILED", "FATAL", "BACKOFF", "QUARANTINED"})


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return ""
    s = int(seconds)
    days, hours, minutes, rest = s // 86400, s % 86400 // 3600, s % 3600 // 60, s % 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {rest}s"
    return f"{rest}s"


def _next_run(seconds: object) -> str:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return ""
    return f"in {seconds:.1f}s"


def _exit_text(agent: Mapping[str, Any]) -> str:
    if agent.get("signal"):
        return str(agent["signal"])
    code = agent.get("exit_code")
    return "" if code is None else str(code)


def _clock(iso: object) -> str:
    text = str(iso or "")
    _, sep, tail = text.partition("T")
    return tail[:12] if sep else text


def _stamp(epoch: object) -> str:
    """Epoch seconds as local ``YYYY-MM-DD HH:MM:SS`` (empty for none)."""
    if not isinstance(epoch, int | float) or isinstance(epoch, bool):
        return ""
    return _dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def _details(data: object) -> str:
    if not isinstance(data, Mapping):
        return ""
    return " ".join(
        f"{key}={data[key]}"
        for key in sorted(data)
        if key not in ("traceback", "output_tail")
    )


def build_runs(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An agent's runs from its events, newest first: each ``started``, ``ended``
    (ISO times; ``None`` while running), ``outcome`` (``running``, ``ok``,
    ``failed``, ``killed``) and ``detail``."""
    runs: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for event in events:
        name = event.get("event_name")
        if name == OrchestratorEvent.AGENT_STARTED.value:
            current = {
                "started": event.get("timestamp"),
                "ended": None,
                "outcome": "running",
                "detail": "",
            }
            runs.append(current)
        elif name == OrchestratorEvent.AGENT_TERMINATED.value and current is not None:
            data = event.get("data") or {}
            current["ended"] = event.get("timestamp")
            if data.get("signal"):
                current["outcome"] = "killed"
                current["detail"] = str(data["signal"])
            elif event.get("severity") in ("ERROR", "CRITICAL") or data.get(
                "exit_code"
            ) not in (None, "0", "None"):
                current["outcome"] = "failed"
                current["detail"] = f"exit {data.get('exit_code')}"
            else:
                current["outcome"] = "ok"
            current = None
    return list(reversed(runs[-20:]))


class EventsPageQuery(EventQuery):
    """The events page's filters (the form's empty choices mean "all")."""

    agent: str | None = Field(default=None, min_length=1)
    severity: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    follow: bool = False

    @field_validator("agent", "event_type", mode="before")
    @classmethod
    def _empty_is_all(cls, value: object) -> object:
        return None if value == "" else value


class Pages:
    """The HTML pages over ``link``."""

    def __init__(
        self,
        link: OrchestratorLink,
        config: WebConfig,
        alerts: AlertsPanel | None = None,
    ) -> None:
        self.link = link
        self.config = config
        self.alerts_panel = alerts
        env = Environment(
            loader=PackageLoader("pyorchestrate.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )
        env.filters.update(
            duration=_duration,
            next_run=_next_run,
            exit_text=_exit_text,
            clock=_clock,
            details=_details,
            stamp=_stamp,
        )
        env.globals["agent_url"] = lambda name: "/agents/" + quote(str(name), safe="/")
        self.templates = Jinja2Templates(env=env)

    def _render(
        self, request: Request, name: str, status_code: int = 200, **context: Any
    ) -> Response:
        context.setdefault("connected", True)
        context.setdefault("error", None)
        context.setdefault("actions", [])
        return self.templates.TemplateResponse(
            request,
            name,
            context,
            status_code=status_code,
            headers={"Cache-Control": "no-store"},
        )

    async def overview(self, request: Request) -> Response:
        try:
            ps = await self.link.acall("ps")
            status = await self.link.acall("status")
        except ControlError as exc:
            return self._render(
                request,
                "overview.html",
                503,
                page="overview",
                title="Overview",
                stream_url="/api/stream",
                ps=None,
                status=None,
                agents=[],
                failing=0,
                connected=False,
                error=str(exc),
            )
        agents = ps.get("agents") or []
        return self._render(
            request,
            "overview.html",
            page="overview",
            title=status.get("name") or "Overview",
            stream_url="/api/stream",
            ps=ps,
            status=status,
            agents=agents,
            failing=sum(a.get("lifecycle_state") in _FAILING for a in agents),
        )

    async def agent(self, request: Request) -> Response:
        name = request.path_params["name"]
        stream_url = "/api/stream?" + _query({"agent": name})
        common: dict[str, Any] = {
            "page": "agent",
            "title": name,
            "agent_name": name,
            "stream_url": stream_url,
        }
        try:
            agent = mask_secrets(await self.link.acall("status", name))
            history = await self.link.acall(
                "history", {"agent": name, "last": self.config.history_limit}
            )
        except AgentNotFound as exc:
            return self._render(
                request, "agent.html", 404, agent=None, error=str(exc), **common
            )
        except ControlError as exc:
            return self._render(
                request,
                "agent.html",
                503,
                agent=None,
                connected=False,
                error=str(exc),
                **common,
            )
        events = history.get("events") or []
        return self._render(
            request,
            "agent.html",
            agent=agent,
            alert_mute=await self._agent_mute(name),
            events=list(reversed(events)),
            runs=build_runs(events),
            config_json=json.dumps(agent.get("config") or {}, indent=2, sort_keys=True),
            actions=sorted(self.config.allowed_actions & ACTIONS),
            **common,
        )

    async def events(self, request: Request) -> Response:
        try:
            query = parse_query(EventsPageQuery, request)
        except QueryError as exc:
            return error_response(exc, self.link)
        filters: dict[str, Any] = {"last": self.config.history_limit}
        if query.agent:
            filters["agent"] = query.agent
        if query.event_type:
            filters["event_name"] = query.event_type
        stream: dict[str, str] = {"table": "false"}
        if query.agent:
            stream["agent"] = query.agent
        if query.event_type:
            stream["event_type"] = query.event_type
        common: dict[str, Any] = {
            "page": "events",
            "title": "Events",
            "stream_url": "/api/stream?" + _query(stream),
            "query": query,
            "event_names": sorted(event.value for event in OrchestratorEvent),
            "severities": [severity.name for severity in Severity],
        }
        try:
            history = await self.link.acall("history", filters)
            ps = await self.link.acall("ps")
        except ControlError as exc:
            return self._render(
                request,
                "events.html",
                503,
                events=[],
                agent_names=[],
                connected=False,
                error=str(exc),
                **common,
            )
        floor = Severity[query.severity]
        events = [
            event
            for event in history.get("events") or []
            if Severity[str(event.get("severity", "INFO"))] >= floor
        ]
        return self._render(
            request,
            "events.html",
            events=list(reversed(events)),
            agent_names=sorted(str(a.get("name")) for a in ps.get("agents") or []),
            **common,
        )

    async def _agent_mute(self, name: str) -> dict[str, Any] | None:
        """For an operator's agent page with an Alerts panel: ``{"muted": mute or
        None}`` (a mute of exactly this agent); else ``None`` (no button)."""
        panel = self.alerts_panel
        if panel is None or "mute" not in self.config.allowed_actions:
            return None
        try:
            data = await anyio.to_thread.run_sync(panel.alerts)
        except Exception:  # the Alerts page says why; no button here
            logger.exception("the alerts panel failed")
            return None
        for mute in data.get("mutes") or []:
            if mute.get("kind") == "agent" and mute.get("value") == name:
                return {"muted": mute}
        return {"muted": None}

    async def alerts(self, request: Request) -> Response:
        """Channels, outbox and mutes of the notifier state (404 without one);
        mute/unmute forms for the ``operator`` preset."""
        common: dict[str, Any] = {
            "page": "alerts",
            "title": "Alerts",
            "stream_url": "/api/stream?table=false&events=false&alerts=true",
        }
        panel = self.alerts_panel
        if panel is None:
            return self._render(request, "alerts.html", 404, alerts=None, **common)
        try:
            data = await anyio.to_thread.run_sync(panel.alerts)
        except Exception as exc:  # the provider's failure: a 503 that says it
            logger.error("the alerts panel failed: %s: %s", type(exc).__name__, exc)
            return self._render(
                request,
                "alerts.html",
                503,
                alerts=None,
                alerts_error=panel_error(exc),
                **common,
            )
        can_mute = "mute" in self.config.allowed_actions
        return self._render(
            request,
            "alerts.html",
            alerts=data,
            mute_actions=["mute", "unmute"] if can_mute else [],
            **common,
        )


def _query(values: Mapping[str, str]) -> str:
    return "&".join(f"{quote(k)}={quote(str(v), safe='')}" for k, v in values.items())
