"""The event history: bounded ring buffers with one dense sequence.

Most records go to one ring buffer of ``max_events``; heartbeats go to small per-agent
buckets (the last two per agent) so a chatty agent cannot push errors out.

Every record but a heartbeat takes the next ``seq``: 1, 2, 3, … with no gap, so a
consumer that sees a gap knows it missed events (they were evicted from the ring). A
heartbeat takes no number of its own (most heartbeats are dropped from their bucket,
and would leave holes): it carries the ``seq`` of the last record before it (0 before
the first), and sorts after that record. So ``after_seq=N`` gives the records from
``N + 1`` on, with the heartbeats that came after them; the heartbeats carrying ``N``
count as seen with record ``N``. Queries merge the stores in
:meth:`EventHistory.position` order and return the oldest first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping

from ..events import EventRecord, Severity

__all__ = ["EventHistory"]

logger = logging.getLogger(__name__)

_HEARTBEAT = "agent_heartbeat"
_NO_AGENT = "_none"


def _truncate(text: str, limit: int) -> str:
    if len(text) * 4 <= limit:  # no UTF-8 text this short can exceed the limit
        return text
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    keep = max(limit - 3, 0)
    return raw[:keep].decode("utf-8", errors="ignore") + "..."


class EventHistory:
    """Thread-safe history of :class:`EventRecord` items.

    Args:
        max_events: capacity of the main ring buffer.
        payload_bytes: each data value is cut to this many UTF-8 bytes, ending "...".
        heartbeats_per_agent: heartbeats kept per agent.
        clock: wall clock (``time.time``), injectable.
        mono_ns: monotonic clock in nanoseconds, injectable.
    """

    def __init__(
        self,
        max_events: int = 5000,
        payload_bytes: int = 256,
        *,
        heartbeats_per_agent: int = 2,
        clock: Callable[[], float] = time.time,
        mono_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.max_events = max_events
        self.payload_bytes = payload_bytes
        self.heartbeats_per_agent = heartbeats_per_agent
        self._clock = clock
        self._mono_ns = mono_ns
        self._lock = threading.Lock()
        self._seq = 0
        self._ring: deque[EventRecord] = deque(maxlen=max_events)
        self._beats: dict[str, deque[EventRecord]] = {}
        self._by_type: Counter[str] = Counter()
        self._by_agent_type: dict[str, Counter[str]] = {}
        self._evicted = 0
        self._listeners: tuple[Callable[[EventRecord], None], ...] = ()

    @staticmethod
    def position(record: EventRecord) -> tuple[int, bool, int]:
        """Where ``record`` sits in the history: by ``seq``; a heartbeat after the
        record whose ``seq`` it carries, heartbeats among themselves by their
        monotonic time.

        Positions only grow as records are made, so a stream can skip what it has
        already sent by comparing them.
        """
        beat = record.event_name == _HEARTBEAT
        return (record.seq, beat, record.t_mono_ns if beat else 0)

    def record(
        self,
        event_name: str,
        *,
        agent: str | None = None,
        category: str = "orchestrator",
        severity: Severity = Severity.INFO,
        data: Mapping[str, object] | None = None,
    ) -> EventRecord:
        """Store one record and return it (with its ``seq``; a heartbeat's is the
        last record's)."""
        limit = self.payload_bytes
        clean: dict[str, str] = {}
        if data:
            for key, value in data.items():
                if value is not None:
                    text = value if type(value) is str else str(value)
                    clean[key] = _truncate(text, limit)
        beat = event_name == _HEARTBEAT
        with self._lock:
            if not beat:
                self._seq += 1
            rec = EventRecord(
                seq=self._seq,
                t_wall=self._clock(),
                t_mono_ns=self._mono_ns(),
                category=category,
                event_name=event_name,
                agent=agent,
                severity=severity,
                data=clean,
            )
            if beat:
                bucket = self._beats.get(agent or _NO_AGENT)
                if bucket is None:
                    bucket = deque(maxlen=self.heartbeats_per_agent)
                    self._beats[agent or _NO_AGENT] = bucket
                bucket.append(rec)
            else:
                if len(self._ring) == self._ring.maxlen:
                    self._evicted += 1
                self._ring.append(rec)
            self._by_type[event_name] += 1
            if agent is not None:
                per_agent = self._by_agent_type.get(agent)
                if per_agent is None:
                    per_agent = self._by_agent_type[agent] = Counter()
                per_agent[event_name] += 1
            for listener in self._listeners:
                try:
                    listener(rec)
                except Exception:
                    logger.exception("history listener %r failed", listener)
        return rec

    def subscribe(
        self, listener: Callable[[EventRecord], None], *, after_seq: int | None = None
    ) -> tuple[list[EventRecord], Callable[[], None]]:
        """Call ``listener(record)`` for every new record, in ``seq`` order.

        The listener runs on the recording thread with the history's lock held, so it
        must only hand the record on (append to a queue), never block.

        Returns:
            ``(backlog, unsubscribe)``: the stored records after ``after_seq`` (none if
            it is ``None``), taken atomically with the subscription so nothing is
            missed or repeated, and a function that ends the subscription.
        """
        with self._lock:
            backlog: list[EventRecord] = []
            if after_seq is not None:
                backlog = sorted(
                    (r for r in self._all() if r.seq > after_seq), key=self.position
                )
            self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            with self._lock:
                self._listeners = tuple(x for x in self._listeners if x is not listener)

        return backlog, unsubscribe

    def _all(self) -> Iterable[EventRecord]:
        yield from self._ring
        for bucket in self._beats.values():
            yield from bucket

    def last(
        self,
        n: int = 100,
        *,
        agent: str | None = None,
        event_name: str | None = None,
        after_seq: int | None = None,
    ) -> list[EventRecord]:
        """Return up to ``n`` newest matching records, oldest first (``n <= 0``: none).

        ``event_name`` matches without regard to case (``AGENT_ERROR`` = ``agent_error``).
        ``after_seq=N`` keeps the records after record ``N``: records from ``N + 1``
        on, and the heartbeats that carry those numbers."""
        if n <= 0:
            return []
        wanted = event_name.lower() if event_name is not None else None
        with self._lock:
            found = [
                r
                for r in self._all()
                if (agent is None or r.agent == agent)
                and (wanted is None or r.event_name.lower() == wanted)
                and (after_seq is None or r.seq > after_seq)
            ]
        found.sort(key=self.position)
        return found[-n:]

    def latest(self, agent: str | None = None) -> EventRecord | None:
        """The newest record (of ``agent``, if given), or ``None``."""
        items = self.last(1, agent=agent)
        return items[0] if items else None

    @property
    def last_seq(self) -> int:
        """The ``seq`` of the newest record that is not a heartbeat (0 when none)."""
        with self._lock:
            return self._seq

    def stats(self, agent: str | None = None) -> dict[str, object]:
        """Counts of every record ever made, by event name (evicted ones included)."""
        with self._lock:
            counts = (
                self._by_type
                if agent is None
                else self._by_agent_type.get(agent, Counter())
            )
            by_type = dict(sorted(counts.items()))
        return {"by_type": by_type, "total": sum(by_type.values())}

    def capacity_info(self) -> dict[str, object]:
        """Sizes and capacities of the stores."""
        with self._lock:
            return {
                "max_events": self.max_events,
                "stored_events": len(self._ring),
                "evicted_events": self._evicted,
                "heartbeats_per_agent": self.heartbeats_per_agent,
                "heartbeat_buckets": len(self._beats),
                "stored_heartbeats": sum(len(b) for b in self._beats.values()),
                "payload_bytes": self.payload_bytes,
                "last_seq": self._seq,
            }
