"""Delivery failures surface (issue 13, item 4): close()/detach() return a summary per
channel, a delivery that fails for good is one WARNING line (channel, error class, no
secret), and each retry's wait is one INFO line. Against the fake Bot API on
127.0.0.1; retry waits on a recorded fake sleep."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable

import pytest

from notifiers import DeliveryStatus, Dispatcher, Notification, RetryPolicy
from notifiers.dispatcher import ChannelSummary, CloseReport
from notifiers.presets import attach
from notifiers.telegram import TelegramNotifier
from notifiers.testing import FakeTelegramServer, RecordingNotifier
from pyorchestrate import OrchestratorEvent
from pyorchestrate.testing import wait_until

from ..conftest import SleepRecorder
from ..presets.test_presets import FakeOrchestrator

MakeDispatcher = Callable[..., Dispatcher]
GOOD = "111111111:AAHgoodTokenForSummaryTests_01234567"
WRONG = "222222222:AAHwrongTokenForSummaryTests_7654321"
POLICY = RetryPolicy(max_attempts=5, budget=1e9, initial=0.01, max_wait=1, jitter=0)


class Stuck(RecordingNotifier):
    """Never finishes a send; ``entered`` is set when the first one starts."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.entered = threading.Event()

    async def send(self, notification: Notification) -> None:
        self.entered.set()
        await asyncio.Event().wait()


def alert(n: int) -> Notification:
    return Notification(f"alert {n}", "disk full", agent=f"worker-{n}", event="error")


def test_close_returns_the_counts_of_each_channel_after_a_mix(
    make_dispatcher: MakeDispatcher,
    fake_telegram: FakeTelegramServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """4 alerts: the good chat delivers them, the wrong token fails each one for
    good (one WARNING each, no token), the stuck channel drops the one beyond its
    queue and abandons the rest at close()."""
    with FakeTelegramServer() as refusing:
        refusing.script(["401"] * 10)  # what Telegram answers a wrong token
        stuck = Stuck(name="stuck")
        dispatcher = make_dispatcher(
            [
                TelegramNotifier(GOOD, 42, base_url=fake_telegram.base_url),
                TelegramNotifier(
                    WRONG, 42, base_url=refusing.base_url, name="wrong_token"
                ),
                stuck,
            ],
            policy=POLICY,
            queue_size=2,
        )
        with caplog.at_level(logging.INFO, logger="notifiers"):
            dispatcher.submit(alert(0))
            assert stuck.entered.wait(10)  # alert 0 is in flight on "stuck"
            for n in (1, 2, 3):  # 1 and 2 fill stuck's queue, 3 is dropped there
                dispatcher.submit(alert(n))
                assert wait_until(  # the others' queues are empty again
                    lambda n=n: (
                        dispatcher.summary()["telegram"].delivered == n + 1
                        and dispatcher.summary()["wrong_token"].failed == n + 1
                    ),
                    timeout=20,
                )
            report = dispatcher.close(timeout=0.3)

    assert isinstance(report, CloseReport) and isinstance(report, list)
    assert sorted(r.agent or "" for r in report) == ["worker-0", "worker-1", "worker-2"]
    assert {(r.channel, r.status) for r in report} == {
        ("stuck", DeliveryStatus.ABANDONED)
    }
    assert report.summary == {
        "telegram": ChannelSummary(delivered=4),
        "wrong_token": ChannelSummary(failed=4),
        "stuck": ChannelSummary(dropped=1, abandoned=3),
    }
    assert report.ok is False
    assert str(report).splitlines() == [
        "telegram: 4 delivered, 0 failed, 0 dropped, 0 abandoned",
        "wrong_token: 0 delivered, 4 failed, 0 dropped, 0 abandoned",
        "stuck: 0 delivered, 0 failed, 1 dropped, 3 abandoned",
    ]
    failures = [
        r
        for r in caplog.records
        if r.name == "notifiers.dispatcher" and "'wrong_token'" in r.getMessage()
    ]
    assert [r.levelno for r in failures] == [logging.WARNING] * 4
    for record in failures:
        assert re.match(
            r"channel 'wrong_token': notification \d+ permanent after 1 attempt\(s\): "
            r"InvalidToken: ",
            record.getMessage(),
        ), record.getMessage()
    assert WRONG not in caplog.text and WRONG.split(":")[1] not in caplog.text
    assert "dispatcher closed: telegram: 4 delivered" in caplog.text
    again = dispatcher.close()  # idempotent: nothing more abandoned, same counts
    assert again == [] and again.summary == report.summary


def test_a_clean_run_reports_ok(
    make_dispatcher: MakeDispatcher, fake_telegram: FakeTelegramServer
) -> None:
    dispatcher = make_dispatcher(
        [TelegramNotifier(GOOD, 42, base_url=fake_telegram.base_url)]
    )
    dispatcher.submit(alert(1))
    assert dispatcher.flush(10)
    report = dispatcher.close()
    assert report == [] and report.ok
    assert str(report) == "telegram: 1 delivered, 0 failed, 0 dropped, 0 abandoned"


def test_each_retry_wait_is_one_info_line(
    make_dispatcher: MakeDispatcher,
    fake_telegram: FakeTelegramServer,
    fake_sleep: SleepRecorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two 502s, then delivered: two INFO lines with the attempt, the error class
    and the wait; no WARNING (it did not fail for good)."""
    fake_telegram.script(["502", "502"])
    dispatcher = make_dispatcher(
        [TelegramNotifier(GOOD, 42, base_url=fake_telegram.base_url)],
        policy=POLICY,
        sleep=fake_sleep,
    )
    with caplog.at_level(logging.INFO, logger="notifiers"):
        dispatcher.submit(alert(1))
        assert dispatcher.flush(10)
    progress = [r for r in caplog.records if r.name == "notifiers.retry"]
    assert [r.levelno for r in progress] == [logging.INFO] * 2
    assert [r.getMessage() for r in progress] == [
        "telegram: attempt 1/5 failed (NetworkError), next in 0.01 s",
        "telegram: attempt 2/5 failed (NetworkError), next in 0.02 s",
    ]
    assert fake_sleep.waits == [0.01, 0.02]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert GOOD.split(":")[1] not in caplog.text
    assert dispatcher.close().summary == {"telegram": ChannelSummary(delivered=1)}


def test_detach_returns_the_report_of_its_dispatcher(
    fake_telegram: FakeTelegramServer,
) -> None:
    orchestrator = FakeOrchestrator()
    alerts = attach(
        orchestrator,
        "errors_only",
        TelegramNotifier(GOOD, 42, base_url=fake_telegram.base_url),
    )
    orchestrator.emit(
        OrchestratorEvent.AGENT_ERROR, agent_name="etl", error_message="boom"
    )
    report = alerts.detach()
    assert report == []
    assert report.summary == {"telegram": ChannelSummary(delivered=1)}
    assert alerts.detach().summary == report.summary  # a second call: same counts
