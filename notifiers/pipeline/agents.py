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
    AGENT_HELD_BACK,
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
        self,
        agent: _Agent,
        n: Notification,
        now: float,
        out: list[Notification],
        *,
        forward: bool = True,
    ) -> bool:
        """Update what we know of the agent; True if ``n`` is consumed (flapping).

        ``forward``: ``n`` will be routed (and may carry the agent's notes); if not,
        a quiet that ends here is reported in a message of its own.
        """
        event = n.event
        cfg = self.config
        if event == _FATAL and not forward and agent.quiet is not None:
            self._end_quiet(
                agent, now, out, report="fatal"
            )  # no FATAL alert to carry it
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
            # After FATAL only an operator starts it: the start carries the count,
            # or, when it is not sent, a report does.
            self._end_quiet(agent, now, out, report=None if forward else "started")
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
                "reports": "reported every " + format_duration(cfg.held_report_interval)
                if cfg.held_report_interval is not None
                else "reported when it ends",
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
        self._restart_quiet_count(agent)

    def _hold_quiet(self, agent: _Agent, n: Notification, now: float) -> None:
        """Count ``n`` as held back by the agent's quiet; schedule its report."""
        agent.quiet_count += 1
        agent.quiet_last = n.error or n.title
        agent.quiet_severity = max(agent.quiet_severity, n.severity)
        self._stats.quiet += 1
        interval = self.config.held_report_interval
        if interval is not None and agent.report_due is None:
            agent.report_due = now + interval
            self._push(agent.report_due, "report", agent.name, 0)

    def _restart_quiet_count(self, agent: _Agent) -> None:
        agent.quiet_wall = self._wall()
        agent.quiet_count = 0
        agent.quiet_last = None
        agent.quiet_severity = Severity.DEBUG

    def _quiet_to_note(self, agent: _Agent) -> None:
        """Put what the quiet held back so far in a note (the quiet goes on)."""
        if agent.quiet is not None and agent.quiet_count:
            self._note(
                agent,
                ("quiet", agent.quiet),
                agent.quiet_count,
                agent.quiet_wall,
                last=agent.quiet_last,
                state=agent.quiet,
            )
        self._restart_quiet_count(agent)

    def _end_quiet(
        self,
        agent: _Agent,
        now: float = 0.0,
        out: list[Notification] | None = None,
        *,
        report: str | None = None,
    ) -> None:
        """End the agent's quiet. Its count goes on the agent's next message, or,
        with ``report`` (how it ended) and ``out``, in a report of its own now."""
        if report is not None and out is not None:
            self._report_held(agent, now, out, report)
        else:
            self._quiet_to_note(agent)
        agent.quiet = None
        agent.quiet_count = 0

    def _report_held(
        self, agent: _Agent, now: float, out: list[Notification], outcome: str
    ) -> None:
        """One message with what the agent's quiet held back and its other notes.

        ``outcome``: ``still`` (the periodic report), ``stable``, ``started``,
        ``fatal`` or ``detach``. Nothing is sent if nothing is held. Muted, the
        counts wait for the agent's next message; in quiet hours they go into the
        digest.
        """
        state = agent.quiet
        last = agent.quiet_last
        severity = max(Severity.DEBUG, agent.quiet_severity)
        self._quiet_to_note(agent)
        total = sum(note.count for note in agent.notes.values())
        if not total:
            return
        if last is None:
            last = next(
                (note.last for note in reversed(agent.notes.values()) if note.last),
                None,
            )
        cfg = self.config
        every = cfg.held_report_interval
        interval = "-" if every is None else format_duration(every)
        stable_after = format_duration(cfg.stable_after)
        outcome_text, detail = _held_texts(outcome, state, interval, stable_after)
        fields = {
            "agent": agent.name,
            "count": total,
            "state": state,
            "last": last,
            "stable_after": stable_after,
            "interval": interval,
            "outcome": outcome_text,
            "detail": detail,
        }
        title, body, floor = render_alert("agent_held_back", fields, self._templates)
        report = Notification(
            title,
            body,
            max(floor, severity),
            agent=agent.name,
            event=AGENT_HELD_BACK,
            generation=agent.generation,
            error=last,
        )
        if self._is_muted(report.agent, report.event):
            self._stats.muted += 1
            return
        if self._holding(report):
            self._hold(report, total)
            agent.notes.clear()
            return
        self._stats.reports += 1
        self._emit(report, now, out)

    def _schedule_stable(self, agent: _Agent, now: float) -> None:
        """Wake up when the agent may be stable, if a recovery message or the end of
        its flapping quiet (and the report of what it held back) hangs on it."""
        if agent.incident_at is None:
            return
        if not self.config.recovery and agent.quiet != "flapping":
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
        """The agent is fine again: end its quiet, send the recovery (if wanted),
        which carries what the quiet held back; without one, a report does."""
        started, back = agent.incident_at, agent.back_at
        recovers = started is not None and back is not None and self.config.recovery
        quiet = agent.quiet is not None
        self._end_quiet(
            agent, now, out, report="stable" if quiet and not recovers else None
        )
        self._forget_reported(agent)
        agent.failures.clear()
        if recovers:
            assert started is not None and back is not None
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


def _held_texts(
    outcome: str, state: str | None, interval: str, stable_after: str
) -> tuple[str, str]:
    """The ``outcome`` and ``detail`` of a report of held-back alerts."""
    if outcome == "still":
        if state == "FATAL":
            return "still FATAL", (
                f"It is FATAL: its alerts are held back and counted every {interval} "
                "until an operator starts it."
            )
        return f"still {state}", (
            f"It is still {state}: its alerts are held back and counted every "
            f"{interval} until it has run {stable_after} without an error."
        )
    if outcome == "stable":
        return "stable again", (
            f"It has run {stable_after} without an error: its alerts are sent again."
        )
    if outcome == "started":
        return "started again", "An operator started it: its alerts are sent again."
    if outcome == "fatal":
        return "now FATAL", "It is FATAL: no more automatic restarts."
    return "alerting stopped", "Alerting was detached before they were reported."
