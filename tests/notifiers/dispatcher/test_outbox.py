"""The dispatcher with a durable state: nothing accepted is lost, nothing is sent twice.

Outages are simulated: the dispatcher's ``sleep=`` advances a fake clock (retries and
the parked channel's wait), so a minute of downtime takes milliseconds. The restart
tests use a second dispatcher on the same file; the kill test a process of its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from notifiers import (
    DeliveryStatus,
    Dispatcher,
    MaybeDelivered,
    Notification,
    PermanentDeliveryError,
    RateLimited,
    RetryPolicy,
    TransientDeliveryError,
)
from notifiers.state import NotifierState, OutboxState
from notifiers.testing import FlakyNotifier, RecordingNotifier
from tests.notifiers.dispatcher.test_dispatcher import Hanging, ResultWaiter, note

MakeDispatcher = Callable[..., Dispatcher]
WAIT = 10.0
ROOT = Path(__file__).resolve().parents[3]
NO_BUDGET = RetryPolicy(max_attempts=5, budget=1e9)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "notify.sqlite3"


@pytest.fixture
def state(path: Path) -> Iterator[NotifierState]:
    with NotifierState(path) as opened:
        yield opened


@pytest.fixture
def reader(path: Path) -> Iterator[NotifierState]:
    """Another connection to the same file (as the CLI would have)."""
    with NotifierState(path) as opened:
        yield opened


@pytest.fixture
def make_dispatcher(
    state: NotifierState, reader: NotifierState, make_dispatcher: MakeDispatcher
) -> MakeDispatcher:
    """The shared ``make_dispatcher``, whose dispatchers are closed before the
    ``state`` and ``reader`` connections are."""
    return make_dispatcher


class FakeTime:
    """A clock that async ``sleep`` advances; ``hang_from``: longer sleeps never end."""

    def __init__(self, hang_from: float = float("inf")) -> None:
        self.now = 0.0
        self.waits: list[float] = []
        self.hang_from = hang_from

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        if seconds >= self.hang_from:
            await asyncio.Event().wait()
        self.now += seconds
        await asyncio.sleep(0)


class DownUntil(RecordingNotifier):
    """Refuses every send until the fake clock reaches ``up_at``."""

    channel = "pager"

    def __init__(
        self,
        clock: FakeTime,
        up_at: float,
        *,
        name: str = "pager",
        gate: threading.Event | None = None,
    ) -> None:
        super().__init__(name=name)
        self.clock = clock
        self.up_at = up_at
        self.refused = 0
        self.gate = gate  # set: sends may begin (the test has submitted everything)

    async def send(self, notification: Notification) -> None:
        # A threading.Event: the test's thread sets it, not a task of this loop.
        while self.gate is not None and not self.gate.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        if self.clock.now < self.up_at:
            self.refused += 1
            raise TransientDeliveryError("connection refused")
        await super().send(notification)


def titles(notifications: list[Notification]) -> list[str]:
    return [n.title for n in notifications]


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


# ------------------------------------------------------------------ write-ahead


class TestWriteAhead:
    def test_rows_exist_while_in_flight_and_go_once_delivered(
        self,
        make_dispatcher: MakeDispatcher,
        state: NotifierState,
        reader: NotifierState,
    ) -> None:
        hanging = Hanging(name="pager")
        dispatcher = make_dispatcher([hanging], state=state)
        notifications = [note(f"n{i}") for i in range(3)]
        for notification in notifications:
            dispatcher.submit(notification)
        hanging.wait_entered(1)
        wait_until(lambda: len(reader.rows()) == 3, "3 rows")
        rows = reader.rows()
        assert [r.notification().title for r in rows] == ["n0", "n1", "n2"]
        assert all(r.state is OutboxState.PENDING and r.owner for r in rows)
        hanging.release()
        assert dispatcher.flush(WAIT)
        wait_until(lambda: reader.rows() == [], "the rows to be deleted")
        assert hanging.finished == notifications

    def test_a_path_is_opened_and_closed_by_the_dispatcher(
        self, make_dispatcher: MakeDispatcher, path: Path
    ) -> None:
        recording = RecordingNotifier()
        dispatcher = make_dispatcher([recording], state=str(path))
        assert dispatcher.state is not None
        dispatcher.submit(note())
        assert dispatcher.flush(WAIT)
        dispatcher.close()
        assert path.exists()
        with pytest.raises(Exception, match="closed"):
            dispatcher.state.rows()
        with NotifierState(path) as after:
            assert after.rows() == []
            assert after.load_stats()["recording"]["sent"] == 1

    def test_without_a_state_nothing_changes(
        self, make_dispatcher: MakeDispatcher
    ) -> None:
        dispatcher = make_dispatcher([RecordingNotifier()])
        assert dispatcher.state is None
        dispatcher.submit(note())
        assert dispatcher.flush(WAIT)


# ------------------------------------------------------------------ outages


class TestOutage:
    def test_a_channel_down_for_60_simulated_seconds_loses_nothing(
        self, make_dispatcher: MakeDispatcher, state: NotifierState
    ) -> None:
        fake = FakeTime()
        # No send before all ten are submitted: on a loaded machine the first could
        # otherwise fail, park, come back and be replayed alone, the rest then
        # going out directly (nothing lost, but not the outage this test is about).
        gate = threading.Event()
        pager = DownUntil(fake, up_at=60.0, gate=gate)
        other = RecordingNotifier(name="other")
        waiter = ResultWaiter()
        dispatcher = make_dispatcher(
            [pager, other],
            state=state,
            sleep=fake.sleep,
            policy=NO_BUDGET,
            on_result=[waiter],
        )
        notifications = [note(f"n{i}") for i in range(10)]
        for notification in notifications:
            dispatcher.submit(notification)
        gate.set()

        assert pager.wait_for(10, WAIT) == notifications  # in order
        assert other.wait_for(10, WAIT) == notifications
        assert dispatcher.flush(WAIT)
        assert fake.now >= 60
        assert pager.refused >= 5
        assert state.rows() == []
        dispatcher.close()
        assert len(pager.sent) == 10  # once each

        stats = dispatcher.stats()["pager"]
        assert (stats.sent, stats.replayed) == (10, 10)  # all from the outbox
        assert stats.outboxed >= 1
        for notification in notifications:
            statuses = [
                r.status
                for r in waiter.results
                if r.notification_id == notification.id and r.channel == "pager"
            ]
            # delivered once; before that at most "not delivered yet, kept in the
            # outbox" (those that came while the channel was parked)
            assert statuses[-1] is DeliveryStatus.DELIVERED
            assert statuses[:-1] in ([], [DeliveryStatus.FAILED])
        first = next(r for r in waiter.results if r.channel == "pager")
        assert first.notification_id == notifications[0].id
        assert (first.error_class, first.attempts) == ("TransientDeliveryError", 5)
        outboxed = [
            r
            for r in waiter.results
            if r.channel == "pager" and r.status is DeliveryStatus.FAILED
        ][1:]
        assert {r.error_class for r in outboxed} <= {"Outboxed"}
        assert all(r.attempts == 0 for r in outboxed)

    def test_alerts_after_the_outage_come_after_the_outboxed_ones(
        self, make_dispatcher: MakeDispatcher, state: NotifierState
    ) -> None:
        fake = FakeTime(hang_from=30.0)  # the parked channel waits until close()
        pager = DownUntil(fake, up_at=10.0)
        dispatcher = make_dispatcher(
            [pager],
            state=state,
            sleep=fake.sleep,
            policy=RetryPolicy(max_attempts=2, budget=1e9, initial=1, jitter=0),
        )
        for i in range(3):
            dispatcher.submit(note(f"early-{i}"))
        assert dispatcher.flush(WAIT)  # a parked channel does not hold flush() up
        assert pager.sent == []
        assert [r.state for r in state.rows()] == [
            OutboxState.FAILED,
            OutboxState.PENDING,
            OutboxState.PENDING,
        ]
        fake.now = 100.0  # the service is back; the next try is due
        dispatcher.close()  # parked: stops at once; its alerts stay in the outbox

        pager2 = DownUntil(fake, up_at=0.0)
        again = make_dispatcher([pager2], state=state)
        again.submit(note("late"))
        assert titles(pager2.wait_for(4, WAIT)) == [
            "early-0",
            "early-1",
            "early-2",
            "late",
        ]
        assert again.flush(WAIT)
        assert state.rows() == []

    def test_retry_after_beyond_the_cap_parks_without_waiting(
        self, make_dispatcher: MakeDispatcher, state: NotifierState
    ) -> None:
        fake = FakeTime(hang_from=600.0)
        limited = FlakyNotifier(
            [RateLimited("429 too many requests", retry_after=600.0)], name="pager"
        )
        other = RecordingNotifier(name="other")
        waiter = ResultWaiter()
        dispatcher = make_dispatcher(
            [limited, other], state=state, sleep=fake.sleep, on_result=[waiter]
        )
        notifications = [note(f"n{i}") for i in range(3)]
        for notification in notifications:
            dispatcher.submit(notification)
        assert other.wait_for(3, WAIT) == notifications  # never held up
        assert dispatcher.flush(WAIT)
        pager = [r for r in waiter.results if r.channel == "pager"]
        assert [r.status for r in pager] == [DeliveryStatus.FAILED] * 3
        assert (pager[0].error_class, pager[0].attempts) == ("RateLimited", 1)
        assert fake.waits == [600.0]  # no retry slept; the next try waits 600 s
        rows = state.rows(channels=["pager"])
        assert [(r.state, r.error_class) for r in rows] == [
            (OutboxState.FAILED, "RateLimited"),
            (OutboxState.PENDING, None),
            (OutboxState.PENDING, None),
        ]
        assert dispatcher.close() == []  # outboxed alerts have their result already

        recording = RecordingNotifier(name="pager")
        make_dispatcher([recording], state=state)
        assert titles(recording.wait_for(3, WAIT)) == ["n0", "n1", "n2"]

    def test_the_server_wait_is_honoured_then_everything_goes_in_order(
        self, make_dispatcher: MakeDispatcher, state: NotifierState
    ) -> None:
        fake = FakeTime()
        limited = FlakyNotifier([RateLimited("429", retry_after=300.0)], name="pager")
        dispatcher = make_dispatcher(
            [limited], state=state, sleep=fake.sleep, outbox_retry=30.0
        )
        for i in range(3):
            dispatcher.submit(note(f"n{i}"))
        assert titles(limited.wait_for(3, WAIT)) == ["n0", "n1", "n2"]
        assert fake.waits == [300.0]  # the server's wait, not outbox_retry
        assert dispatcher.flush(WAIT)
        assert state.rows() == []

    def test_failed_alerts_are_replayed_by_the_next_dispatcher(
        self, make_dispatcher: MakeDispatcher, state: NotifierState
    ) -> None:
        fake = FakeTime(hang_from=3600.0)
        broken = FlakyNotifier([TransientDeliveryError("down")] * 100, name="pager")
        dispatcher = make_dispatcher(
            [broken],
            state=state,
            sleep=fake.sleep,
            policy=RetryPolicy(max_attempts=2, budget=1e9),
            outbox_retry=3600.0,
        )
        for i in range(5):
            dispatcher.submit(note(f"n{i}"))
        assert dispatcher.flush(WAIT)
        assert broken.attempts == 2  # only the first was tried; the rest wait behind
        assert dispatcher.stats()["pager"].outboxed == 5
        dispatcher.close()
        assert [r.owner for r in state.rows()] == [None] * 5  # released

        recording = RecordingNotifier(name="pager")
        again = make_dispatcher([recording], state=state)
        assert titles(recording.wait_for(5, WAIT)) == [f"n{i}" for i in range(5)]
        assert again.flush(WAIT)
        assert state.rows() == []
        assert again.stats()["pager"].replayed == 5
        again.close()
        assert len(recording.sent) == 5

        third = RecordingNotifier(name="pager")
        make_dispatcher([third], state=state).close()
        assert third.sent == []  # nothing replayed twice


# ------------------------------------------------------------------ close, restart


class TestRestart:
    def test_what_close_abandons_is_delivered_by_the_next_start_once(
        self, make_dispatcher: MakeDispatcher, state: NotifierState
    ) -> None:
        hanging = Hanging(name="pager")
        dispatcher = make_dispatcher([hanging], state=state)
        notifications = [note(f"n{i}") for i in range(4)]
        for notification in notifications:
            dispatcher.submit(notification)
        hanging.wait_entered(1)
        abandoned = dispatcher.close(timeout=0.1)
        assert [r.status for r in abandoned] == [DeliveryStatus.ABANDONED] * 4
        rows = state.rows()
        assert [r.notification().title for r in rows] == ["n0", "n1", "n2", "n3"]
        assert {(r.state, r.owner) for r in rows} == {(OutboxState.PENDING, None)}

        recording = RecordingNotifier(name="pager")
        waiter = ResultWaiter()
        again = make_dispatcher([recording], state=state, on_result=[waiter])
        again.submit(note("n4"))
        assert titles(recording.wait_for(5, WAIT)) == [f"n{i}" for i in range(5)]
        assert again.flush(WAIT)
        assert state.rows() == []
        assert [r.status for r in waiter.results] == [DeliveryStatus.DELIVERED] * 5
        again.close()
        assert len(recording.sent) == 5

    def test_dead_rows_are_kept_and_sent_only_when_replayed(
        self,
        make_dispatcher: MakeDispatcher,
        state: NotifierState,
        reader: NotifierState,
    ) -> None:
        flaky = FlakyNotifier(
            [PermanentDeliveryError("chat not found"), MaybeDelivered("read timeout")],
            name="pager",
        )
        dispatcher = make_dispatcher([flaky], state=state)
        dispatcher.submit(note("permanent"))
        dispatcher.submit(note("maybe"))
        dispatcher.submit(note("fine"))
        assert titles(flaky.wait_for(1, WAIT)) == ["fine"]
        assert dispatcher.flush(WAIT)
        dispatcher.close()
        rows = state.rows()
        assert [(r.state, r.error_class, r.attempts) for r in rows] == [
            (OutboxState.DEAD, "PermanentDeliveryError", 1),
            (OutboxState.DEAD, "MaybeDelivered", 1),
        ]
        assert rows[0].last_error == "chat not found"

        recording = RecordingNotifier(name="pager")
        again = make_dispatcher([recording], state=state, state_refresh=0.02)
        assert again.flush(WAIT)
        assert recording.sent == []  # dead rows are not replayed on their own
        assert reader.replay(ids=[rows[0].id]) == 1  # `notify outbox replay`
        assert titles(recording.wait_for(1, WAIT)) == ["permanent"]
        wait_until(lambda: len(state.rows()) == 1, "the replayed row to go")
        assert state.rows()[0].error_class == "MaybeDelivered"

    def test_a_live_dispatcher_keeps_its_rows_from_another(
        self, make_dispatcher: MakeDispatcher, path: Path
    ) -> None:
        hanging = Hanging(name="pager")
        first = make_dispatcher([hanging], state=str(path))
        for i in range(3):
            first.submit(note(f"n{i}"))
        hanging.wait_entered(1)

        recording = RecordingNotifier(name="pager")
        second = make_dispatcher([recording], state=str(path), state_refresh=0.02)
        second.submit(note("own"))
        assert titles(recording.wait_for(1, WAIT)) == ["own"]
        time.sleep(0.2)  # several refreshes: still nothing of first's
        assert titles(recording.sent) == ["own"]

        first.close(timeout=0.1)  # releases its rows: second takes them over
        assert titles(recording.wait_for(4, WAIT)) == ["own", "n0", "n1", "n2"]

    def test_a_killed_notifier_process_delivers_after_a_restart_once(
        self, make_dispatcher: MakeDispatcher, path: Path
    ) -> None:
        count = 20
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.notifiers.outbox_main",
                "hang",
                str(path),
                str(count),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            ready, _, _ = select.select([child.stdout], [], [], 30)
            line = child.stdout.readline() if ready else ""
            assert line.strip() == "SUBMITTED", child.stderr and child.stderr.read()
        finally:
            child.send_signal(signal.SIGKILL)
            child.communicate(timeout=10)
        assert child.returncode == -signal.SIGKILL

        recording = RecordingNotifier(name="pager")
        dispatcher = make_dispatcher([recording], state=path)
        expected = [f"alert-{i}" for i in range(count)]
        assert titles(recording.wait_for(count, WAIT)) == expected
        assert dispatcher.flush(WAIT)
        dispatcher.close()
        assert titles(recording.sent) == expected  # once each
        assert all(n.agent == "worker" for n in recording.sent)
        with NotifierState(path) as after:
            assert after.rows() == []


# ------------------------------------------------------------------ bounds


class TestBounds:
    def test_the_outbox_is_bounded_and_evictions_are_counted(
        self, make_dispatcher: MakeDispatcher, path: Path
    ) -> None:
        with NotifierState(path, max_outbox=5) as small:
            hanging = Hanging(name="pager")
            dispatcher = make_dispatcher([hanging], state=small)
            dispatcher.submit(note("n0"))
            hanging.wait_entered(1)
            for i in range(1, 8):
                dispatcher.submit(note(f"n{i}"))
            wait_until(lambda: small.evicted() == 3, "3 evictions")
            assert [r.notification().title for r in small.rows()] == [
                f"n{i}" for i in range(3, 8)
            ]
            assert len(dispatcher.close(timeout=0.1)) == 8
            assert small.evicted("pager") == 3

            recording = RecordingNotifier(name="pager")
            again = make_dispatcher([recording], state=small)
            assert titles(recording.wait_for(5, WAIT)) == [f"n{i}" for i in range(3, 8)]
            assert again.flush(WAIT)
            again.close()

    def test_a_full_queue_keeps_alerts_in_the_outbox_in_order(
        self, make_dispatcher: MakeDispatcher, state: NotifierState
    ) -> None:
        hanging = Hanging(name="pager")
        waiter = ResultWaiter()
        dispatcher = make_dispatcher(
            [hanging], state=state, queue_size=2, on_result=[waiter]
        )
        notifications = [note(f"n{i}") for i in range(8)]
        dispatcher.submit(notifications[0])
        hanging.wait_entered(1)
        for notification in notifications[1:]:
            dispatcher.submit(notification)
        wait_until(lambda: len(state.rows()) == 8, "8 rows")
        hanging.release()
        assert dispatcher.flush(WAIT)
        assert hanging.finished == notifications
        assert [r.status for r in waiter.results] == [DeliveryStatus.DELIVERED] * 8
        stats = dispatcher.stats()["pager"]
        assert (stats.sent, stats.dropped) == (8, 0)
        assert state.rows() == []


# ------------------------------------------------------------------ mutes


class TestMutes:
    def test_a_muted_channel_skips_the_alert_and_counts_it(
        self,
        make_dispatcher: MakeDispatcher,
        state: NotifierState,
        reader: NotifierState,
    ) -> None:
        reader.mute("channel", "pager", duration=3600)
        pager, other = RecordingNotifier(name="pager"), RecordingNotifier(name="other")
        waiter = ResultWaiter()
        dispatcher = make_dispatcher(
            [pager, other], state=state, state_refresh=0.02, on_result=[waiter]
        )
        dispatcher.submit(note("hushed"))
        assert other.wait_for(1, WAIT)
        assert dispatcher.flush(WAIT)
        assert pager.sent == []
        assert [r.channel for r in waiter.results] == ["other"]
        assert dispatcher.stats()["pager"].suppressed == 1
        assert state.rows() == []

        reader.unmute("channel", "pager")  # another process: seen within a refresh
        deadline = time.monotonic() + WAIT
        while not pager.sent and time.monotonic() < deadline:
            dispatcher.submit(note("heard"))
            dispatcher.flush(WAIT)
            time.sleep(0.02)
        assert pager.sent and pager.sent[-1].title == "heard"

    def test_agent_and_event_mutes_expire_with_the_clock(
        self, make_dispatcher: MakeDispatcher, path: Path
    ) -> None:
        fake = FakeTime()
        fake.now = 1000.0
        with NotifierState(path, clock=fake) as state:
            state.mute("agent", "worker-*", duration=60)
            state.mute("event", "AGENT_READY")
            recording = RecordingNotifier(name="pager")
            dispatcher = make_dispatcher([recording], state=state)
            dispatcher.submit(note("w", agent="worker-1", event="agent_error"))
            dispatcher.submit(note("r", agent="db", event="agent_ready"))
            dispatcher.submit(note("d", agent="db", event="agent_error"))
            assert titles(recording.wait_for(1, WAIT)) == ["d"]
            fake.now += 61
            dispatcher.submit(note("w2", agent="worker-1", event="agent_error"))
            assert titles(recording.wait_for(2, WAIT)) == ["d", "w2"]
            assert dispatcher.flush(WAIT)
            assert dispatcher.stats()["pager"].suppressed == 2
            # the same mutes, cached, for the alert pipeline's muted(agent, event)
            assert dispatcher.is_muted(None, "AGENT_READY")
            assert not dispatcher.is_muted("worker-1", "agent_error")
            assert not dispatcher.is_muted("db", "agent_error", channel="pager")
            dispatcher.close()
        assert not make_dispatcher([RecordingNotifier()]).is_muted("a", "b")


# ------------------------------------------------------------------ stats, failures


class TestStatsAndFailures:
    def test_stats_are_saved_while_running_and_at_close(
        self,
        make_dispatcher: MakeDispatcher,
        state: NotifierState,
        reader: NotifierState,
    ) -> None:
        flaky = FlakyNotifier([PermanentDeliveryError("denied")], name="pager")
        dispatcher = make_dispatcher([flaky], state=state, state_refresh=0.02)
        for i in range(3):
            dispatcher.submit(note(f"n{i}"))
        assert dispatcher.flush(WAIT)
        wait_until(
            lambda: reader.load_stats().get("pager", {}).get("sent") == 2,
            "the stats to be saved",
        )
        saved = reader.load_stats()["pager"]
        assert saved["failed"] == 1
        assert saved["last_error"] == "denied"
        assert saved["last_success"] is not None
        assert saved["pid"] == os.getpid()
        dispatcher.close()

        recording = RecordingNotifier(name="pager")
        again = make_dispatcher([recording], state=state)
        stats = again.stats()["pager"]
        assert (stats.sent, stats.last_error) == (0, "denied")  # counters per run
        assert stats.last_success == saved["last_success"]

    def test_a_broken_state_file_does_not_stop_alerts(
        self,
        make_dispatcher: MakeDispatcher,
        path: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        state = NotifierState(path)
        recording = RecordingNotifier(name="pager")
        dispatcher = make_dispatcher([recording], state=state)
        dispatcher.submit(note("before"))
        assert recording.wait_for(1, WAIT)
        state.close()  # every call on it fails from now on
        with caplog.at_level(logging.ERROR, logger="notifiers.dispatcher"):
            for i in range(3):
                dispatcher.submit(note(f"after-{i}"))
            assert titles(recording.wait_for(4, WAIT))[1:] == [
                "after-0",
                "after-1",
                "after-2",
            ]
            assert dispatcher.flush(WAIT)
        failures = [r for r in caplog.records if "notifier state" in r.getMessage()]
        assert len(failures) == 1  # logged once, not per alert
        assert "alerts go on without it" in failures[0].getMessage()
