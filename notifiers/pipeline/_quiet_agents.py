"""hold_quiet_agents: a flapping or FATAL agent's alerts are counted, not sent."""

from __future__ import annotations

from typing import ClassVar

from ..base import Notification, Severity
from ..templates import format_duration, render_alert
from ._grouping import fold_groups
from ._rule import AlertRule
from ._state import Agent, Alert, PipelineState
from .events import AGENT_FATAL, AGENT_HELD_BACK

__all__ = ["hold_quiet_agents"]


class hold_quiet_agents(AlertRule):
    """An AGENT_FATAL is sent once, as it is (``quiet_after_fatal``), and then the
    agent is quiet; so is a flapping agent (:class:`detect_flapping`). A quiet agent's
    alerts are counted, not sent; what the quiet holds back is always reported: on
    the agent's next message, or in a report of its own ("⏸ worker-3: 12 alerts held
    back, …") every ``held_report_interval`` seconds while it stays quiet, when it
    ends, and at :meth:`~AlertPipeline.flush`."""

    sees_taken: ClassVar[bool] = True  # a muted or unforwarded FATAL still quiets

    def __call__(self, alert: Alert) -> bool:
        if alert.synthesized:
            return False
        state = alert.state
        if alert.notification.event == AGENT_FATAL:
            agent = alert.agent
            if not alert.taken:
                fold_groups(state, agent, alert.now)
                end_quiet(state, agent)
                alert.final = True  # never grouped or deduplicated
            if state.config.quiet_after_fatal:
                go_quiet(state, agent, "FATAL")
            return False
        if alert.taken:
            return False
        agent = alert.agent
        if agent.quiet is None:
            return False
        _hold(state, agent, alert.notification, alert.now)
        return True

    def flush(self, state: PipelineState) -> None:
        now = state.clock()
        for agent in state.agents.values():
            agent.stable_due = agent.report_due = None
            if agent.quiet_count or agent.notes:
                report_held(state, agent, now, "detach")


def _hold(state: PipelineState, agent: Agent, n: Notification, now: float) -> None:
    """Count ``n`` as held back by the agent's quiet; schedule its report."""
    agent.quiet_count += 1
    agent.quiet_last = n.error or n.title
    if n.severity > agent.quiet_severity:
        agent.quiet_severity = n.severity
    state.stats.quiet += 1
    interval = state.config.held_report_interval
    if interval is not None and agent.report_due is None:
        agent.report_due = now + interval

        def valid(deadline: float) -> bool:
            return agent.report_due == deadline

        def fire(deadline: float, now: float) -> None:
            agent.report_due = None
            if agent.quiet is not None and agent.quiet_count:
                report_held(state, agent, now, "still")

        state.schedule(agent.report_due, fire, valid)


def go_quiet(state: PipelineState, agent: Agent, quiet: str) -> None:
    """The agent is quiet now (``flapping`` or ``FATAL``)."""
    if agent.quiet == quiet:
        return
    if agent.quiet is not None:
        end_quiet(state, agent)  # flapping, then FATAL: keep the count so far
    agent.quiet = quiet
    _restart_count(state, agent)


def _restart_count(state: PipelineState, agent: Agent) -> None:
    agent.quiet_wall = state.wall()
    agent.quiet_count = 0
    agent.quiet_last = None
    agent.quiet_severity = Severity.DEBUG


def _to_note(state: PipelineState, agent: Agent) -> None:
    """Put what the quiet held back so far in a note (the quiet goes on)."""
    if agent.quiet is not None and agent.quiet_count:
        state.note(
            agent,
            ("quiet", agent.quiet),
            agent.quiet_count,
            agent.quiet_wall,
            last=agent.quiet_last,
            state=agent.quiet,
        )
    _restart_count(state, agent)


def end_quiet(
    state: PipelineState,
    agent: Agent,
    now: float = 0.0,
    *,
    report: str | None = None,
) -> None:
    """End the agent's quiet. Its count goes on the agent's next message, or, with
    ``report`` (how it ended), in a report of its own now."""
    if report is not None:
        report_held(state, agent, now, report)
    else:
        _to_note(state, agent)
    agent.quiet = None
    agent.quiet_count = 0


def report_held(state: PipelineState, agent: Agent, now: float, outcome: str) -> None:
    """One message with what the agent's quiet held back and its other notes.

    ``outcome``: ``still`` (the periodic report), ``stable``, ``started``, ``fatal``
    or ``detach``. Nothing is sent if nothing is held. Muted, the counts wait for the
    agent's next message; in quiet hours they go into the digest.
    """
    quiet = agent.quiet
    last = agent.quiet_last
    severity = max(Severity.DEBUG, agent.quiet_severity)
    _to_note(state, agent)
    total = sum(note.count for note in agent.notes.values())
    if not total:
        return
    if last is None:
        last = next(
            (note.last for note in reversed(agent.notes.values()) if note.last), None
        )
    cfg = state.config
    every = cfg.held_report_interval
    interval = "-" if every is None else format_duration(every)
    stable_after = format_duration(cfg.stable_after)
    outcome_text, detail = _held_texts(outcome, quiet, interval, stable_after)
    fields = {
        "agent": agent.name,
        "count": total,
        "state": quiet,
        "last": last,
        "stable_after": stable_after,
        "interval": interval,
        "outcome": outcome_text,
        "detail": detail,
    }
    title, body, floor = render_alert("agent_held_back", fields, state.templates)
    message = Notification(
        title,
        body,
        max(floor, severity),
        agent=agent.name,
        event=AGENT_HELD_BACK,
        generation=agent.generation,
        error=last,
    )
    if state.emit(message, now, count=total, notes=True):
        state.stats.reports += 1


def _held_texts(
    outcome: str, quiet: str | None, interval: str, stable_after: str
) -> tuple[str, str]:
    """The ``outcome`` and ``detail`` of a report of held-back alerts."""
    if outcome == "still":
        if quiet == "FATAL":
            return "still FATAL", (
                f"It is FATAL: its alerts are held back and counted every {interval} "
                "until an operator starts it."
            )
        return f"still {quiet}", (
            f"It is still {quiet}: its alerts are held back and counted every "
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
