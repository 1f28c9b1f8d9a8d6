"""Alert rules under a burst: dedup and grouping beside plain dispatch; the outbox.

Each row beside a baseline measured in the same run, round by round (interleaved):

* a burst of 10,000 orchestrator events (a crash loop of four agents: identical
  AGENT_ERRORs and AGENT_RESTARTINGs with a growing ``attempt``; distinct errors and
  restarts across 100 other agents) through the ``lifecycle`` preset's handler with
  the default alert rules (render, ``AlertPipeline.offer``, ``submit`` of what comes
  out), until the dispatcher's ``flush()``, vs the same events through the handler
  with ``rules=False`` (render and ``submit`` of each); the same with the flapping rule
  off (every event through grouping and dedup); the handler's side alone; and
  ``offer()`` alone vs ``render()`` alone, to split the cost;
* a dispatcher with a ``NotifierState`` outbox (a file) delivering 10,000 alerts vs a
  dispatcher without one; the same burst into the default queue of 1,000 (the rest
  waits in the outbox); 10,000 rows left ``pending`` replayed by a new dispatcher vs
  10,000 submitted to a new dispatcher without state;
* ``NotifierState.put_many`` and ``delivered``, 1 and 100 rows per transaction, vs a
  bare ``sqlite3`` connection (same pragmas, same table) doing the same.

Every channel is a ``notifiers.testing.RecordingNotifier`` (no network), rate limits
off. Run: ``python bench/bench_alerts.py [--quick] [--events N] [--rounds R]`` from
any directory.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import inspect
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _stats

if TYPE_CHECKING:
    from notifiers import Dispatcher, Notification
    from notifiers.testing import RecordingNotifier

# notifiers and pyorchestrate are imported inside functions, like the other benchmarks.

CRASH_AGENTS = 4  # agents in a crash loop: the same error, again and again
WORKERS = 100  # agents with distinct errors
CRASH_SHARE = 0.6  # of the events
CRASH_ERROR = "ConnectionRefusedError: [Errno 111] Connection refused"
SEED = 20260425
ROW_BATCH = 100  # rows per transaction in the batched raw rows (the outbox's read size)


def fmt_us(seconds: float) -> str:
    """Seconds as microseconds, e.g. ``4.120 µs``."""
    us = seconds * 1e6
    return f"{us:.1f} µs" if us >= 100 else f"{us:.3f} µs"


def per_event_row(name: str, samples: list[float], baseline: list[float]) -> None:
    """A row of seconds per event (p50, p95) beside its baseline."""
    pct = _stats.percentile
    _stats.print_row(
        name,
        fmt_us(pct(samples, 50)),
        fmt_us(pct(samples, 95)),
        fmt_us(pct(baseline, 50)),
        fmt_us(pct(baseline, 95)),
        "none set",
    )


def rate_row(name: str, samples: list[float], baseline: list[float]) -> None:
    """A throughput row from seconds per item: p50 the median round, "p95" the round
    at the 95th percentile of time per item (the slow side)."""
    pct = _stats.percentile
    _stats.print_row(
        name,
        _stats.fmt_rate(1 / pct(samples, 50)),
        _stats.fmt_rate(1 / pct(samples, 95)),
        _stats.fmt_rate(1 / pct(baseline, 50)),
        _stats.fmt_rate(1 / pct(baseline, 95)),
        "none set",
    )


def new_dispatcher(notifier: Any, **kwargs: Any) -> Dispatcher:
    """A dispatcher without rate limits (if this version has them)."""
    from notifiers import Dispatcher

    parameters = inspect.signature(Dispatcher).parameters
    if "rate_limits" in parameters:
        kwargs.setdefault("rate_limits", False)
    elif "gate" in parameters:
        kwargs.setdefault("gate", None)
    return Dispatcher([notifier], name="notifiers-bench", **kwargs)


def flushed(dispatcher: Dispatcher, what: str) -> None:
    if not dispatcher.flush(60.0):
        raise TimeoutError(f"{what}: the dispatcher did not settle within 60 s")


def taken(notifier: RecordingNotifier) -> int:
    """How many the channel got; forget them (the dispatcher is idle)."""
    count = len(notifier.sent)
    notifier.sent.clear()
    return count


# ---------------------------------------------------------------- the events


def make_events(count: int, seed: int = SEED) -> list[dict[str, Any]]:
    """The callback keywords of ``count`` events, as the orchestrator passes them.

    60 % come from a crash loop of ``CRASH_AGENTS`` agents (AGENT_ERROR with the same
    text, then AGENT_RESTARTING with the next ``attempt`` and a growing delay), the
    rest from ``WORKERS`` agents (AGENT_ERROR with a distinct text 3 times in 4,
    else AGENT_RESTARTING). Deterministic for a seed.
    """
    from pyorchestrate import EventRecord, OrchestratorEvent, Severity
    from pyorchestrate.core.utilities.event import CALLBACK_KEYWORDS

    rng = random.Random(seed)
    template = dict.fromkeys(CALLBACK_KEYWORDS)
    steps: dict[str, int] = {}
    generations: dict[str, int] = {}
    start_wall = time.time()
    start_ns = time.monotonic_ns()
    events = []
    for seq in range(1, count + 1):
        if rng.random() < CRASH_SHARE:
            agent = f"ingest-{rng.randrange(CRASH_AGENTS)}"
            step = steps.get(agent, 0)
            steps[agent] = step + 1
            restarting = step % 2 == 1
            error = CRASH_ERROR
            attempt = step // 2 + 1
        else:
            agent = f"worker-{rng.randrange(WORKERS):03d}"
            restarting = rng.random() >= 0.75
            error = f"KeyError: 'order-{rng.randrange(10**7)}' in batch {seq}"
            attempt = steps.get(agent, 0) + 1
            if restarting:
                steps[agent] = attempt
        generation = generations.get(agent, 1)
        if restarting:
            event = OrchestratorEvent.AGENT_RESTARTING
            context: dict[str, Any] = {
                "attempt": attempt,
                "delay": round(min(0.1 * 2 ** (attempt - 1), 30.0), 3),
                "reason": "exited with code 1",
                "exit_code": 1,
            }
            generations[agent] = generation + 1
            severity = Severity.WARNING
        else:
            event = OrchestratorEvent.AGENT_ERROR
            context = {"error_message": error, "reason": "exception"}
            severity = Severity.ERROR
        wall = start_wall + seq * 50e-6
        stamp = _dt.datetime.fromtimestamp(wall)
        kwargs = template.copy()
        kwargs.update(context)
        kwargs.update(
            event=event,
            agent_name=agent,
            generation_id=generation,
            pid=40_000 + seq % 5_000,
            event_date=stamp.date().isoformat(),
            event_time=stamp.time().isoformat(),
            orchestrator="bench",
            seq=seq,
            record=EventRecord(
                seq,
                wall,
                start_ns + seq * 50_000,
                "orchestrator",
                event.value,
                agent,
                severity,
                {key: str(value) for key, value in context.items()},
            ),
        )
        events.append(kwargs)
    return events


# ---------------------------------------------------------------- 1. the burst


class Hub:
    """What ``attach`` needs of an orchestrator: it keeps the registered handler, so
    the benchmark calls it as the orchestrator's callback worker would."""

    def __init__(self) -> None:
        self.handlers: dict[Any, Callable[..., object]] = {}

    def register_event(self, event: Any, callback: Callable[..., object]) -> None:
        self.handlers[event] = callback

    def unregister_event(self, event: Any, callback: Callable[..., object]) -> None:
        self.handlers.pop(event, None)

    @property
    def handler(self) -> Callable[..., object]:
        handlers = set(self.handlers.values())
        if len(handlers) != 1:
            raise RuntimeError(f"expected one handler, found {len(handlers)}")
        return handlers.pop()


