"""detect_recovery: what the pipeline knows of each agent's health, and its recovery."""

from __future__ import annotations

import math
from typing import ClassVar

from ..base import Notification, Severity
from ..templates import format_duration, render_alert
from ._grouping import forget_reported
from ._quiet_agents import end_quiet
from ._rule import AlertRule
from ._state import Agent, Alert, PipelineState
from .events import (
    AGENT_ERROR,
    AGENT_FATAL,
    AGENT_READY,
    AGENT_RECOVERED,
    AGENT_RESTARTING,
    AGENT_TERMINATED,
    AGENT_WATCHDOG_TIMEOUT,
)

__all__ = ["detect_recovery"]

_FAILURES = frozenset({AGENT_ERROR, AGENT_WATCHDOG_TIMEOUT, AGENT_FATAL})


class detect_recovery(AlertRule):
    """Follows each agent (up, failing, READY again). An agent that is READY with no
    error for ``stable_after`` seconds is stable again: its quiet ends, and with
    ``recovery`` on, a failed agent gives "✔ worker-3 recovered after 42 s" (from its
    first failure to the READY that held; a clean end after a restart counts too)."""

    sees_taken: ClassVar[bool] = True  # it watches unforwarded events too

    def __call__(self, alert: Alert) -> bool:
        if alert.synthesized:
            return False
        agent = alert.agent
        now = alert.now
        state = alert.state
        if agent.up and (agent.quiet is not None or agent.incident_at is not None):
            _check_stable(state, agent, now)
        n = alert.notification
        event = n.event
        if event in _FAILURES:
            agent.last_failure = now
            agent.back_at = None
            if agent.incident_at is None:
                agent.incident_at = now
                agent.incident_wall = state.wall()
                agent.incident_errors = agent.incident_restarts = 0
            if event == AGENT_ERROR:
                agent.incident_errors += 1
            elif event == AGENT_FATAL:
                agent.up = False
        elif event == AGENT_READY:
            agent.up = True
            agent.ready_at = now
            if agent.incident_at is not None:
                agent.back_at = now
            _schedule_stable(state, agent, now)
        elif event == AGENT_RESTARTING:
            agent.up = False
            if agent.incident_at is not None:
                agent.incident_restarts += 1
        elif event == AGENT_TERMINATED:
            agent.up = False
            if n.severity <= Severity.INFO and agent.back_at is not None:
                # Restarted, ran, and ended cleanly: that is a recovery too.
                _stable(state, agent, now, ended=True)
        return False


def _schedule_stable(state: PipelineState, agent: Agent, now: float) -> None:
    """Wake up when the agent may be stable, if a recovery message or the end of its
    flapping quiet (and the report of what it held back) hangs on it."""
    if agent.incident_at is None:
        return
    if not state.config.recovery and agent.quiet != "flapping":
        return
    if agent.stable_due is None:
        _wake_at(state, agent, now + state.config.stable_after)


def _wake_at(state: PipelineState, agent: Agent, deadline: float) -> None:
    agent.stable_due = deadline

    def valid(deadline: float) -> bool:
        return agent.stable_due == deadline

    def fire(deadline: float, now: float) -> None:
        agent.stable_due = None
        if agent.incident_at is None and agent.quiet is None:
            return
        _check_stable(state, agent, now)
        if agent.incident_at is not None and agent.up:
            since = max(agent.ready_at or -math.inf, agent.last_failure or -math.inf)
            _wake_at(state, agent, since + state.config.stable_after)

    state.schedule(deadline, fire, valid)


def _check_stable(state: PipelineState, agent: Agent, now: float) -> None:
    if not agent.up:
        return
    since = max(agent.ready_at or -math.inf, agent.last_failure or -math.inf)
    if now >= since + state.config.stable_after:
        _stable(state, agent, now)


def _stable(
    state: PipelineState, agent: Agent, now: float, *, ended: bool = False
) -> None:
    """The agent is fine again: end its quiet, send the recovery (if wanted), which
    carries what the quiet held back; without one, a report does."""
    cfg = state.config
    started, back = agent.incident_at, agent.back_at
    recovers = started is not None and back is not None and cfg.recovery
    quiet = agent.quiet is not None
    end_quiet(state, agent, now, report="stable" if quiet and not recovers else None)
    forget_reported(state, agent)
    agent.failures.clear()
    if recovers:
        assert started is not None and back is not None
        state.stats.recoveries += 1
        stable_after = format_duration(cfg.stable_after)
        title, body, severity = render_alert(
            "agent_recovered",
            {
                "agent": agent.name,
                "duration": format_duration(back - started),
                "since": state.time(agent.incident_wall, seconds=True),
                "up_at": state.time(state.wall() - (now - back), seconds=True),
                "errors": agent.incident_errors,
                "restarts": agent.incident_restarts,
                "stable_after": stable_after,
                "outcome": "then ended cleanly"
                if ended
                else f"stable for {stable_after}",
            },
            state.templates,
        )
        recovered = Notification(
            title,
            body,
            severity,
            agent=agent.name,
            event=AGENT_RECOVERED,
            generation=agent.generation,
        )
        state.emit(recovered, now)
    agent.incident_at = agent.back_at = None
    agent.stable_due = None
