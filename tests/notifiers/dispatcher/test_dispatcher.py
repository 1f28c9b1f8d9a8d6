"""The dispatcher: submit from any thread, one worker per channel, results, close.

Nothing here waits by sleeping: tests wait on events (a notifier entering ``send``,
a hook seeing a result) or on ``flush()``, each with a timeout that only matters when
something is broken.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from notifiers import (
    DeliveryResult,
    DeliveryStatus,
    Dispatcher,
    DispatcherClosed,
    Notification,
    Notifier,
    PermanentDeliveryError,
    RetriesExhausted,
    RetryPolicy,
    Severity,
    TransientDeliveryError,
)
from notifiers.redact import SECRETS
from notifiers.state import NotifierState
from notifiers.testing import FlakyNotifier, RecordingNotifier

if TYPE_CHECKING:
    from tests.notifiers.conftest import SleepRecorder

MakeDispatcher = Callable[..., Dispatcher]
WAIT = 10.0
"""How long a test waits for something that should happen at once."""


class Hanging(Notifier):
    """A channel whose ``send`` awaits an event that only :meth:`release` sets."""

    channel = "hanging"

    def __init__(self, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.entered: list[Notification] = []
        self.finished: list[Notification] = []
        self.cancelled: list[Notification] = []
        self.closed = False
        self._cond = threading.Condition()
        self._gate: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._gate = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    async def send(self, notification: Notification) -> None:
        assert self._gate is not None
        with self._cond:
            self.entered.append(notification)
            self._cond.notify_all()
        try:
            await self._gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(notification)
            raise
        self.finished.append(notification)

    async def aclose(self) -> None:
        self.closed = True

    def release(self) -> None:
        """Let every send through (from any thread)."""
        assert self._loop is not None and self._gate is not None
        self._loop.call_soon_threadsafe(self._gate.set)

    def wait_entered(self, count: int) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.entered) >= count, WAIT)


class ResultWaiter:
    """An on_result hook that keeps results and can wait for some of them."""

    def __init__(self) -> None:
        self.results: list[DeliveryResult] = []
        self._cond = threading.Condition()

    def __call__(self, result: DeliveryResult) -> None:
        with self._cond:
            self.results.append(result)
            self._cond.notify_all()

    def wait_for(
        self, count: int, status: DeliveryStatus | None = None
    ) -> list[DeliveryResult]:
        def matching() -> list[DeliveryResult]:
            return [r for r in self.results if status is None or r.status is status]

        with self._cond:
            assert self._cond.wait_for(lambda: len(matching()) >= count, WAIT), (
                self.results
            )
            return matching()


def note(title: str = "alert", **fields: object) -> Notification:
    return Notification(title, "body", **fields)  # type: ignore[arg-type]


# ------------------------------------------------------------------ construction


class TestConstruction:
    def test_needs_a_notifier(self) -> None:
        with pytest.raises(ValueError, match="at least one"):
            Dispatcher([])

    def test_channel_names_are_unique(self) -> None:
        with pytest.raises(ValueError, match="'recording'"):
            Dispatcher([RecordingNotifier(), RecordingNotifier()])

    def test_channels_and_thread_name(self, make_dispatcher: MakeDispatcher) -> None:
        dispatcher = make_dispatcher(
            [RecordingNotifier(name="a"), RecordingNotifier(name="b")],
            name="notifiers-test-named",
        )
        assert dispatcher.channels == ["a", "b"]
        assert "notifiers-test-named" in [t.name for t in threading.enumerate()]

    def test_default_thread_name_and_context_manager(self) -> None:
        recording = RecordingNotifier()
        with Dispatcher([recording]) as dispatcher:
            names = [t.name for t in threading.enumerate()]
            assert "notifiers-dispatch" in names
            dispatcher.submit(note())
        assert len(recording.sent) == 1  # close() drained it
        assert "notifiers-dispatch" not in [t.name for t in threading.enumerate()]

    def test_failed_start_is_logged_redacted_and_the_channel_still_runs(
        self, make_dispatcher: MakeDispatcher, caplog: pytest.LogCaptureFixture
    ) -> None:
        secret = "start-secret-5d1c2b"
        SECRETS.add(secret)

        class BadStart(RecordingNotifier):
            async def start(self) -> None:
                raise RuntimeError(f"cannot log in with {secret}")

        notifier = BadStart(name="badstart")
        with caplog.at_level(logging.ERROR, logger="notifiers.dispatcher"):
            dispatcher = make_dispatcher([notifier])
            dispatcher.submit(note())
            assert dispatcher.flush(WAIT)
        assert len(notifier.sent) == 1
        assert "failed to start" in caplog.text
        assert secret not in caplog.text


# ------------------------------------------------------------------ submit


class TestSubmit:
    def test_many_threads_each_notification_once_per_channel(
        self, make_dispatcher: MakeDispatcher
    ) -> None:
        first, second = (
            RecordingNotifier(name="first"),
            RecordingNotifier(name="second"),
        )
        waiter = ResultWaiter()
        dispatcher = make_dispatcher(
            [first, second], queue_size=10_000, on_result=[waiter]
        )
        threads_count, per_thread = 8, 250
        barrier = threading.Barrier(threads_count)
        submitted: list[list[int]] = [[] for _ in range(threads_count)]

        def submitter(index: int) -> None:
            barrier.wait(WAIT)
            for i in range(per_thread):
                notification = note(f"t{index}-{i}")
                submitted[index].append(notification.id)
                dispatcher.submit(notification)

        threads = [
            threading.Thread(target=submitter, args=(i,), name=f"test-submitter-{i}")
            for i in range(threads_count)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        assert not any(t.is_alive() for t in threads)
        assert dispatcher.flush(WAIT)

        expected = sorted(i for ids in submitted for i in ids)
        assert len(expected) == threads_count * per_thread
        for recording in (first, second):
            assert sorted(n.id for n in recording.sent) == expected
        # One channel's order follows each thread's order of submission.
        positions = {n.id: pos for pos, n in enumerate(first.sent)}
        for ids in submitted:
            assert [positions[i] for i in ids] == sorted(positions[i] for i in ids)
        assert len(waiter.results) == 2 * len(expected)
        assert all(r.status is DeliveryStatus.DELIVERED for r in waiter.results)
        stats = dispatcher.stats()
        assert stats["first"].sent == stats["second"].sent == len(expected)
        assert stats["first"].dropped == stats["second"].dropped == 0

    def test_submit_after_close_raises(self, make_dispatcher: MakeDispatcher) -> None:
        dispatcher = make_dispatcher([RecordingNotifier()])
        assert dispatcher.close() == []
        with pytest.raises(DispatcherClosed):
            dispatcher.submit(note())
        with pytest.raises(DispatcherClosed):
            dispatcher.send_now(note(), "recording")

    def test_hanging_channel_does_not_delay_another(
        self, make_dispatcher: MakeDispatcher
    ) -> None:
        hanging, recording = Hanging(), RecordingNotifier()
        dispatcher = make_dispatcher([hanging, recording])
        notifications = [note(f"n{i}") for i in range(5)]
        for notification in notifications:
            dispatcher.submit(notification)
        assert recording.wait_for(5, WAIT) == notifications
        hanging.wait_entered(1)
        stats = dispatcher.stats()
        assert stats["recording"].sent == 5
        assert stats["hanging"].sent == 0
        assert stats["hanging"].queued == 4
        assert [n.id for n in hanging.entered] == [notifications[0].id]
        assert not dispatcher.flush(0.05)  # the hanging channel still owes results
        assert len(dispatcher.close(timeout=0.1)) == 5

    def test_release_delivers_everything_in_order(
        self, make_dispatcher: MakeDispatcher
    ) -> None:
        hanging = Hanging()
        dispatcher = make_dispatcher([hanging])
        notifications = [note(f"n{i}") for i in range(4)]
        for notification in notifications:
            dispatcher.submit(notification)
        hanging.wait_entered(1)
        hanging.release()
        assert dispatcher.flush(WAIT)
        assert hanging.finished == notifications

    def test_overflow_is_dropped_counted_and_logged(
        self, make_dispatcher: MakeDispatcher, caplog: pytest.LogCaptureFixture
    ) -> None:
        hanging = Hanging()
        waiter = ResultWaiter()
        dispatcher = make_dispatcher([hanging], queue_size=2, on_result=[waiter])
        notifications = [note(f"n{i}") for i in range(5)]
        with caplog.at_level(logging.ERROR, logger="notifiers.dispatcher"):
            dispatcher.submit(notifications[0])
            hanging.wait_entered(1)  # in flight: the queue is empty again
            for notification in notifications[1:]:
                dispatcher.submit(notification)
            dropped = waiter.wait_for(2, DeliveryStatus.DROPPED)

        assert [r.notification_id for r in dropped] == [n.id for n in notifications[3:]]
        assert all(r.channel == "hanging" for r in dropped)
        assert all(r.attempts == 0 for r in dropped)
        assert not any(r.ok for r in dropped)
        stats = dispatcher.stats()["hanging"]
        assert (stats.dropped, stats.queued, stats.sent) == (2, 2, 0)
        drops = [
            r
            for r in caplog.records
            if r.levelno == logging.ERROR and "queue full" in r.getMessage()
        ]
        assert len(drops) == 2
        assert "'hanging'" in drops[0].getMessage()
        assert f"notification {notifications[3].id} (n3)" in drops[0].getMessage()
        # The dropped ones are done: only the three accepted still owe results.
        abandoned = dispatcher.close(timeout=0.1)
        assert [r.notification_id for r in abandoned] == [
            n.id for n in notifications[:3]
        ]
        assert dispatcher.flush(0)

    def test_a_burst_beyond_queue_size_overflows_a_healthy_channel_too(
        self, make_dispatcher: MakeDispatcher
    ) -> None:
        # queue_size bounds what one channel holds: whatever the channel's health,
        # nothing is lost silently; each submission ends delivered or dropped.
        recording = RecordingNotifier()
        dispatcher = make_dispatcher([recording], queue_size=2)
        for i in range(50):
            dispatcher.submit(note(f"n{i}"))
        assert dispatcher.flush(WAIT)
        statuses = [r.status for r in dispatcher.results]
        assert len(statuses) == 50
        assert set(statuses) <= {DeliveryStatus.DELIVERED, DeliveryStatus.DROPPED}
        stats = dispatcher.stats()["recording"]
        assert stats.sent == len(recording.sent)
        assert stats.sent + stats.dropped == 50


# ------------------------------------------------------------------ results


class TestResults:
    def test_fields_of_a_delivery(self, make_dispatcher: MakeDispatcher) -> None:
        recording = RecordingNotifier()
        waiter = ResultWaiter()
        dispatcher = make_dispatcher([recording], on_result=[waiter])
        notification = note(agent="worker", event="agent_error")
        dispatcher.submit(notification)
        [result] = waiter.wait_for(1)
        assert result.notification_id == notification.id
        assert result.channel == "recording"
        assert result.status is DeliveryStatus.DELIVERED
        assert result.ok
        assert result.attempts == 1
        assert result.error is None
        assert result.error_class is None
        assert result.duration >= 0
        assert (result.agent, result.event) == ("worker", "agent_error")
        assert list(dispatcher.results) == [result]

    def test_fields_of_a_failure_are_redacted(
        self,
        make_dispatcher: MakeDispatcher,
        fake_sleep: SleepRecorder,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        secret = "hook-secret-77a1f0c3"
        token = "5550001:AAFakeTokenFakeTokenFakeToken12345"
        SECRETS.add(secret)

        class Leaky(Notifier):
            channel = "leaky"

            async def send(self, notification: Notification) -> None:
                raise ConnectionError(f"POST {secret} with token {token} refused")

        flaky = FlakyNotifier([PermanentDeliveryError(f"denied for {secret}")])
        dispatcher = make_dispatcher(
            [Leaky(), flaky],
            policy=RetryPolicy(max_attempts=2, budget=1e9),
            sleep=fake_sleep,
        )
        with caplog.at_level(logging.DEBUG, logger="notifiers"):
            dispatcher.submit(note(severity=Severity.ERROR))
            assert dispatcher.flush(WAIT)
        results = {r.channel: r for r in dispatcher.results}
        leaky, permanent = results["leaky"], results["flaky"]
        assert leaky.status is DeliveryStatus.FAILED
        assert leaky.attempts == 2
        assert leaky.error_class == "TransientDeliveryError"
        assert leaky.error is not None
        assert leaky.error.startswith("ConnectionError: POST *** with token ***")
        assert permanent.status is DeliveryStatus.PERMANENT
        assert permanent.error == "denied for ***"
        assert permanent.duration >= 0
        stats = dispatcher.stats()
        for channel in ("leaky", "flaky"):
            assert secret not in (stats[channel].last_error or "")
        assert secret not in caplog.text
        assert token not in caplog.text
        assert "leaky" in caplog.text  # the final failure was logged

    def test_ring_buffer_keeps_the_latest(
        self, make_dispatcher: MakeDispatcher
    ) -> None:
        dispatcher = make_dispatcher([RecordingNotifier()], results_size=5)
        notifications = [note(f"n{i}") for i in range(12)]
        for notification in notifications:
            dispatcher.submit(notification)
        assert dispatcher.flush(WAIT)
        assert [r.notification_id for r in dispatcher.results] == [
            n.id for n in notifications[-5:]
        ]

    def test_hook_errors_are_logged_and_other_hooks_still_run(
        self, make_dispatcher: MakeDispatcher, caplog: pytest.LogCaptureFixture
    ) -> None:
        def broken(result: DeliveryResult) -> None:
            raise RuntimeError("hook boom")

        before, after = ResultWaiter(), ResultWaiter()
        dispatcher = make_dispatcher([RecordingNotifier()], on_result=[before, broken])
        dispatcher.add_hook(after)
        with caplog.at_level(logging.ERROR, logger="notifiers.dispatcher"):
            dispatcher.submit(note())
            dispatcher.submit(note())
            assert dispatcher.flush(WAIT)
        assert len(before.results) == len(after.results) == 2
        failures = [r for r in caplog.records if "hook" in r.getMessage()]
        assert len(failures) == 2
        assert all(r.levelno == logging.ERROR for r in failures)
        assert "RuntimeError: hook boom" in caplog.text

    def test_stats_are_a_snapshot(self, make_dispatcher: MakeDispatcher) -> None:
        dispatcher = make_dispatcher([RecordingNotifier()])
        snapshot = dispatcher.stats()["recording"]
        snapshot.sent = 99
        assert dispatcher.stats()["recording"].sent == 0


# ------------------------------------------------------------------ flush, send_now


class TestFlushAndSendNow:
    def test_flush_with_nothing_submitted(
        self, make_dispatcher: MakeDispatcher
    ) -> None:
        assert make_dispatcher([RecordingNotifier()]).flush(0)

    def test_flush_waits_for_every_result(
        self, make_dispatcher: MakeDispatcher, fake_sleep: SleepRecorder
    ) -> None:
        recording = RecordingNotifier(delay=0.001)
        flaky = FlakyNotifier([TransientDeliveryError("x")] * 3)
        dispatcher = make_dispatcher([recording, flaky], sleep=fake_sleep)
        for i in range(20):
            dispatcher.submit(note(f"n{i}"))
        assert dispatcher.flush(WAIT)
        assert len(recording.sent) == 20
        assert len(flaky.sent) == 20
        assert len(dispatcher.results) == 40

    def test_send_now_success(self, make_dispatcher: MakeDispatcher) -> None:
        first, second = (
            RecordingNotifier(name="first"),
            RecordingNotifier(name="second"),
        )
        dispatcher = make_dispatcher([first, second])
        notification = note("test message")
        result = dispatcher.send_now(notification, "second")
        assert result.ok
        assert result.attempts == 1
        assert result.notification_id == notification.id
        assert second.sent == [notification]
        assert first.sent == []
        assert dispatcher.stats()["second"].sent == 1

    def test_send_now_retries_then_succeeds(
        self, make_dispatcher: MakeDispatcher, fake_sleep: SleepRecorder
    ) -> None:
        flaky = FlakyNotifier([TransientDeliveryError("x")])
        dispatcher = make_dispatcher([flaky], sleep=fake_sleep)
        result = dispatcher.send_now(note(), "flaky")
        assert result.ok
        assert result.attempts == 2

    def test_send_now_raises_retries_exhausted(
        self, make_dispatcher: MakeDispatcher, fake_sleep: SleepRecorder
    ) -> None:
        flaky = FlakyNotifier([TransientDeliveryError("down")] * 10)
        dispatcher = make_dispatcher(
            [flaky], policy=RetryPolicy(max_attempts=3, budget=1e9), sleep=fake_sleep
        )
        with pytest.raises(RetriesExhausted) as caught:
            dispatcher.send_now(note(), "flaky")
        error = caught.value
        assert error.channel == "flaky"
        assert error.attempts == 3
        assert "failed" in str(error)
        assert "down" in str(error)
        assert error.last_error.message == "down"

    def test_send_now_permanent(
        self, make_dispatcher: MakeDispatcher, fake_sleep: SleepRecorder
    ) -> None:
        flaky = FlakyNotifier([PermanentDeliveryError("chat not found")])
        dispatcher = make_dispatcher([flaky], sleep=fake_sleep)
        with pytest.raises(RetriesExhausted, match="permanent: chat not found") as e:
            dispatcher.send_now(note(), "flaky")
        assert e.value.attempts == 1

    def test_send_now_unknown_channel(self, make_dispatcher: MakeDispatcher) -> None:
        dispatcher = make_dispatcher([RecordingNotifier()])
        with pytest.raises(KeyError):
            dispatcher.send_now(note(), "nope")


# ------------------------------------------------------------------ close


class TestClose:
    def test_close_drains_what_is_queued(self, make_dispatcher: MakeDispatcher) -> None:
        recording = RecordingNotifier(delay=0.001)
        dispatcher = make_dispatcher([recording])
        for i in range(10):
            dispatcher.submit(note(f"n{i}"))
        assert dispatcher.close(timeout=WAIT) == []
        assert len(recording.sent) == 10
        assert dispatcher.close() == []

    def test_close_with_a_blocked_channel_returns_what_it_abandoned(
        self, make_dispatcher: MakeDispatcher, caplog: pytest.LogCaptureFixture
    ) -> None:
        hanging, recording = Hanging(), RecordingNotifier()
        waiter = ResultWaiter()
        dispatcher = make_dispatcher([hanging, recording], on_result=[waiter])
        notifications = [
            note(f"n{i}", agent="w", event="agent_error") for i in range(3)
        ]
        for notification in notifications:
            dispatcher.submit(notification)
        hanging.wait_entered(1)
        recording.wait_for(3, WAIT)

        with caplog.at_level(logging.ERROR, logger="notifiers.dispatcher"):
            abandoned = dispatcher.close(timeout=0.1)

        # The one in flight first, then the queued ones.
        assert [r.notification_id for r in abandoned] == [n.id for n in notifications]
        assert all(r.status is DeliveryStatus.ABANDONED for r in abandoned)
        assert all(r.channel == "hanging" for r in abandoned)
        assert all((r.agent, r.event) == ("w", "agent_error") for r in abandoned)
        hooked = [r for r in waiter.results if r.status is DeliveryStatus.ABANDONED]
        assert hooked == abandoned
        assert [r for r in dispatcher.results if r.channel == "hanging"] == abandoned
        assert dispatcher.stats()["hanging"].abandoned == 3
        assert dispatcher.stats()["recording"].abandoned == 0
        assert hanging.cancelled == notifications[:1]
        assert hanging.closed
        assert "3 notification(s) abandoned" in caplog.text
        assert dispatcher.flush(0)
        assert dispatcher.close() == []
        assert not any(t.name == "notifiers-test-0" for t in threading.enumerate())

    def test_close_ends_a_channel_whose_queue_was_full(
        self, make_dispatcher: MakeDispatcher
    ) -> None:
        # A full queue has no room for close()'s stop marker. Here everything is
        # delivered right after close() begins, so the worker should end on its
        # own; it must not sit on an empty queue until close()'s timeout runs out
        # and then be cancelled (close() would always take its whole timeout).
        gated = Hanging(name="gated")

        class Releaser(RecordingNotifier):
            async def send(self, notification: Notification) -> None:
                await super().send(notification)
                if notification.title == "release":
                    gated.release()

        dispatcher = make_dispatcher([gated, Releaser(name="releaser")], queue_size=2)
        dispatcher.submit(note("hold"))
        gated.wait_entered(1)
        dispatcher.submit(note("hold"))
        dispatcher.submit(note("release"))  # fills the gated queue: 2 pending
        abandoned = dispatcher.close(timeout=1.0)
        assert abandoned == []
        assert [n.title for n in gated.finished] == ["hold", "hold", "release"]
        worker = dispatcher._channels["gated"].task
        assert worker is not None
        assert not worker.cancelled(), "the worker waited out close()'s whole timeout"

    def test_close_abandons_a_delivery_waiting_to_retry(
        self, make_dispatcher: MakeDispatcher
    ) -> None:
        slept = threading.Event()

        async def never_wakes(seconds: float) -> None:
            slept.set()
            await asyncio.Event().wait()

        flaky = FlakyNotifier([TransientDeliveryError("down")] * 5)
        dispatcher = make_dispatcher([flaky], sleep=never_wakes)
        notification = note()
        dispatcher.submit(notification)
        assert slept.wait(WAIT)
        [abandoned] = dispatcher.close(timeout=0.1)
        assert abandoned.notification_id == notification.id
        assert abandoned.status is DeliveryStatus.ABANDONED
        assert dispatcher.stats()["flaky"].retried == 1


# ------------------------------------------------------------------ flush and the state


def test_flush_returns_only_once_delivered_rows_are_deleted(
    make_dispatcher: MakeDispatcher, tmp_path: Path
) -> None:
    """flush() must not see the dispatcher settled while the delete of delivered rows
    is still running (seen as 'rows left pending' by bench_alerts under load)."""
    with NotifierState(tmp_path / "notify.sqlite3") as state:
        deleting = threading.Event()
        original = state.delivered

        def slow_delete(ids: Iterable[int]) -> int:
            deleting.set()
            time.sleep(0.3)  # a slow disk: the delete takes its time
            return original(ids)

        state.delivered = slow_delete  # type: ignore[method-assign]
        dispatcher = make_dispatcher([RecordingNotifier()], state=state)
        for i in range(20):
            dispatcher.submit(note(f"n{i}"))
        assert dispatcher.flush(WAIT)
        assert deleting.is_set()
        assert state.rows() == []
        dispatcher.close()
