"""Grouping: alerts of one (agent, event) within a window become one summary."""

from __future__ import annotations

import fnmatch

from ..base import Notification
from ..templates import format_duration, render_alert
from .output import _OutputMixin
from .records import _MIXED, _Agent, _Group

__all__: list[str] = []


class _GroupingMixin(_OutputMixin):
    """The grouping part of :class:`~notifiers.pipeline.AlertPipeline`."""

    def _group_spec(
        self, agent: str | None, event: str | None
    ) -> tuple[float, bool] | None:
        if (agent, event) in self._group_specs:
            return self._group_specs[(agent, event)]
        spec: tuple[float, bool] | None = None
        cfg = self.config
        for rule in cfg.group_rules:
            if event in rule.events and any(
                fnmatch.fnmatchcase(agent or "", glob) for glob in rule.agents
            ):
                spec = None if rule.window is None else (rule.window, rule.send_first)
                break
        else:
            if cfg.group_window is not None and event in cfg.group_events:
                spec = (cfg.group_window, cfg.group_send_first)
        if len(self._group_specs) < 4 * self.config.max_keys:
            self._group_specs[(agent, event)] = spec
        return spec

    def _group(
        self,
        agent: _Agent,
        n: Notification,
        spec: tuple[float, bool],
        now: float,
        out: list[Notification],
    ) -> None:
        gkey = (n.agent, n.event)
        group = self._groups.get(gkey)
        if group is None:
            group = self._groups[gkey] = _Group(n.agent, n.event, *spec)
            agent.groups.add(gkey)
        key = n.key
        wall = self._wall()
        if group.hidden == 0 and now >= group.deadline:  # no window open: a new one
            cfg = self.config
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
                self._emit(n, now, out)
            else:
                group.sent_first = False
                group.hidden = 1
                group.hidden_wall = wall
                self._stats.grouped += 1
                self._schedule_group(group)
            return
        if group.count == 0:  # a continuation window's first alert
            group.first_at = now
            group.first_wall = wall
            group.window_key = key
            group.severity = n.severity
        elif group.window_key is not _MIXED and group.window_key != key:
            group.window_key = _MIXED
        if group.hidden == 0:
            group.hidden_wall = wall
        group.count += 1
        group.hidden += 1
        group.last = n
        group.last_at = now
        group.last_wall = wall
        group.severity = max(group.severity, n.severity)
        self._stats.grouped += 1
        if not group.scheduled:
            self._schedule_group(group)

    def _schedule_group(self, group: _Group) -> None:
        group.scheduled = True
        self._push(group.deadline, "group", (group.agent, group.event), group.token)

    def _close_window(
        self, group: _Group, deadline: float, out: list[Notification]
    ) -> None:
        group.scheduled = False
        if not group.hidden:
            return
        cfg = self.config
        if (
            cfg.dedup_window is not None
            and group.window_key is not _MIXED
            and group.window_key == group.reported_key
            and deadline < group.reported_at + cfg.dedup_window
        ):
            # Only repeats of what was last reported: wait out the dedup window.
            group.deadline = group.reported_at + cfg.dedup_window
            self._schedule_group(group)
            return
        self._summarise(group, deadline, out)

    def _summarise(
        self, group: _Group, now: float, out: list[Notification], *, final: bool = False
    ) -> None:
        last = group.last
        assert last is not None
        hidden = group.hidden
        self._stats.summaries += 1
        title, body, _ = render_alert(
            "alert_group",
            {
                "agent": group.agent,
                "event": group.event,
                "count": group.count,
                "hidden": hidden,
                "span": format_duration(group.last_at - group.first_at),
                "window": format_duration(group.window),
                "first": self._time(group.first_wall, seconds=True),
                "last_time": self._time(group.last_wall, seconds=True),
                "first_sent": " (the first was sent on its own)"
                if group.sent_first
                else "",
                "last": last.error or last.title,
                "host": last.host,
            },
            self._templates,
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
        group.reported_key = None if group.window_key is _MIXED else group.window_key
        group.reported_at = now
        # A continuation window starts now: while alerts keep coming, one summary
        # per window; a window without alerts closes the group.
        group.count = group.hidden = 0
        group.sent_first = False
        group.window_key = None
        group.deadline = now if final else now + group.window
        group.token += 1
        self._emit(summary, now, out, synthesized=True, count=hidden)

    def _fold_groups(self, agent: _Agent, now: float) -> None:
        """Close the agent's open groups; their counts go on its next message."""
        for gkey in agent.groups:
            group = self._groups.get(gkey)
            if group is None or not group.hidden:
                continue
            last = group.last
            self._note(
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
        self._forget_reported(agent)

    def _forget_reported(self, agent: _Agent) -> None:
        """What comes after a flapping/FATAL alert or a recovery is news again."""
        for gkey in agent.groups:
            group = self._groups.get(gkey)
            if group is not None:
                group.reported_key = None
