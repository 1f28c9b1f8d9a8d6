"""AlertPipeline: the rules in a row, over one shared state, behind one lock."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import heapq
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pyorchestrate import OrchestratorEvent

from ..base import Notification
from ..state import Mute
from ..templates import Template
from ._dedup import drop_duplicates
from ._flapping import detect_flapping
from ._grouping import group_alerts
from ._mutes import MutedPredicate, drop_muted
from ._quiet_agents import hold_quiet_agents
from ._quiet_hours import hold_in_quiet_hours
from ._recovery import detect_recovery
from ._rule import AlertRule, RuleLike
from ._state import Alert, PipelineState, PipelineStats
from .config import PipelineConfig
from .events import event_name

__all__ = ["AlertPipeline", "default_rules"]

logger = logging.getLogger("notifiers.pipeline")


def default_rules(*, muted: MutedPredicate | None = None) -> list[AlertRule]:
    """The built-in rules, in the order they run (each reads its settings from the
    :class:`PipelineConfig`; a rule that is off there passes every alert on).

    Args:
        muted: ``muted(agent, event) -> bool`` for :class:`drop_muted`.
    """
    return [
        detect_recovery(),
        detect_flapping(),
        drop_muted(muted),
        hold_quiet_agents(),
        hold_in_quiet_hours(),
        group_alerts(),
        drop_duplicates(),
    ]


class AlertPipeline:
    """Dedup, grouping, flapping, recovery, mutes and quiet hours (see :mod:`notifiers.pipeline`).

    Each alert goes through ``rules`` in turn (an :class:`Alert` over the one
    :class:`PipelineState` they share); what no rule takes is sent.

    Args:
        config: the rules' settings (a :class:`PipelineConfig`, a mapping of its
            fields, or ``None`` for the defaults).
        clock: monotonic seconds (``time.monotonic``; a
            :class:`~pyorchestrate.testing.FakeClock` works).
        wall_clock: seconds since the epoch, for quiet hours, mutes and the times in
            texts. Default: ``time.time`` with the real clock; with another ``clock``,
            the wall time at construction moved on by that clock.
        muted: ``muted(agent, event) -> bool``; true drops the alert. Called under the
            pipeline's lock: keep it quick, and do not call the pipeline from it.
        templates: overrides of :data:`~notifiers.templates.PIPELINE_TEMPLATES`.
        rules: the rules, in order (:class:`AlertRule` objects or plain callables);
            default :func:`default_rules`. Add your own with
            ``rules=[*default_rules(), my_rule]``.

    Raises:
        TypeError: ``muted`` with ``rules`` (give it to :class:`drop_muted`).
    """

    def __init__(
        self,
        config: PipelineConfig | Mapping[str, Any] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] | None = None,
        muted: MutedPredicate | None = None,
        templates: Mapping[str, Template] | None = None,
        rules: Sequence[RuleLike] | None = None,
    ) -> None:
        self.config = PipelineConfig.parse(config)
        if rules is None:
            rules = default_rules(muted=muted)
        elif muted is not None:
            raise TypeError("muted= with rules=: give it to drop_muted(muted) instead")
        self.rules: tuple[RuleLike, ...] = tuple(rules)
        # Each rule with the watchers after it (rules with ``sees_taken``): once a
        # rule takes an alert, only those still see it.
        watchers = [
            (i, rule)
            for i, rule in enumerate(self.rules)
            if getattr(rule, "sees_taken", False)
        ]
        self._watchers = tuple(rule for _, rule in watchers)
        self._chain = tuple(
            (rule, tuple(w for j, w in watchers if j > i))
            for i, rule in enumerate(self.rules)
        )
        self._flushes = [
            flush
            for rule in reversed(self.rules)
            if callable(flush := getattr(rule, "flush", None))
        ]
        self._clock = clock
        self._lock = threading.Lock()
        state = self._state = PipelineState(
            self.config, clock=clock, wall_clock=wall_clock, templates=templates
        )
        state.run = self._run
        state.mutes = [
            Mute(glob, event, rule.until.timestamp(), rule.reason)
            for rule in self.config.mutes
            for glob in rule.agents
            for event in (sorted(rule.events) if rule.events else [None])
        ]

    @property
    def state(self) -> PipelineState:
        """What the rules share (read it under no lock only for a glance)."""
        return self._state

    def _run(self, alert: Alert) -> bool:
        """``alert`` through the rules; sent if none took it (then ``True``)."""
        if alert.taken:  # offered with forward=False: watched, never sent
            for watcher in self._watchers:
                watcher(alert)
            return False
        for rule, watchers in self._chain:
            if rule(alert):
                alert.taken = True
                for watcher in watchers:
                    watcher(alert)
                return False
        self._state.send(alert.notification)
        return True

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
            state = self._state
            now = self._clock()
            out: list[Notification] = []
            state.out = out
            heap = state.heap
            if heap and heap[0][0] <= now:
                state.collect_due(now)
            state.stats.offered += 1
            agent = state.agents.get(notification.agent) or state.agent(
                notification.agent
            )
            if notification.generation is not None:
                agent.generation = notification.generation
            self._run(Alert(notification, state, now, agent, forward))
            return out

    def due(self) -> list[Notification]:
        """The summaries, recoveries and digests whose time has come."""
        with self._lock:
            out: list[Notification] = []
            self._state.out = out
            self._state.collect_due(self._clock())
            return out

    def next_due(self) -> float | None:
        """When (on :meth:`now`'s clock) :meth:`due` next has something; ``None``: never."""
        with self._lock:
            heap = self._state.heap
            while heap and not heap[0][3](heap[0][0]):
                heapq.heappop(heap)
            return heap[0][0] if heap else None

    def flush(self) -> list[Notification]:
        """Everything pending, now (at detach): open groups' summaries, a report per
        agent of what was held back and not yet told (its quiet's count, and counts
        waiting for a next message, "+7 identical suppressed"), and the digest.

        Each rule's ``flush`` runs, last rule first. Only counts whose report is
        muted are left; they are logged and dropped (``stats().notes_dropped``).
        """
        with self._lock:
            state = self._state
            out: list[Notification] = []
            state.out = out
            state.collect_due(self._clock())
            for flush in self._flushes:
                flush(state)
            if state.held_total:
                state.emit_digest()
            state.heap.clear()
            state.digest_due = None
            dropped = 0
            for agent in state.agents.values():
                dropped += sum(note.count for note in agent.notes.values())
                agent.notes.clear()
            if dropped:
                state.stats.notes_dropped += dropped
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
        name = None if event is None else event_name(event)
        with self._lock:
            if seconds is not None:
                if not seconds > 0:
                    raise ValueError("seconds: must be greater than 0")
                end = self._state.wall() + seconds
            else:
                assert until is not None
                if until.tzinfo is None or until.utcoffset() is None:
                    raise ValueError("until: needs a time zone")
                end = until.timestamp()
            mute = Mute(agent, name, end, reason)
            self._state.mutes.append(mute)
            return mute

    def unmute(
        self,
        mute: Mute | None = None,
        *,
        agent: str | None = None,
        event: str | OrchestratorEvent | None = None,
    ) -> int:
        """End ``mute``, or every mute with this ``agent`` glob and ``event``; return how many."""
        name = None if event is None else event_name(event)
        with self._lock:
            state = self._state
            before = len(state.mutes)
            if mute is not None:
                state.mutes = [m for m in state.mutes if m is not mute]
            else:
                state.mutes = [
                    m for m in state.mutes if (m.agent, m.event) != (agent, name)
                ]
            return before - len(state.mutes)

    def mutes(self) -> list[Mute]:
        """The mutes still active."""
        with self._lock:
            state = self._state
            wall = state.wall()
            state.mutes = [m for m in state.mutes if m.active(wall)]
            return list(state.mutes)

    def stats(self) -> PipelineStats:
        """A snapshot of the counters."""
        with self._lock:
            return dataclasses.replace(self._state.stats)

    def __repr__(self) -> str:
        state = self._state
        return (
            f"<AlertPipeline {len(state.groups)} groups, {len(state.mutes)} mutes, "
            f"{state.held_total} held>"
        )
