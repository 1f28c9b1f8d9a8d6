"""AlertPipeline: offer, due and flush; where each alert is routed; mutes at run time."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import heapq
import logging
import math

from pyorchestrate import OrchestratorEvent

from ..base import Notification
from .agents import _AgentsMixin
from .events import _FATAL, _event_name
from .records import Mute, PipelineStats, _Agent

__all__ = ["AlertPipeline"]

logger = logging.getLogger("notifiers.pipeline")


class AlertPipeline(_AgentsMixin):
    """Dedup, grouping, flapping, recovery, mutes and quiet hours (see :mod:`notifiers.pipeline`).

    Args:
        config: the rules (a :class:`PipelineConfig`, a mapping of its fields, or
            ``None`` for the defaults).
        clock: monotonic seconds (``time.monotonic``; a
            :class:`~pyorchestrate.testing.FakeClock` works).
        wall_clock: seconds since the epoch, for quiet hours, mutes and the times in
            texts. Default: ``time.time`` with the real clock; with another ``clock``,
            the wall time at construction moved on by that clock.
        muted: ``muted(agent, event) -> bool``; true drops the alert. Called under the
            pipeline's lock: keep it quick, and do not call the pipeline from it.
        templates: overrides of :data:`~notifiers.templates.PIPELINE_TEMPLATES`.
    """

    # ------------------------------------------------------------ public
    def now(self) -> float:
        """The pipeline's clock (monotonic seconds)."""
        return self._clock()

    def offer(
        self, notification: Notification, *, forward: bool = True
    ) -> list[Notification]:
        """Take one alert; return what to send now (in order).

        ``forward=False`` only tells the pipeline what happened (an event the preset
        does not send, e.g. AGENT_READY for recovery): it is never sent itself.
        """
        with self._lock:
            now = self._clock()
            out: list[Notification] = []
            self._collect_due(now, out)
            self._stats.offered += 1
            agent = self._agent(notification.agent)
            if notification.generation is not None:
                agent.generation = notification.generation
            if agent.quiet is not None or agent.incident_at is not None:
                self._check_stable(agent, now, out)
            consumed = self._observe(agent, notification, now, out, forward=forward)
            if forward and not consumed:
                self._route(agent, notification, now, out)
            if notification.event == _FATAL and self.config.quiet_after_fatal:
                self._go_quiet(agent, "FATAL")
            return out

    def due(self) -> list[Notification]:
        """The summaries, recoveries and digests whose time has come."""
        with self._lock:
            out: list[Notification] = []
            self._collect_due(self._clock(), out)
            return out

    def next_due(self) -> float | None:
        """When (on :meth:`now`'s clock) :meth:`due` next has something; ``None``: never."""
        with self._lock:
            heap = self._heap
            while heap and not self._valid(heap[0]):
                heapq.heappop(heap)
            return heap[0][0] if heap else None

    def flush(self) -> list[Notification]:
        """Everything pending, now (at detach): open groups' summaries, a report per
        agent of what was held back and not yet told (its quiet's count, and counts
        waiting for a next message, "+7 identical suppressed"), and the digest.

        Only counts whose report is muted are left; they are logged and dropped
        (``stats().notes_dropped``).
        """
        with self._lock:
            now = self._clock()
            out: list[Notification] = []
            self._collect_due(now, out)
            for group in list(self._groups.values()):
                if group.hidden:
                    self._summarise(group, now, out, final=True)
            for agent in self._agents.values():
                agent.stable_due = agent.report_due = None
                if agent.quiet_count or agent.notes:
                    self._report_held(agent, now, out, "detach")
            if self._held_total:
                self._emit_digest(out)
            self._heap.clear()
            self._digest_due = None
            dropped = 0
            for agent in self._agents.values():
                dropped += sum(note.count for note in agent.notes.values())
                agent.notes.clear()
            if dropped:
                self._stats.notes_dropped += dropped
                logger.info(
                    "alert pipeline flushed; %d muted alert(s) were never reported "
                    "in a later message",
                    dropped,
                )
            return out

    def mute(
        self,
        agent: str | None = None,
        event: str | OrchestratorEvent | None = None,
        *,
        seconds: float | None = None,
        until: _dt.datetime | None = None,
        reason: str = "",
    ) -> Mute:
        """Drop alerts of ``agent`` (a glob) and ``event`` for ``seconds`` or ``until``.

        ``None`` means every agent, or every event.

        Raises:
            ValueError: neither or both of ``seconds`` and ``until``; a bad event; a
                naive ``until``.
        """
        if (seconds is None) == (until is None):
            raise ValueError("give seconds= or until=, not both or neither")
        name = None if event is None else _event_name(event)
        with self._lock:
            if seconds is not None:
                if not seconds > 0:
                    raise ValueError("seconds: must be greater than 0")
                end = self._wall() + seconds
            else:
                assert until is not None
                if until.tzinfo is None or until.utcoffset() is None:
                    raise ValueError("until: needs a time zone")
                end = until.timestamp()
            mute = self._make_mute(agent, name, end, reason)
            self._mutes.append(mute)
            return mute

    def unmute(
        self,
        mute: Mute | None = None,
        *,
        agent: str | None = None,
        event: str | OrchestratorEvent | None = None,
    ) -> int:
        """End ``mute``, or every mute with this ``agent`` glob and ``event``; return how many."""
        name = None if event is None else _event_name(event)
        with self._lock:
            before = len(self._mutes)
            if mute is not None:
                self._mutes = [m for m in self._mutes if m is not mute]
            else:
                self._mutes = [
                    m for m in self._mutes if (m.agent, m.event) != (agent, name)
                ]
            return before - len(self._mutes)

    def mutes(self) -> list[Mute]:
        """The mutes still active."""
        with self._lock:
            wall = self._wall()
            self._mutes = [m for m in self._mutes if m.until > wall]
            return list(self._mutes)

    def stats(self) -> PipelineStats:
        """A snapshot of the counters."""
        with self._lock:
            return dataclasses.replace(self._stats)

    # ------------------------------------------------------------ routing
    def _route(
        self, agent: _Agent, n: Notification, now: float, out: list[Notification]
    ) -> None:
        event = n.event
        if self._is_muted(n.agent, event):
            self._stats.muted += 1
            self._note(agent, ("muted",), 1, self._wall())
            return
        if agent.quiet is not None and event != _FATAL:
            self._hold_quiet(agent, n, now)
            return
        if event == _FATAL:
            self._fold_groups(agent, now)
            self._end_quiet(agent)
            self._emit(n, now, out)
            return
        if self._holding(n):
            self._hold(n, 1)
            return
        spec = self._group_spec(n.agent, event)
        if spec is not None:
            self._group(agent, n, spec, now, out)
            return
        cfg = self.config
        if cfg.dedup_window is not None and n.severity >= cfg.dedup_min_severity:
            key = n.key
            dedup = self._dedup
            last = dedup.get(key)
            if last is not None and now - last < cfg.dedup_window:
                self._stats.deduplicated += 1
                self._note(
                    agent, ("dedup", key), 1, self._wall(), n.event, n.error or n.title
                )
                return
            dedup[key] = now
            dedup.move_to_end(key)
            while dedup:
                at = next(iter(dedup.values()))
                if now - at < cfg.dedup_window and len(dedup) <= cfg.max_keys:
                    break
                dedup.popitem(last=False)
        self._emit(n, now, out)

    # ------------------------------------------------------------ timers
    def _collect_due(self, now: float, out: list[Notification]) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            item = heapq.heappop(heap)
            if not self._valid(item):
                continue
            deadline, _, kind, ref, _ = item
            if kind == "group":
                self._close_window(self._groups[ref], deadline, out)
            elif kind == "report":
                agent = self._agents[ref]
                agent.report_due = None
                if agent.quiet is not None and agent.quiet_count:
                    self._report_held(agent, now, out, "still")
            elif kind == "stable":
                agent = self._agents[ref]
                agent.stable_due = None
                if agent.incident_at is None and agent.quiet is None:
                    continue
                self._check_stable(agent, now, out)
                if agent.incident_at is not None and agent.up:
                    since = max(
                        agent.ready_at or -math.inf, agent.last_failure or -math.inf
                    )
                    agent.stable_due = since + self.config.stable_after
                    self._push(agent.stable_due, "stable", agent.name, 0)
            else:
                wall = self._wall()
                if self._in_quiet_hours(wall):
                    self._digest_due = now + max(1e-3, self._quiet_valid_until - wall)
                    self._push(self._digest_due, "digest", None, 0)
                else:
                    self._emit_digest(out)

    def __repr__(self) -> str:
        return (
            f"<AlertPipeline {len(self._groups)} groups, {len(self._mutes)} mutes, "
            f"{self._held_total} held>"
        )
