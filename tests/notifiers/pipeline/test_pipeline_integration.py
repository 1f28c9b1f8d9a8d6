# ruff: noqa: RUF001  (the texts under test use the multiplication sign)
"""The alert rules against a real orchestrator: a crash loop, a muted agent, recovery,
and the threads the rules use.

Events of one agent reach the callbacks in order, and the recorder is registered
after ``attach``: once the recorder has seen an event, the attachment has handled it.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from notifiers import Notification, NotifierConfigError
from notifiers.pipeline import AGENT_RECOVERED, AlertPipeline
from notifiers.presets import Attachment, attach
from notifiers.telegram import TelegramNotifier
from notifiers.testing import FakeTelegramServer, RecordingNotifier
from pyorchestrate import Orchestrator, OrchestratorEvent
from pyorchestrate.testing import EventRecorder, FakeClock
from tests.agents import BoomThread, ForeverThread, SleepForeverProcess

from ..conftest import NOTIFY_FAST

E = OrchestratorEvent
MakeOrchestrator = Callable[..., Orchestrator]

CRASH_LOOP: dict[str, Any] = {
    "restart": "always",
    "immediate_restarts": 50,
    "flap_restarts": None,
    "max_restarts": 49,
}
"""50 crashes as fast as the agent can crash, then FATAL (max_restarts)."""


@pytest.fixture(autouse=True)
def _dispatchers_closed(no_dispatcher_leaks: None) -> None:
    """Every test here must close every dispatcher and timer it made."""


def crash_loop(
    make: MakeOrchestrator, rules: Any, preset: str = "errors_only"
) -> tuple[RecordingNotifier, Attachment, EventRecorder]:
    """Run worker-3 through 50 crashes to FATAL with ``rules``; wait for the alerts."""
    orchestrator = make()
    orchestrator.register_agent(BoomThread, "worker-3", supervision=CRASH_LOOP)
    channel = RecordingNotifier()
    attachment = attach(orchestrator, preset, channel, rules=rules)
    recorder = EventRecorder().attach(orchestrator)
    started = time.monotonic()
    orchestrator.start()
    recorder.wait_for(E.AGENT_FATAL, "worker-3", timeout=30)
    assert time.monotonic() - started < 60  # "50 errors in a minute"
    assert len(recorder.of(E.AGENT_ERROR, "worker-3")) == 50
    assert attachment.dispatcher.flush(10)
    return channel, attachment, recorder


def count_in(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in {text!r}"
    return int(found.group(1))


def errors_told(texts: list[str], agent: str) -> int:
    """How many of ``agent``'s errors the message texts account for, each once.

    A failure alert and a flapping alert stand for one error each (the flapping
    alert is sent in place of the error that made it flapping); a group summary for
    the errors it hid; a note ("(+3 x agent_error suppressed …)", "(+5 alerts held
    back while … was flapping …)") for its count. A report of held-back alerts
    says nothing of its own: its notes carry the counts.
    """
    told = 0
    for text in map(html.unescape, texts):
        title, _, body = text.partition("\n")
        title = title.removeprefix("<b>").removesuffix("</b>")
        if title in (f"✖ {agent} failed",) or title.startswith(
            f"⚠ {agent} is flapping:"
        ):
            told += 1
        elif title.startswith(f"{agent}: agent_error ×"):
            hidden = count_in(r"×(\d+) in", title)
            told += hidden - (1 if "first was sent on its own" in body else 0)
        for line in body.splitlines():
            for pattern in (
                r"^\(\+(\d+) × agent_error suppressed",
                rf"^\(\+(\d+) alerts held back while {re.escape(agent)} was",
            ):
                found = re.match(pattern, line)
                if found:
                    told += int(found.group(1))
    return told


# ---------------------------------------------------------------- crash loops


def test_a_crash_loop_of_50_errors_gives_two_messages_with_the_counts(
    make_orchestrator: MakeOrchestrator,
) -> None:
    rules = {"group_window": 60.0, "flap_threshold": None}
    channel, attachment, _ = crash_loop(make_orchestrator, rules)
    attachment.detach()
    first, fatal = channel.sent  # at most 2: the first error, then FATAL
    assert first.event == "agent_error"
    assert first.title == "✖ worker-3 failed"
    assert "ValueError: boom" in first.body
    assert fatal.event == "agent_fatal"
    assert fatal.title == "☠ worker-3 is FATAL after 49 restarts"
    note = fatal.body.splitlines()[0]
    assert count_in(r"^\(\+(\d+) × agent_error suppressed since", note) == 49
    assert note.endswith("; last: ValueError: boom)")
    stats = attachment.pipeline.stats() if attachment.pipeline else None
    assert stats is not None
    # offered: every event of the 50 starts (STARTED, READY, ERROR, TERMINATED, and
    # RESTARTING or FATAL): the pipeline watches them all, the preset sends two kinds.
    assert (stats.offered, stats.grouped, stats.sent) == (250, 49, 2)


def test_a_crash_loop_with_the_default_rules_flaps_once_then_stays_quiet(
    make_orchestrator: MakeOrchestrator,
) -> None:
    channel, attachment, _ = crash_loop(make_orchestrator, rules=None)
    attachment.detach()
    first, flapping, fatal = channel.sent
    assert first.title == "✖ worker-3 failed"
    assert flapping.title.startswith("⚠ worker-3 is flapping: 5 errors in ")
    grouped = count_in(r"^\(\+(\d+) × agent_error suppressed", flapping.body)
    assert grouped == 3  # errors 2 to 4; the 5th is the flapping alert itself
    assert fatal.title == "☠ worker-3 is FATAL after 49 restarts"
    held = count_in(
        r"^\(\+(\d+) alerts held back while worker-3 was flapping", fatal.body
    )
    assert held == 45
    assert 1 + grouped + 1 + held == 50  # every error is accounted for


def test_a_crash_loop_in_the_lifecycle_preset_stays_bounded(
    make_orchestrator: MakeOrchestrator,
) -> None:
    """5 events per crash, 250 in all: the default rules send a handful."""
    channel, attachment, recorder = crash_loop(make_orchestrator, None, "lifecycle")
    attachment.detach()
    assert len(recorder.events) == 250
    events = [n.event for n in channel.sent]
    assert len(events) <= 16, events
    assert events.count("agent_flapping") == 1
    assert events[-1] == "agent_fatal"
    assert "alerts held back while worker-3 was flapping" in channel.sent[-1].body


def test_without_rules_every_error_is_sent(make_orchestrator: MakeOrchestrator) -> None:
    channel, attachment, _ = crash_loop(make_orchestrator, rules=False)
    assert attachment.pipeline is None
    attachment.detach()
    assert [n.event for n in channel.sent].count("agent_error") == 50


TOKEN = "123456789:AAHfakeTokenForPipelineTests_0123456789"


@pytest.mark.process
def test_errors_after_the_flapping_alert_are_reported_by_detach(
    make_orchestrator: MakeOrchestrator, fake_telegram: FakeTelegramServer
) -> None:
    """10 kills of a process agent that keeps restarting (never FATAL, never stable
    within the test): after "is flapping", errors 6 to 10 are held back, and
    detach() reports them; every error is in a Telegram message, once."""
    orchestrator = make_orchestrator()
    orchestrator.register_agent(
        SleepForeverProcess,
        "w",
        supervision={
            "restart": "on-failure",
            "immediate_restarts": 100,
            "flap_restarts": None,
        },
    )
    channel = TelegramNotifier(TOKEN, 42, base_url=fake_telegram.base_url)
    attachment = attach(orchestrator, "errors_only", channel)
    recorder = EventRecorder().attach(orchestrator)
    orchestrator.start()
    for kill in range(1, 11):
        ready = recorder.wait_for(E.AGENT_READY, "w", count=kill)
        os.kill(ready["pid"], signal.SIGKILL)
        recorder.wait_for(E.AGENT_ERROR, "w", count=kill)
    recorder.wait_for(E.AGENT_READY, "w", count=11)  # restarted, running again
    assert recorder.of(E.AGENT_FATAL, "w") == []

    assert attachment.detach(30) == []

    texts = [m["text"] for m in fake_telegram.messages]
    assert errors_told(texts, "w") == 10, texts
    assert "is flapping" in texts[1]
    assert html.unescape(texts[-1]).startswith("<b>⏸ w: 5 alerts held back"), texts


# ---------------------------------------------------------------- mutes


@contextlib.contextmanager
def clocked_orchestrator(clock: FakeClock) -> Iterator[Orchestrator]:
    """An orchestrator on ``clock``; shut down with the clock running by itself."""
    orchestrator = Orchestrator(
        "alerts",
        Orchestrator.Config(**{**NOTIFY_FAST, "agent_start_timeout": 60.0}),
        clock=clock,
    )
    try:
        yield orchestrator
    finally:
        done = threading.Event()

        def tick() -> None:
            while not done.wait(0.02):
                clock.advance(0.25)

        ticker = threading.Thread(target=tick, name="test-fake-clock", daemon=True)
        ticker.start()
        try:
            orchestrator.shutdown(timeout=5.0)
        finally:
            done.set()
            ticker.join()


def test_a_muted_agent_sends_nothing_until_the_mute_expires() -> None:
    clock = FakeClock()
    with clocked_orchestrator(clock) as orchestrator:
        orchestrator.register_agent(
            BoomThread,
            "worker-3",
            supervision={
                "restart": "on-failure",
                "immediate_restarts": 0,
                "backoff_initial": 1.0,
                "backoff_multiplier": 1.0,
                "backoff_jitter": 0.0,
                "flap_restarts": None,
                "max_restarts": 5,
            },
        )
        orchestrator.register_agent(BoomThread, "db")  # not muted, no restarts
        channel = RecordingNotifier()
        pipeline = AlertPipeline({"flap_threshold": None}, clock=clock)
        attachment = attach(orchestrator, "errors_only", channel, rules=pipeline)
        recorder = EventRecorder().attach(orchestrator)
        attachment.mute("worker-3", seconds=3.5, reason="deploy")
        orchestrator.start()
        # Crashes at t = 0, 1, 2, 3 (one each second of fake time): all muted.
        for crash in range(1, 5):
            recorder.wait_for(E.AGENT_ERROR, "worker-3", count=crash)
            recorder.wait_for(E.AGENT_RESTARTING, "worker-3", count=crash)
            if crash == 4:
                recorder.wait_for(E.AGENT_TERMINATED, "db")
                assert attachment.dispatcher.flush(10)
                assert [n.agent for n in channel.sent] == ["db"]
            clock.advance(1.0)
        # The 5th crash (t = 4) is after the mute: sent, with the count; the 6th
        # (t = 5) is the last before FATAL (max_restarts).
        recorder.wait_for(E.AGENT_ERROR, "worker-3", count=5)
        recorder.wait_for(E.AGENT_RESTARTING, "worker-3", count=5)
        clock.advance(1.0)
        recorder.wait_for(E.AGENT_FATAL, "worker-3")
        assert attachment.dispatcher.flush(10)
        attachment.detach()
    by_agent: dict[str | None, list[Notification]] = {}
    for notification in channel.sent:
        by_agent.setdefault(notification.agent, []).append(notification)
    assert [n.event for n in by_agent["db"]] == ["agent_error"]
    error, fatal = by_agent["worker-3"]
    assert error.event == "agent_error"
    assert error.generation == 5  # the first after the mute
    assert re.match(
        r"\(\+4 alerts muted since \d\d:\d\d\)$", error.body.splitlines()[0]
    )
    assert fatal.event == "agent_fatal"
    assert fatal.body.startswith("(+1 × agent_error suppressed since")  # crash 6
    assert attachment.pipeline is pipeline
    assert pipeline.stats().muted == 4


def test_a_mute_predicate(make_orchestrator: MakeOrchestrator) -> None:
    orchestrator = make_orchestrator()
    orchestrator.register_agent(BoomThread, "noisy")
    orchestrator.register_agent(BoomThread, "db")
    channel = RecordingNotifier()
    attachment = attach(
        orchestrator,
        "errors_only",
        channel,
        muted=lambda agent, event: agent == "noisy",
    )
    recorder = EventRecorder().attach(orchestrator)
    orchestrator.start()
    recorder.wait_for(E.AGENT_TERMINATED, "noisy")
    recorder.wait_for(E.AGENT_TERMINATED, "db")
    attachment.detach()
    assert [n.agent for n in channel.sent] == ["db"]


# ---------------------------------------------------------------- recovery


def test_recovery_although_the_preset_does_not_send_ready() -> None:
    clock = FakeClock()
    with clocked_orchestrator(clock) as orchestrator:
        orchestrator.register_agent(
            FlakyOnceThread, "worker-3", supervision={"restart": "on-failure"}
        )
        channel = RecordingNotifier()
        pipeline = AlertPipeline({"recovery": True, "stable_after": 30.0}, clock=clock)
        attachment = attach(orchestrator, "errors_only", channel, rules=pipeline)
        recorder = EventRecorder().attach(orchestrator)
        orchestrator.start()
        recorder.wait_for(E.AGENT_READY, "worker-3")  # the second start: at once
        assert attachment.dispatcher.flush(10)
        assert [n.event for n in channel.sent] == ["agent_error"]
        clock.advance(30.0)  # stable: the timer follows the fake clock
        channel.wait_for(2)
        orchestrator.stop_agent("worker-3")
        recorder.wait_for(E.AGENT_TERMINATED, "worker-3", count=2)
        attachment.detach()
    _error, recovered = channel.sent
    assert recovered.event == AGENT_RECOVERED
    assert recovered.title == "✔ worker-3 recovered after 0 s"
    assert "1 error(s), 1 restart(s)" in recovered.body


class FlakyOnceThread(ForeverThread):
    """Fails its first start (generation 1), then loops until stopped."""

    def setup(self) -> None:
        super().setup()
        if self.generation_id == 1:
            raise RuntimeError("first start fails")


# ---------------------------------------------------------------- arguments, threads


def test_bad_rules_are_named_and_nothing_is_attached(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator()
    with pytest.raises(NotifierConfigError) as caught:
        attach(
            orchestrator, "errors_only", RecordingNotifier(), rules={"dedup_window": 0}
        )
    assert caught.value.errors[0][0] == "rules.dedup_window"
    with pytest.raises(TypeError, match="rules=False"):
        attach(
            orchestrator,
            "errors_only",
            RecordingNotifier(),
            rules=False,
            muted=lambda a, e: False,
        )


def test_a_broken_pipeline_template_fails_at_attach(
    make_orchestrator: MakeOrchestrator,
) -> None:
    from notifiers import Template

    broken = {"alert_group": Template("{count:s}", "")}  # 's' on an int
    with pytest.raises(NotifierConfigError) as caught:
        attach(
            make_orchestrator(), "errors_only", RecordingNotifier(), templates=broken
        )
    assert caught.value.errors[0][0] == "templates.alert_group"


def test_the_timer_thread_sends_a_summary_and_detach_joins_it(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator()
    orchestrator.register_agent(BoomThread, "worker-3", supervision=CRASH_LOOP)
    channel = RecordingNotifier()
    attachment = attach(
        orchestrator,
        "errors_only",
        channel,
        rules={
            "group_window": 0.3,
            "dedup_window": None,  # else identical repeats wait out its 5 minutes
            "flap_threshold": None,
            "quiet_after_fatal": False,
        },
        events=["agent_error"],  # no FATAL to fold the group into
    )
    recorder = EventRecorder().attach(orchestrator)
    orchestrator.start()
    recorder.wait_for(E.AGENT_FATAL, "worker-3", timeout=30)
    timers = [
        t for t in threading.enumerate() if t.name == "notifiers-pipeline-errors_only"
    ]
    assert timers, "the timer thread runs while a summary is pending"
    sent = channel.wait_for(2)
    assert sent[0].title == "✖ worker-3 failed"
    total = 1 + sum(
        count_in(r"×(\d+) in", n.title) - (1 if "first was sent" in n.body else 0)
        for n in sent[1:]
    )
    assert sent[1].title.startswith("worker-3: agent_error ×")
    attachment.detach()
    assert not any(t.is_alive() for t in timers)
    summed = 1 + sum(
        count_in(r"×(\d+) in", n.title) - (1 if "first was sent" in n.body else 0)
        for n in channel.sent[1:]
    )
    assert total <= summed == 50  # every error counted once, in the first or a summary
