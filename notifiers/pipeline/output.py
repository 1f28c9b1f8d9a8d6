"""Output: what is sent, with the counts noted for the agent's next message."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..base import Notification
from ..templates import render_alert
from .quiet import _QuietHoursMixin
from .records import _MAX_NOTES, _Agent, _Note

__all__: list[str] = []


class _OutputMixin(_QuietHoursMixin):
    """The output part of :class:`~notifiers.pipeline.AlertPipeline`."""

    def _emit(
        self,
        n: Notification,
        now: float,
        out: list[Notification],
        *,
        synthesized: bool = False,
        count: int = 1,
    ) -> None:
        if synthesized and self._is_muted(n.agent, n.event):
            self._stats.muted += 1
            return
        if self._holding(n):
            self._hold(n, count)
            return
        agent = self._agents.get(n.agent)
        if agent is not None and agent.notes:
            lines = [
                self._note_text(agent, k, note, n) for k, note in agent.notes.items()
            ]
            agent.notes.clear()
            body = "\n".join([*lines, n.body]) if n.body else "\n".join(lines)
            n = dataclasses.replace(n, body=body)
        self._stats.sent += 1
        out.append(n)

    def _note(
        self,
        agent: _Agent,
        key: Any,
        count: int,
        since: float,
        event: str | None = None,
        last: str | None = None,
        *,
        state: str | None = None,
    ) -> None:
        note = agent.notes.get(key)
        if note is None:
            if len(agent.notes) >= _MAX_NOTES:
                key = ("other",)
                note = agent.notes.get(key)
            if note is None:
                agent.notes[key] = _Note(count, since, event, last, state)
                return
        note.count += count
        note.last = last if last is not None else note.last

    def _note_text(self, agent: _Agent, key: Any, note: _Note, n: Notification) -> str:
        kind = key[0]
        fields: dict[str, Any] = {
            "agent": agent.name,
            "count": note.count,
            "since": self._time(note.since),
            "event": note.event or "alerts",
            "last": note.last,
            "state": note.state,
        }
        if kind == "dedup" and key[1] == n.key:
            name = "note_identical"
        elif kind == "muted":
            name = "note_muted"
        elif kind == "quiet":
            name = "note_quiet"
        else:
            name = "note_suppressed"
        return render_alert(name, fields, self._templates)[1]