@dataclass
class Route:
    """One way through: its rules, dispatcher and channel, and what it measured."""

    name: str
    rules: Any
    notifier: Any = None
    dispatcher: Any = None
    handler_times: list[float] = field(default_factory=list)  # s per event
    total_times: list[float] = field(default_factory=list)  # s per event
    sent: list[int] = field(default_factory=list)  # during the burst, per round
    at_detach: list[int] = field(default_factory=list)  # summaries at detach
    stats: Any = None  # the last round's PipelineStats

    def round(self, events: list[dict[str, Any]], keep: bool) -> None:
        from notifiers.presets import attach

        hub = Hub()
        attachment = attach(
            hub, "lifecycle", dispatcher=self.dispatcher, rules=self.rules
        )
        try:
            handler = hub.handler
            clock = time.perf_counter
            t0 = clock()
            for kwargs in events:
                handler(**kwargs)
            t1 = clock()
            flushed(self.dispatcher, self.name)
            t2 = clock()
            sent = taken(self.notifier)
        finally:
            attachment.detach()
        flushed(self.dispatcher, self.name)
        at_detach = taken(self.notifier)
        if attachment.pipeline is not None:
            self.stats = attachment.pipeline.stats()
        if keep:
            self.handler_times.append((t1 - t0) / len(events))
            self.total_times.append((t2 - t0) / len(events))
            self.sent.append(sent)
            self.at_detach.append(at_detach)


