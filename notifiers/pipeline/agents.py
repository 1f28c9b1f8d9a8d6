"""What the pipeline knows of each agent: flapping, FATAL, quiet and recovery."""

from __future__ import annotations

import math
from collections import deque

from ..base import Notification, Severity
from ..templates import format_duration, render_alert
from .events import (
    _ERROR,
    _FATAL,
    _READY,
    _RESTARTING,
    _STARTED,
    _TERMINATED,
    _WATCHDOG,
    AGENT_FLAPPING,
    AGENT_RECOVERED,
)
from .grouping import _GroupingMixin
from .records import _Agent

__all__: list[str] = []


class _AgentsMixin(_GroupingMixin):
    """The agent-state part of :class:`~notifiers.pipeline.AlertPipeline`."""

    def _agent(self, name: str | None) -> _Agent:
        agent = self._agents.get(name)
        if agent is None:
            size = self.config.flap_threshold or 1
            agent = self._agents[name] = _Agent(name, deque(maxlen=size))
        return agent

    def _observe(
        self, agent: _Agent, n: Notification, now: float, out: list[Notification]
    ) -> bool:
        """Update what we know of the agent; True if ``n`` is consumed (flapping)."""
        event = n.event
        cfg = self.config
        if event in (_ERROR, _WATCHDOG, _FATAL):
            agent.last_failure = now
            agent.back_at = None
            if agent.incident_at is None:
                agent.incident_at = now
                agent.incident_wall = self._wall()
                agent.incident_errors = agent.incident_restarts = 0
            if event == _ERROR:
                agent.incident_errors += 1
            if event == _FATAL:
                agent.up = False
            elif event == _ERROR and cfg.flap_threshold is not None:
                return self._count_failure(agent, n, now, out)
        elif event == _READY:
            agent.up = True
            agent.ready_at = now
            if agent.incident_at is not None:
                agent.back_at = now
            self._schedule_stable(agent, now)
        elif event == _RESTARTING:
            agent.up = False
            if agent.incident_at is not None:
                agent.incident_restarts += 1
        elif event == _TERMINATED:
            agent.up = False
            if n.severity <= Severity.INFO and agent.back_at is not None:
                # Restarted, ran, and ended cleanly: that is a recovery too.
                self._stable(agent, now, out, ended=True)
        elif event == _STARTED and agent.quiet == "FATAL":
            self._end_quiet(agent)  # after FATAL only an operator starts it
        return False

    def _count_failure(
        self, agent: _Agent, n: Notification, now: float, out: list[Notification]
    ) -> bool:
        cfg = self.config
        failures = agent.failures
        failures.append(now)
        while failures and failures[0] < now - cfg.flap_window:
            failures.popleft()
        if agent.quiet is not None or len(failures) < (cfg.flap_threshold or 0):
            return False
        self._stats.flapping += 1
        span = now - failures[0]
        self._fold_groups(agent, now)
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
                "host": n.host,
            },
            self._templates,
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
        self._emit(flapping, now, out, synthesized=True)
        self._go_quiet(agent, "flapping")
        return True

    def _go_quiet(self, agent: _Agent, state: str) -> None:
        if agent.quiet == state:
            return
        if agent.quiet is not None:
            self._end_quiet(agent)  # flapping, then FATAL: keep the count so far
        agent.quiet = state
        agent.quiet_wall = self._wall()
        agent.quiet_count = 0

    def _end_quiet(self, agent: _Agent) -> None:
        if agent.quiet is not None and agent.quiet_count:
            self._note(
                agent,
                ("quiet", agent.quiet),
                agent.quiet_count,
                agent.quiet_wall,
                state=agent.quiet,
            )
        agent.quiet = None
        agent.quiet_count = 0

    def _schedule_stable(self, agent: _Agent, now: float) -> None:
        """Wake up when the agent may be stable, if a recovery message hangs on it."""
        if not self.config.recovery or agent.incident_at is None:
            return
        if agent.stable_due is None:
            agent.stable_due = now + self.config.stable_after
            self._push(agent.stable_due, "stable", agent.name, 0)

    def _check_stable(self, agent: _Agent, now: float, out: list[Notification]) -> None:
        if not agent.up:
            return
        since = max(agent.ready_at or -math.inf, agent.last_failure or -math.inf)
        if now >= since + self.config.stable_after:
            self._stable(agent, now, out)

    def _stable(
        self, agent: _Agent, now: float, out: list[Notification], *, ended: bool = False
    ) -> None:
        """The agent is fine again: end its quiet, send the recovery (if wanted)."""
        self._end_quiet(agent)
        self._forget_reported(agent)
        agent.failures.clear()
        started, back = agent.incident_at, agent.back_at
        if started is not None and back is not None and self.config.recovery:
            self._stats.recoveries += 1
            title, body, severity = render_alert(
                "agent_recovered",
                {
                    "agent": agent.name,
                    "duration": format_duration(back - started),
                    "since": self._time(agent.incident_wall, seconds=True),
                    "up_at": self._time(self._wall() - (now - back), seconds=True),
                    "errors": agent.incident_errors,
                    "restarts": agent.incident_restarts,
                    "stable_after": format_duration(self.config.stable_after),
                    "outcome": "then ended cleanly"
                    if ended
                    else f"stable for {format_duration(self.config.stable_after)}",
                },
                self._templates,
            )
            recovered = Notification(
                title,
                body,
                severity,
                agent=agent.name,
                event=AGENT_RECOVERED,
                generation=agent.generation,
            )
            self._emit(recovered, now, out, synthesized=True)
        agent.incident_at = agent.back_at = None
        agent.stable_due = None
