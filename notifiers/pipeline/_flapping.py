"""detect_flapping: an agent that keeps failing gets one "is flapping" alert."""

from __future__ import annotations

from typing import ClassVar

from ..base import Notification
from ..templates import format_duration, render_alert
from ._grouping import fold_groups
from ._quiet_agents import end_quiet, go_quiet
from ._rule import AlertRule
from ._state import Agent, Alert, PipelineState
from .events import AGENT_ERROR, AGENT_FATAL, AGENT_FLAPPING, AGENT_STARTED

__all__ = ["detect_flapping"]


class detect_flapping(AlertRule):
    """``flap_threshold`` AGENT_ERRORs of one agent within ``flap_window`` seconds send
    one "is flapping" alert (carrying the counts of its open groups), and the agent
    is quiet (:class:`hold_quiet_agents`) until it is stable again
    (:class:`detect_recovery`). After FATAL, an operator's start ends the quiet."""

    sees_taken: ClassVar[bool] = True  # it watches unforwarded events too

    def __call__(self, alert: Alert) -> bool:
        if alert.synthesized:
            return False
        n = alert.notification
        event = n.event
        state = alert.state
        if event == AGENT_ERROR:
            if state.config.flap_threshold is not None:
                return self._count(state, alert.agent, n, alert.now)
            return False
        if event == AGENT_FATAL:
            agent = alert.agent
            if not alert.forward and agent.quiet is not None:
                # No FATAL alert will carry the count: a report of its own.
                end_quiet(state, agent, alert.now, report="fatal")
        elif event == AGENT_STARTED:
            agent = alert.agent
            if agent.quiet == "FATAL":
                # After FATAL only an operator starts it: the start carries the
                # count, or, when it is not sent, a report does.
                report = None if alert.forward else "started"
                end_quiet(state, agent, alert.now, report=report)
        return False

    def _count(
        self, state: PipelineState, agent: Agent, n: Notification, now: float
    ) -> bool:
        cfg = state.config
        failures = agent.failures
        failures.append(now)
        oldest = now - cfg.flap_window
        while failures and failures[0] < oldest:
            failures.popleft()
        if agent.quiet is not None or len(failures) < (cfg.flap_threshold or 0):
            return False
        state.stats.flapping += 1
        span = now - failures[0]
        fold_groups(state, agent, now)
        title, body, severity = render_alert(
            "agent_flapping",
            {
                "agent": agent.name,
                "event": n.event,
                "count": len(failures),
                "span": format_duration(span),
                "window": format_duration(cfg.flap_window),
                "last": n.error or n.title,
                "stable_after": format_duration(cfg.stable_after),
                "reports": "reported every " + format_duration(cfg.held_report_interval)
                if cfg.held_report_interval is not None
                else "reported when it ends",
                "host": n.host,
            },
            state.templates,
        )
        flapping = Notification(
            title,
            body,
            severity,
            agent=agent.name,
            event=AGENT_FLAPPING,
            generation=n.generation,
            error=n.error,
            host=n.host,
        )
        state.emit(flapping, now)
        go_quiet(state, agent, "flapping")
        return True