@contextmanager
def burst_paths(size: int) -> Iterator[list[Route]]:
    """The three paths, each with its own dispatcher (closed at the end)."""
    from notifiers.testing import RecordingNotifier

    paths = [
        Route("rules (defaults)", None),
        Route("rules, flapping off", {"flap_threshold": None}),
        Route("plain (rules=False)", False),
    ]
    try:
        for path in paths:
            path.notifier = RecordingNotifier()
            # Room for the whole burst: the plain path must not drop any.
            path.dispatcher = new_dispatcher(path.notifier, queue_size=size + 100)
        yield paths
    finally:
        for path in paths:
            if path.dispatcher is not None:
                path.dispatcher.close(5.0)
    for path in paths:
        dropped = path.dispatcher.stats()["recording"].dropped
        if dropped:
            raise RuntimeError(f"{path.name}: {dropped} alerts dropped")


def measure_split(events: list[dict[str, Any]]) -> tuple[float, float]:
    """Seconds per event of ``offer()`` + ``next_due()`` alone (a fresh pipeline,
    notifications rendered beforehand) and of ``render()`` alone."""
    from notifiers import AlertPipeline, render

    clock = time.perf_counter
    t0 = clock()
    rendered = [render(kwargs) for kwargs in events]
    t1 = clock()
    pipeline = AlertPipeline()
    offer, next_due = pipeline.offer, pipeline.next_due
    t2 = clock()
    for notification in rendered:
        offer(notification)
        next_due()
    t3 = clock()
    return (t3 - t2) / len(events), (t1 - t0) / len(events)


def measure_burst(
    events: list[dict[str, Any]], rounds: int, warmup: int
) -> tuple[list[Route], list[float], list[float]]:
    offers: list[float] = []
    renders: list[float] = []
    with burst_paths(len(events)) as paths:
        for i in range(warmup + rounds):
            keep = i >= warmup
            # Alternate the order, so no path always follows the same one.
            for path in paths if i % 2 == 0 else reversed(paths):
                path.round(events, keep)
            offer, rendered = measure_split(events)
            if keep:
                offers.append(offer)
                renders.append(rendered)
    return paths, offers, renders


# ---------------------------------------------------------------- 2. the outbox


def make_notifications(events: list[dict[str, Any]]) -> list[Notification]:
    """Alerts as the preset renders them (fresh objects: a fresh ``id`` each)."""
    from notifiers import render

    return [render(kwargs) for kwargs in events]


@dataclass
class Outbox:
    """Seconds per alert (or row) of each outbox measurement, round by round."""

    with_state: list[float] = field(default_factory=list)
    overflow: list[float] = field(default_factory=list)
    without: list[float] = field(default_factory=list)
    replay: list[float] = field(default_factory=list)
    fresh: list[float] = field(default_factory=list)
    overflow_replayed: int = 0
    overflow_dropped_without: int = 0  # the same burst, queue 1,000, no state


