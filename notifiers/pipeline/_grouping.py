"""group_alerts: alerts of one (agent, event) within a window become one summary."""

from __future__ import annotations

import fnmatch
from typing import Any, ClassVar

from ..base import Notification
from ..templates import format_duration, render_alert
from ._rule import AlertRule
from ._state import MIXED, Agent, Alert, Group, PipelineState

__all__ = ["group_alerts"]

_UNKNOWN: Any = object()  # (agent, event) not looked up yet


class group_alerts(AlertRule):
    """Alerts of one (agent, event) in ``group_events`` (or a matching
    :class:`GroupRule`) within the window become one summary: "worker-3: agent_error
    ×12 in 48 s"; the first of a window goes out at once (``group_send_first``)."""  # noqa: RUF002

    sees_taken: ClassVar[bool] = False

    def __call__(self, alert: Alert) -> bool:
        if alert.final:
            return False
        state = alert.state
        n = alert.notification
        spec = state.group_specs.get((n.agent, n.event), _UNKNOWN)
        if spec is _UNKNOWN:
            spec = _spec(state, n.agent, n.event)
        if spec is None:
            return False
        return self._group(state, alert, n, spec)

    def _group(
        self,
        state: PipelineState,
        alert: Alert,
        n: Notification,
        spec: tuple[float, bool],
    ) -> bool:
        now = alert.now
        gkey = (n.agent, n.event)
        group = state.groups.get(gkey)
        if group is None:
            group = state.groups[gkey] = Group(n.agent, n.event, *spec)
            alert.agent.groups.add(gkey)
        key = n.key
        wall = state.wall()
        if group.hidden == 0 and now >= group.deadline:  # no window open: a new one
            cfg = state.config
            group.count = 1
            group.first_at = group.last_at = now
            group.first_wall = group.last_wall = wall
            group.last = n
            group.severity = n.severity
            group.window_key = key
            group.deadline = now + group.window
            group.token += 1
            repeated = (
                cfg.dedup_window is not None
                and key == group.reported_key
                and now < group.reported_at + cfg.dedup_window
            )
            if group.send_first and not repeated:
                group.sent_first = True
                group.reported_key = key
                group.reported_at = now
                alert.final = True  # it goes out as it is: not deduplicated
                return False
            group.sent_first = False
            group.hidden = 1
            group.hidden_wall = wall
            state.stats.grouped += 1
            _schedule(state, group)
            return True
        if group.count == 0:  # a continuation window's first alert
            group.first_at = now
            group.first_wall = wall
            group.window_key = key
            group.severity = n.severity
        elif group.window_key is not MIXED and group.window_key != key:
            group.window_key = MIXED
        if group.hidden == 0:
            group.hidden_wall = wall
        group.count += 1
        group.hidden += 1
        group.last = n
        group.last_at = now
        group.last_wall = wall
        group.severity = max(group.severity, n.severity)
        state.stats.grouped += 1
        if not group.scheduled:
            _schedule(state, group)
        return True

    def flush(self, state: PipelineState) -> None:
        now = state.clock()
        for group in list(state.groups.values()):
            if group.hidden:
                _summarise(state, group, now, final=True)


def _spec(
    state: PipelineState, agent: str | None, event: str | None
) -> tuple[float, bool] | None:
    """(window, send_first) for alerts of ``agent`` and ``event``; ``None``: not grouped."""
    specs = state.group_specs
    if (agent, event) in specs:
        return specs[(agent, event)]
    spec: tuple[float, bool] | None = None
    cfg = state.config
    for rule in cfg.group_rules:
        if event in rule.events and any(
            fnmatch.fnmatchcase(agent or "", glob) for glob in rule.agents
        ):
            spec = None if rule.window is None else (rule.window, rule.send_first)
            break
    else:
        if cfg.group_window is not None and event in cfg.group_events:
            spec = (cfg.group_window, cfg.group_send_first)
    if len(specs) < 4 * cfg.max_keys:
        specs[(agent, event)] = spec
    return spec


def _schedule(state: PipelineState, group: Group) -> None:
    group.scheduled = True
    token = group.token

    def valid(deadline: float) -> bool:
        return group.scheduled and group.token == token

    def fire(deadline: float, now: float) -> None:
        _close_window(state, group, deadline)

    state.schedule(group.deadline, fire, valid)


def _close_window(state: PipelineState, group: Group, deadline: float) -> None:
    group.scheduled = False
    if not group.hidden:
        return
    cfg = state.config
    if (
        cfg.dedup_window is not None
        and group.window_key is not MIXED
        and group.window_key == group.reported_key
        and deadline < group.reported_at + cfg.dedup_window
    ):
        # Only repeats of what was last reported: wait out the dedup window.
        group.deadline = group.reported_at + cfg.dedup_window
        _schedule(state, group)
        return
    _summarise(state, group, deadline)


def _summarise(
    state: PipelineState, group: Group, now: float, *, final: bool = False
) -> None:
    last = group.last
    assert last is not None
    hidden = group.hidden
    state.stats.summaries += 1
    title, body, _ = render_alert(
        "alert_group",
        {
            "agent": group.agent,
            "event": group.event,
            "count": group.count,
            "hidden": hidden,
            "span": format_duration(group.last_at - group.first_at),
            "window": format_duration(group.window),
            "first": state.time(group.first_wall, seconds=True),
            "last_time": state.time(group.last_wall, seconds=True),
            "first_sent": " (the first was sent on its own)"
            if group.sent_first
            else "",
            "last": last.error or last.title,
            "host": last.host,
        },
        state.templates,
    )
    summary = Notification(
        title,
        body,
        group.severity,
        agent=group.agent,
        event=group.event,
        generation=last.generation,
        error=last.error,
        host=last.host,
    )
    group.reported_key = None if group.window_key is MIXED else group.window_key
    group.reported_at = now
    # A continuation window starts now: while alerts keep coming, one summary per
    # window; a window without alerts closes the group.
    group.count = group.hidden = 0
    group.sent_first = False
    group.window_key = None
    group.deadline = now if final else now + group.window
    group.token += 1
    state.emit(summary, now, count=hidden)


def fold_groups(state: PipelineState, agent: Agent, now: float) -> None:
    """Close the agent's open groups; their counts go on its next message (a flapping
    or FATAL alert comes next)."""
    for gkey in agent.groups:
        group = state.groups.get(gkey)
        if group is None or not group.hidden:
            continue
        last = group.last
        state.note(
            agent,
            ("group", gkey),
            group.hidden,
            group.hidden_wall,
            group.event,
            (last.error or last.title) if last else None,
        )
        group.count = group.hidden = 0
        group.deadline = now
        group.token += 1
        group.scheduled = False
    forget_reported(state, agent)


def forget_reported(state: PipelineState, agent: Agent) -> None:
    """What comes after a flapping/FATAL alert or a recovery is news again."""
    for gkey in agent.groups:
        group = state.groups.get(gkey)
        if group is not None:
            group.reported_key = None