def deliver_burst(
    notifications: list[Notification],
    state_path: Path | None,
    queue_size: int,
    *,
    drops: bool = False,
) -> tuple[float, int, int]:
    """Submit every notification to a new dispatcher until ``flush()`` (rows deleted);
    return the seconds, how many were delivered from the outbox, how many dropped
    (an error unless ``drops``)."""
    from notifiers import NotifierState
    from notifiers.testing import RecordingNotifier

    notifier = RecordingNotifier()
    state = NotifierState(state_path) if state_path is not None else None
    dispatcher = None
    try:
        dispatcher = new_dispatcher(notifier, queue_size=queue_size, state=state)
        submit = dispatcher.submit
        t0 = time.perf_counter()
        for notification in notifications:
            submit(notification)
        flushed(dispatcher, "outbox burst")
        elapsed = time.perf_counter() - t0
        stats = dispatcher.stats()["recording"]
        if not drops and (len(notifier.sent) != len(notifications) or stats.dropped):
            raise RuntimeError(
                f"outbox burst: {len(notifier.sent)} delivered, {stats.dropped} dropped"
            )
        if state is not None and state.counts():
            raise RuntimeError(f"outbox burst: rows left {state.counts()}")
        return elapsed, stats.replayed, stats.dropped
    finally:
        if dispatcher is not None:
            dispatcher.close(5.0)
        if state is not None:
            state.close()


def replay_rows(notifications: list[Notification], state_path: Path) -> float:
    """Rows written ``pending`` (nobody's) with ``put_many``; then the seconds from a
    new dispatcher on the file until all are delivered and deleted."""
    from notifiers import NotifierState
    from notifiers.testing import RecordingNotifier

    with_rows = NotifierState(state_path, max_outbox=len(notifications) + 100)
    try:
        with_rows.put_many([(n, ["recording"]) for n in notifications])
    finally:
        with_rows.close()
    notifier = RecordingNotifier()
    state = NotifierState(state_path, max_outbox=len(notifications) + 100)
    dispatcher = None
    try:
        t0 = time.perf_counter()
        dispatcher = new_dispatcher(notifier, state=state)
        flushed(dispatcher, "replay")
        deadline = time.monotonic() + 30
        while state.counts():  # flush() waits for deletes too; make sure
            if time.monotonic() > deadline:
                raise TimeoutError(f"replay: rows left {state.counts()}")
            time.sleep(0.001)
        elapsed = time.perf_counter() - t0
        if len(notifier.sent) != len(notifications):
            raise RuntimeError(f"replay: {len(notifier.sent)} delivered")
        return elapsed
    finally:
        if dispatcher is not None:
            dispatcher.close(5.0)
        state.close()


def fresh_dispatch(notifications: list[Notification]) -> float:
    """The replay's baseline: a new dispatcher without state, every alert submitted,
    until ``flush()``."""
    from notifiers.testing import RecordingNotifier

    notifier = RecordingNotifier()
    dispatcher = None
    try:
        t0 = time.perf_counter()
        dispatcher = new_dispatcher(notifier, queue_size=len(notifications) + 100)
        for notification in notifications:
            dispatcher.submit(notification)
        flushed(dispatcher, "fresh dispatch")
        return time.perf_counter() - t0
    finally:
        if dispatcher is not None:
            dispatcher.close(5.0)


def measure_outbox(events: list[dict[str, Any]], rounds: int, tmp: Path) -> Outbox:
    out = Outbox()
    for i in range(rounds + 1):
        # A short warm-up round first (imports, SQLite's first files); its figures
        # are not kept.
        sample = events if i > 0 else events[: max(len(events) // 5, 100)]
        count = len(sample)
        base = tmp / f"outbox-{i}"
        base.mkdir()
        with_state, _, _ = deliver_burst(
            make_notifications(sample), base / "a.sqlite3", count + 100
        )
        without, _, _ = deliver_burst(make_notifications(sample), None, count + 100)
        overflow, replayed, _ = deliver_burst(
            make_notifications(sample), base / "b.sqlite3", 1000
        )
        if i == 1:  # what the same burst does to the default queue without state
            _, _, out.overflow_dropped_without = deliver_burst(
                make_notifications(sample), None, 1000, drops=True
            )
        replay = replay_rows(make_notifications(sample), base / "c.sqlite3")
        fresh = fresh_dispatch(make_notifications(sample))
        if i > 0:
            out.with_state.append(with_state / count)
            out.without.append(without / count)
            out.overflow.append(overflow / count)
            out.replay.append(replay / count)
            out.fresh.append(fresh / count)
            out.overflow_replayed = replayed
    return out


# ---------------------------------------------------------------- 3. raw rows

_BARE_SCHEMA = """
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL,
    channel TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    owner TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (uid, channel)
);
CREATE INDEX outbox_by_channel ON outbox (channel, state, id);
CREATE INDEX outbox_by_state ON outbox (state, id);
"""


class Bare:
    """A bare sqlite3 connection as NotifierState opens its file (WAL, NORMAL), with
    the outbox's columns, unique key and indexes: the floor of writing and deleting
    a row."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.executescript(_BARE_SCHEMA)

    def put(self, payloads: Sequence[str]) -> list[int]:
        now = time.time()
        conn = self.conn
        ids: list[int] = []
        conn.execute("BEGIN IMMEDIATE")
        for payload in payloads:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO outbox "
                "(uid, channel, payload, owner, created, updated) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (uuid.uuid4().hex, "recording", payload, None, now, now),
            )
            assert cursor.lastrowid is not None
            ids.append(cursor.lastrowid)
        conn.execute("COMMIT")
        return ids

    def delete(self, ids: Sequence[int]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


@dataclass
class Raw:
    """Seconds per row, by (operation, rows per transaction): state and bare."""

    state: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    bare: dict[tuple[str, int], list[float]] = field(default_factory=dict)


def raw_round(
    notifications: list[Notification], batch: int, tmp: Path
) -> tuple[float, float, float, float]:
    """Seconds per row: put_many and delivered (state), insert and delete (bare),
    ``batch`` rows per transaction; state first or bare first alternates outside."""
    from notifiers import NotifierState
    from notifiers.state import notification_to_json

    count = len(notifications)
    chunks = [notifications[i : i + batch] for i in range(0, count, batch)]
    clock = time.perf_counter
    state = NotifierState(tmp / "raw.sqlite3", max_outbox=count + 100)
    try:
        t0 = clock()
        ids: list[int] = []
        for chunk in chunks:
            for row in state.put_many([(n, ["recording"]) for n in chunk]):
                row_id = row["recording"]
                if row_id is None:
                    raise RuntimeError("put_many stored a notification twice")
                ids.append(row_id)
        t1 = clock()
        for i in range(0, count, batch):
            state.delivered(ids[i : i + batch])
        t2 = clock()
        if state.counts():
            raise RuntimeError(f"raw rows left: {state.counts()}")
    finally:
        state.close()
    # The bare side stores the same JSON (encoded beforehand: the floor is SQLite's).
    payloads = [notification_to_json(n) for n in notifications]
    bare = Bare(tmp / "bare.sqlite3")
    try:
        t3 = clock()
        bare_ids: list[int] = []
        for i in range(0, count, batch):
            bare_ids += bare.put(payloads[i : i + batch])
        t4 = clock()
        for i in range(0, count, batch):
            bare.delete(bare_ids[i : i + batch])
        t5 = clock()
    finally:
        bare.close()
    return (t1 - t0) / count, (t2 - t1) / count, (t4 - t3) / count, (t5 - t4) / count


def measure_raw(
    events: list[dict[str, Any]], single: int, rounds: int, tmp: Path
) -> Raw:
    raw = Raw()
    for i in range(rounds + 1):  # one warm-up round, a fifth of the rows
        for batch, rows in ((1, single), (ROW_BATCH, len(events))):
            rows = rows if i > 0 else max(rows // 5, batch)
            where = tmp / f"raw-{i}-{batch}"
            where.mkdir()
            put, deleted, bare_put, bare_deleted = raw_round(
                make_notifications(events[:rows]), batch, where
            )
            if i == 0:
                continue
            for key, value, floor in (
                (("put", batch), put, bare_put),
                (("delete", batch), deleted, bare_deleted),
            ):
                raw.state.setdefault(key, []).append(value)
                raw.bare.setdefault(key, []).append(floor)
    return raw


# ---------------------------------------------------------------- main


def threads_left(timeout: float = 5.0) -> list[str]:
    """Threads other than the main one still alive after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        others = [t for t in threading.enumerate() if t is not threading.main_thread()]
        if not others or time.monotonic() > deadline:
            return [t.name for t in others]
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples (smoke run)")
    parser.add_argument("--events", type=int, default=None, help="events per burst")
    parser.add_argument("--rounds", type=int, default=None, help="burst rounds")
    args = parser.parse_args(argv)
    count = args.events or (2_000 if args.quick else 10_000)
    rounds = args.rounds or (2 if args.quick else 8)
    outbox_rounds = 1 if args.quick else 3
    single = 200 if args.quick else 1_000  # rows written one per transaction

    began = time.perf_counter()
    _stats.print_title(
        "Alert rules under a burst; the outbox",
        events=count,
        rounds=rounds,
        outbox_rounds=outbox_rounds,
        load=" ".join(f"{x:.2f}" for x in os.getloadavg()),
    )
    events = make_events(count)
    paths, offers, renders = measure_burst(events, rounds, 1)
    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp:
        outbox = measure_outbox(events, outbox_rounds, Path(tmp))
        raw = measure_raw(events, single, outbox_rounds, Path(tmp))

    rules, no_flap, plain = paths
    n = f"{count:,}"
    _stats.print_header()
    per_event_row(
        "burst -> flush(): rules vs plain", rules.total_times, plain.total_times
    )
    per_event_row(
        "burst -> flush(): no flapping vs plain",
        no_flap.total_times,
        plain.total_times,
    )
    per_event_row(
        "burst, handler only: rules vs plain", rules.handler_times, plain.handler_times
    )
    per_event_row(
        "burst, handler only: no flapping vs plain",
        no_flap.handler_times,
        plain.handler_times,
    )
    per_event_row("offer()+next_due() vs render(), alone", offers, renders)
    rate_row(
        "outbox: burst delivered, state vs none", outbox.with_state, outbox.without
    )
    rate_row("outbox: queue 1,000 (overflow) vs none", outbox.overflow, outbox.without)
    rate_row("outbox: replay pending rows vs fresh", outbox.replay, outbox.fresh)
    for (what, batch), values in raw.state.items():
        label = "put_many" if what == "put" else "delivered"
        rate_row(
            f"NotifierState.{label}, {batch}/tx vs sqlite3",
            values,
            raw.bare[(what, batch)],
        )

    pct = _stats.percentile
    print()
    for line in (
        "per event: the whole burst's time / events, one value per round (p50 the",
        "  median round). Handler: the preset's handler (attach(..., 'lifecycle',",
        "  dispatcher=...)) called with each event's keywords, as the callback worker",
        "  calls it; '-> flush()' until the dispatcher delivered all it was given.",
        "baselines: rules=False (render + submit of every event), same run, rounds",
        "  alternating; render() alone for offer() alone; outbox: a dispatcher without",
        "  state (queue room for all); replay: a new dispatcher without state, every",
        "  alert submitted; raw rows: bare sqlite3, same pragmas and columns, same JSON",
        "  (encoded beforehand). Rates are alerts (rows) per second.",
    ):
        print(line)
    print()
    for path in paths:
        added = pct(path.total_times, 50) - pct(plain.total_times, 50)
        handler = pct(path.handler_times, 50) - pct(plain.handler_times, 50)
        print(
            f"{path.name}: sent {pct(path.sent, 50):,.0f} of {n} during the burst "
            f"(+{pct(path.at_detach, 50):,.0f} summaries at detach); per event vs "
            f"plain at p50: {added * 1e6:+.1f} µs to flush(), {handler * 1e6:+.1f} µs "
            "on the handler's side"
        )
        if path.stats is not None:
            s = path.stats
            print(
                f"  pipeline: offered {s.offered:,}, sent {s.sent:,}, grouped "
                f"{s.grouped:,}, deduplicated {s.deduplicated:,}, quiet {s.quiet:,}, "
                f"flapping {s.flapping}, summaries {s.summaries}, notes dropped at "
                f"detach {s.notes_dropped:,}"
            )
    print(
        f"split at p50: render() {pct(renders, 50) * 1e6:.1f} µs, offer()+next_due() "
        f"{pct(offers, 50) * 1e6:.1f} µs per event"
    )
    print(
        f"outbox: {1e6 * (pct(outbox.with_state, 50) - pct(outbox.without, 50)):+.1f} "
        f"µs per alert with the state at p50; queue 1,000: "
        f"{outbox.overflow_replayed:,} of {n} delivered from the outbox, none dropped "
        f"(without state: {outbox.overflow_dropped_without:,} dropped); no rows left"
    )
    print(f"(run took {time.perf_counter() - began:.1f} s)")
    left = threads_left()
    if left:
        print(f"\nthreads left behind: {left}", file=sys.stderr)
        return 1
    print("threads left behind: none")
    return _stats.finish()


if __name__ == "__main__":
    sys.exit(main())
