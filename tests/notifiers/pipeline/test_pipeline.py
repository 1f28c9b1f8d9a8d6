# ruff: noqa: RUF001  (the texts under test use the multiplication sign and en dash)
"""The alert pipeline on a fake clock: dedup, grouping, flapping, FATAL, recovery,
mutes, quiet hours, its config and its timer thread.

Every pipeline here runs on a ``FakeClock`` starting at 0, with wall-clock time
09:58:00 in Europe/Berlin at that moment, so the times in the texts are exact.
"""

from __future__ import annotations

import datetime as _dt
import random
import threading
import time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from notifiers import Notification, NotifierConfigError, Severity
from notifiers.pipeline import (
    AGENT_FLAPPING,
    AGENT_HELD_BACK,
    AGENT_RECOVERED,
    ALERTS_DIGEST,
    AlertPipeline,
    PipelineConfig,
    PipelineTimer,
)
from notifiers.templates import Template, format_duration, render
from pyorchestrate import OrchestratorEvent
from pyorchestrate.testing import FakeClock

E = OrchestratorEvent
BERLIN = ZoneInfo("Europe/Berlin")
T0 = _dt.datetime(2026, 11, 25, 9, 58, 0, tzinfo=BERLIN).timestamp()
"""Wall-clock time when the fake clock reads 0."""
OFF: dict[str, Any] = {
    "dedup_window": None,
    "group_window": None,
    "flap_threshold": None,
    "quiet_after_fatal": False,
}
"""Rules that let everything through (add the one under test)."""


def make(
    rules: dict[str, Any] | None = None, *, start_wall: float = T0, **kwargs: Any
) -> tuple[AlertPipeline, FakeClock]:
    clock = FakeClock(start=0.0)
    config = {"timezone": "Europe/Berlin", **(rules or {})}
    pipeline = AlertPipeline(
        config, clock=clock, wall_clock=lambda: start_wall + clock(), **kwargs
    )
    return pipeline, clock


def ev(
    event: OrchestratorEvent,
    agent: str = "worker-3",
    error: str | None = "ValueError: boom",
    **kwargs: Any,
) -> Notification:
    """What the preset's handler makes of an event (rendered with the defaults)."""
    fields: dict[str, Any] = {"event": event, "agent_name": agent, **kwargs}
    if event in (E.AGENT_ERROR, E.AGENT_FATAL):
        fields["error_message"] = error
    return render(fields)


def at(clock: FakeClock, when: float) -> None:
    clock.advance(when - clock())


def titles(notifications: list[Notification]) -> list[str]:
    return [n.title for n in notifications]


# ---------------------------------------------------------------- pass-through


def test_an_alert_on_its_own_passes_unchanged() -> None:
    pipeline, _ = make()
    alert = ev(E.AGENT_ERROR)
    assert pipeline.offer(alert) == [alert]
    assert pipeline.next_due() is None  # nothing pending: no timer needed


def test_observed_events_are_never_sent() -> None:
    pipeline, _ = make()
    assert pipeline.offer(ev(E.AGENT_READY), forward=False) == []
    assert pipeline.offer(ev(E.AGENT_ERROR), forward=False) == []


def test_rules_off_lets_everything_through() -> None:
    pipeline, _ = make(PipelineConfig.off().model_dump())
    alerts = [ev(E.AGENT_ERROR) for _ in range(20)]
    sent = [n for a in alerts for n in pipeline.offer(a)]
    assert sent == alerts


# ---------------------------------------------------------------- grouping


def test_a_group_window_sends_the_first_at_once_and_one_summary_with_exact_counts() -> (
    None
):
    pipeline, clock = make({**OFF, "group_window": 300.0})
    sent = pipeline.offer(ev(E.AGENT_ERROR, error="ValueError: boom 1"))
    assert titles(sent) == ["✖ worker-3 failed"]
    for n in range(2, 13):  # every 25 s: the last at 275 s
        at(clock, 25.0 * (n - 1))
        assert pipeline.offer(ev(E.AGENT_ERROR, error=f"ValueError: boom {n}")) == []
    assert pipeline.next_due() == 300.0
    at(clock, 299.0)
    assert pipeline.due() == []
    at(clock, 300.0)
    (summary,) = pipeline.due()
    assert summary.title == "worker-3: agent_error ×12 in 5 min"
    assert "12 × agent_error from 09:58:00 to 10:02:35" in summary.body
    assert "(the first was sent on its own)" in summary.body
    assert "last: ValueError: boom 12" in summary.body
    assert summary.agent == "worker-3"
    assert summary.event == "agent_error"
    assert summary.severity is Severity.ERROR
    assert summary.error == "ValueError: boom 12"
    assert pipeline.stats().grouped == 11


def test_while_alerts_keep_coming_each_window_ends_in_one_summary() -> None:
    pipeline, clock = make({**OFF, "group_window": 60.0})
    out = pipeline.offer(ev(E.AGENT_ERROR, error="e0"))
    # 3 more in the first window, 5 in the second, none in the third.
    for when in (10, 20, 30, 70, 80, 90, 100, 110):
        at(clock, when)
        out += pipeline.offer(ev(E.AGENT_ERROR, error=f"e{when}"))
    at(clock, 200)
    out += pipeline.due()
    assert titles(out) == [
        "✖ worker-3 failed",
        "worker-3: agent_error ×4 in 30 s",
        "worker-3: agent_error ×5 in 40 s",
    ]
    assert "(the first was sent" not in out[2].body  # a continuation window
    assert pipeline.next_due() is None  # the quiet window closed the group
    # The next one starts a new group: sent at once.
    assert titles(pipeline.offer(ev(E.AGENT_ERROR, error="later"))) == [
        "✖ worker-3 failed"
    ]


def test_without_send_first_the_summary_is_the_only_message() -> None:
    pipeline, clock = make({**OFF, "group_window": 60.0, "group_send_first": False})
    for when in (0, 1, 2):
        at(clock, when)
        assert pipeline.offer(ev(E.AGENT_ERROR, error=f"e{when}")) == []
    at(clock, 60)
    (summary,) = pipeline.due()
    assert summary.title == "worker-3: agent_error ×3 in 2 s"
    assert "(the first was sent" not in summary.body


def test_groups_are_per_agent_and_event() -> None:
    pipeline, clock = make({**OFF, "group_window": 60.0})
    out: list[Notification] = []
    for agent in ("a", "b"):
        for event in (E.AGENT_ERROR, E.AGENT_RESTARTING):
            for n in range(3):
                out += pipeline.offer(ev(event, agent, error=f"x{n}", attempt=n))
    assert len(out) == 4  # the first of each (agent, event)
    at(clock, 60)
    summaries = pipeline.due()
    assert sorted(titles(summaries)) == [
        "a: agent_error ×3 in 0 s",
        "a: agent_restarting ×3 in 0 s",
        "b: agent_error ×3 in 0 s",
        "b: agent_restarting ×3 in 0 s",
    ]


def test_group_rules_override_per_agent_and_event() -> None:
    rules = {
        **OFF,
        "group_window": 60.0,
        "group_rules": [
            {"events": ["agent_error"], "agents": ["batch-*"], "window": None},
            {"events": ["agent_terminated"], "window": 10, "send_first": False},
        ],
    }
    pipeline, clock = make(rules)
    batch = [
        n
        for i in range(3)
        for n in pipeline.offer(ev(E.AGENT_ERROR, "batch-1", error=f"e{i}"))
    ]
    assert len(batch) == 3  # not grouped
    web = [
        n
        for i in range(3)
        for n in pipeline.offer(ev(E.AGENT_ERROR, "web", error=f"e{i}"))
    ]
    assert len(web) == 1  # the default window
    ended = [n for _ in range(2) for n in pipeline.offer(ev(E.AGENT_TERMINATED, "web"))]
    assert ended == []  # grouped by the rule, nothing first
    at(clock, 10)
    assert titles(pipeline.due()) == ["web: agent_terminated ×2 in 0 s"]


# ---------------------------------------------------------------- dedup


def test_identical_repeats_are_counted_into_the_next_message() -> None:
    pipeline, clock = make({**OFF, "dedup_window": 300.0})
    crash = ev(E.AGENT_TERMINATED, status="critical")
    crash = Notification(**{**_fields(crash), "severity": Severity.CRITICAL})
    assert pipeline.offer(crash) == [crash]
    for n in range(1, 8):  # 7 identical repeats within the window
        at(clock, 20.0 * n)
        assert pipeline.offer(crash) == []
    at(clock, 301.0)
    (again,) = pipeline.offer(crash)
    assert again.body.splitlines()[0] == "(+7 identical suppressed since 09:58)"
    assert again.title == crash.title
    assert pipeline.stats().deduplicated == 7


def test_suppressed_counts_go_on_the_agents_next_message_of_any_kind() -> None:
    pipeline, clock = make({**OFF, "dedup_window": 300.0})
    pipeline.offer(ev(E.AGENT_ERROR, error="KeyError: 'x'"))
    at(clock, 90)
    for _ in range(3):
        assert pipeline.offer(ev(E.AGENT_ERROR, error="KeyError: 'x'")) == []
    (other,) = pipeline.offer(ev(E.AGENT_ERROR, error="OSError: disk full"))
    assert other.body.splitlines()[0] == (
        "(+3 × agent_error suppressed since 09:59; last: KeyError: 'x')"
    )
    assert "OSError: disk full" in other.body
    # The count was shown: the next message has no note.
    (third,) = pipeline.offer(ev(E.AGENT_ERROR, error="third"))
    assert not third.body.startswith("(+")


def test_dedup_leaves_lower_severities_and_fatal_alone() -> None:
    pipeline, _ = make({**OFF, "dedup_window": 300.0})
    started = ev(E.AGENT_STARTED)
    assert len([n for _ in range(3) for n in pipeline.offer(started)]) == 3
    fatal = ev(E.AGENT_FATAL, attempt=5)
    assert len([n for _ in range(2) for n in pipeline.offer(fatal)]) == 2


def test_a_grouped_identical_repeat_waits_out_the_dedup_window() -> None:
    """One identical error every 2 minutes: one message per 5 minutes, all counted."""
    pipeline, clock = make({**OFF, "group_window": 60.0, "dedup_window": 300.0})
    out: list[Notification] = []
    for when in (0, 120, 240, 360, 480, 600):
        at(clock, when)
        out += pipeline.offer(ev(E.AGENT_ERROR))
        out += pipeline.due()
    at(clock, 601)
    out += pipeline.due()
    assert titles(out) == [
        "✖ worker-3 failed",
        "worker-3: agent_error ×2 in 2 min",  # at 300: the ones at 120 and 240
        "worker-3: agent_error ×2 in 2 min",  # at 600: 360 and 480
    ]
    (last,) = pipeline.flush()  # the one at 600 is still open
    assert last.title == "worker-3: agent_error ×1 in 0 s"


# ---------------------------------------------------------------- flapping, FATAL


def test_flapping_sends_one_alert_then_the_agent_is_quiet_until_stable() -> None:
    pipeline, clock = make(
        {**OFF, "group_window": 60.0, "flap_threshold": 5, "stable_after": 30.0}
    )
    out = pipeline.offer(ev(E.AGENT_ERROR))
    for n in range(1, 5):
        at(clock, n)
        out += pipeline.offer(ev(E.AGENT_ERROR))
    assert len(out) == 2
    flapping = out[1]
    assert flapping.title == "⚠ worker-3 is flapping: 5 errors in 4 s"
    assert flapping.event == AGENT_FLAPPING
    assert flapping.severity is Severity.ERROR
    lines = flapping.body.splitlines()
    assert (
        lines[0] == "(+3 × agent_error suppressed since 09:58; last: ValueError: boom)"
    )
    assert "last: ValueError: boom" in lines[1]
    assert pipeline.next_due() is None  # the group was folded into it
    # Quiet: 15 more alerts of any kind, nothing sent.
    for n in range(15):
        at(clock, 5 + n)
        event = (E.AGENT_ERROR, E.AGENT_RESTARTING, E.AGENT_STARTED)[n % 3]
        assert pipeline.offer(ev(event, attempt=n)) == []
    assert pipeline.offer(ev(E.AGENT_READY), forward=False) == []
    assert pipeline.next_due() == 19 + 30  # when it may be stable
    # Stable for 30 s: what was held back is reported; the next alert goes out.
    at(clock, 19 + 30)
    (report,) = pipeline.due()
    assert report.event == AGENT_HELD_BACK
    assert report.title == "⏸ worker-3: 15 alerts held back, stable again"
    assert report.body.splitlines() == [
        "(+15 alerts held back while worker-3 was flapping, since 09:58)",
        "It has run 30 s without an error: its alerts are sent again.",
        "last: ▶ worker-3 started",
        f"host {report.host}",
    ]
    assert report.severity is Severity.ERROR  # it held errors
    (alert,) = pipeline.offer(ev(E.AGENT_ERROR, error="new"))
    assert alert.title == "✖ worker-3 failed"
    assert pipeline.stats().quiet == 15
    assert pipeline.stats().reports == 1


def test_flapping_counts_errors_within_the_window_only() -> None:
    pipeline, clock = make({**OFF, "flap_threshold": 3, "flap_window": 60.0})
    out: list[Notification] = []
    for when in (0, 50, 100, 150):  # never 3 within 60 s
        at(clock, when)
        out += pipeline.offer(ev(E.AGENT_ERROR))
    assert len(out) == 4
    at(clock, 160)
    out += pipeline.offer(ev(E.AGENT_ERROR))  # 100, 150, 160
    assert out[-1].event == AGENT_FLAPPING


def test_fatal_is_sent_once_then_quiet_until_an_operator_start() -> None:
    pipeline, clock = make(
        {**OFF, "group_window": 60.0, "quiet_after_fatal": True, "recovery": True}
    )
    out = pipeline.offer(ev(E.AGENT_ERROR))
    out += pipeline.offer(ev(E.AGENT_ERROR))
    out += pipeline.offer(ev(E.AGENT_ERROR))
    at(clock, 2)
    (fatal,) = pipeline.offer(ev(E.AGENT_FATAL, attempt=2, reason="max_restarts"))
    assert fatal.title == "☠ worker-3 is FATAL after 2 restarts"
    assert fatal.body.splitlines()[0] == (
        "(+2 × agent_error suppressed since 09:58; last: ValueError: boom)"
    )
    assert pipeline.next_due() is None  # no summary after it
    # Quiet: what still comes for the agent is held back, and reported every 5 min.
    assert pipeline.offer(ev(E.AGENT_TERMINATED)) == []
    assert pipeline.offer(ev(E.AGENT_ERROR, error="late")) == []
    assert pipeline.next_due() == 302
    at(clock, 302)
    (report,) = pipeline.due()
    assert report.title == "⏸ worker-3: 2 alerts held back, still FATAL"
    assert report.body.splitlines()[:3] == [
        "(+2 alerts held back while worker-3 was FATAL, since 09:58)",
        "It is FATAL: its alerts are held back and counted every 5 min until an "
        "operator starts it.",
        "last: late",
    ]
    assert pipeline.next_due() is None  # nothing new held: no report
    at(clock, 400)
    assert pipeline.offer(ev(E.AGENT_ERROR, error="later")) == []
    # An operator starts it: the start is sent, with what was held since the report.
    at(clock, 600)
    (started,) = pipeline.offer(ev(E.AGENT_STARTED, generation_id=5))
    assert started.body.splitlines()[0] == (
        "(+1 alerts held back while worker-3 was FATAL, since 10:03)"
    )
    # READY, and stable for 30 s: recovered (from the first error to READY).
    at(clock, 602)
    assert pipeline.offer(ev(E.AGENT_READY)) == [Titled("✔ worker-3 ready")]
    assert pipeline.next_due() == 632
    at(clock, 632)
    (recovered,) = pipeline.due()
    assert recovered.title == "✔ worker-3 recovered after 10 min"
    assert recovered.event == AGENT_RECOVERED
    assert recovered.severity is Severity.INFO
    assert "failing since 09:58:00: 5 error(s)" in recovered.body


def test_flapping_then_fatal_sends_both_and_counts_what_was_between() -> None:
    pipeline, _ = make({**OFF, "flap_threshold": 3, "quiet_after_fatal": True})
    out = [n for _ in range(3) for n in pipeline.offer(ev(E.AGENT_ERROR))]
    assert [n.event for n in out] == ["agent_error", "agent_error", AGENT_FLAPPING]
    for _ in range(4):
        assert pipeline.offer(ev(E.AGENT_ERROR)) == []
    (fatal,) = pipeline.offer(ev(E.AGENT_FATAL, reason="flapping", attempt=6))
    assert fatal.body.startswith(
        "(+4 alerts held back while worker-3 was flapping, since 09:58)"
    )


def told(messages: list[Notification]) -> int:
    """How many offered alerts ``messages`` account for, each once.

    A message of an event itself, and a flapping alert (sent in place of the error
    that made the agent flapping), stand for one; a group summary for the alerts it
    hid; a quiet-hours digest for the alerts it held (not recoveries); a note
    ("(+3 …") for its count.
    Recoveries and reports of held-back alerts stand for nothing of their own: the
    notes they carry do.
    """
    total = 0
    for n in messages:
        if n.event in (AGENT_RECOVERED, AGENT_HELD_BACK):
            pass
        elif n.title.startswith(f"{n.agent}: {n.event} ×"):  # a group summary
            hidden = int(n.title.split("×")[1].split()[0])
            total += hidden - ("first was sent on its own" in n.body)
        elif n.event == ALERTS_DIGEST:  # a line per (agent, event) held
            for line in n.body.splitlines():
                _, _agent, event, count = line.split(" (last:")[0].split()
                if event != AGENT_RECOVERED:
                    total += int(count.removeprefix("×"))
            continue
        else:
            total += 1
        for line in n.body.splitlines():
            if line.startswith("(+"):
                total += int(line[2:].split()[0])
    return total


def test_while_flapping_what_is_held_back_is_reported_every_interval() -> None:
    pipeline, clock = make({**OFF, "flap_threshold": 3, "held_report_interval": 120.0})
    out: list[Notification] = []
    for n in range(10):  # an error every 10 s; flapping at the 3rd
        at(clock, 10 * n)
        out += pipeline.offer(ev(E.AGENT_ERROR, error=f"ValueError: boom {n}"))
    assert [n.event for n in out] == ["agent_error", "agent_error", AGENT_FLAPPING]
    assert pipeline.next_due() == 30 + 120  # the first held error was at 30 s
    at(clock, 150)
    (report,) = pipeline.due()
    assert report.event == AGENT_HELD_BACK
    assert report.title == "⏸ worker-3: 7 alerts held back, still flapping"
    assert report.body.splitlines()[:3] == [
        "(+7 alerts held back while worker-3 was flapping, since 09:58)",
        "It is still flapping: its alerts are held back and counted every 2 min "
        "until it has run 30 s without an error.",
        "last: ValueError: boom 9",
    ]
    assert pipeline.next_due() is None  # nothing new: no further report
    at(clock, 200)
    assert pipeline.offer(ev(E.AGENT_ERROR, error="ValueError: late")) == []
    assert pipeline.next_due() == 320
    at(clock, 320)
    (second,) = pipeline.due()
    assert second.body.splitlines()[0] == (
        "(+1 alerts held back while worker-3 was flapping, since 10:00)"
    )
    assert told([*out, report, second]) == 11
    assert pipeline.stats().reports == 2


def test_no_periodic_report_when_the_interval_is_off() -> None:
    pipeline, _ = make({**OFF, "flap_threshold": 3, "held_report_interval": None})
    out = [n for _ in range(5) for n in pipeline.offer(ev(E.AGENT_ERROR))]
    assert len(out) == 3
    assert pipeline.next_due() is None
    (report,) = pipeline.flush()  # but detach tells
    assert report.title == "⏸ worker-3: 2 alerts held back, alerting stopped"
    assert told([*out, report]) == 5


def test_detach_reports_what_every_agent_held_back() -> None:
    rules = {**OFF, "flap_threshold": 3, "dedup_window": 300.0}
    pipeline, clock = make(rules)
    out = [n for _ in range(5) for n in pipeline.offer(ev(E.AGENT_ERROR))]
    # Another agent's identical warnings: deduplicated, waiting for a next message.
    for _ in range(3):
        out += pipeline.offer(ev(E.AGENT_RESTARTING, "db", attempt=1))
    assert len(out) == 3  # error 2 was identical: counted on the flapping alert
    at(clock, 10)
    flushed = pipeline.flush()
    assert [(n.agent, n.title) for n in flushed] == [
        ("worker-3", "⏸ worker-3: 2 alerts held back, alerting stopped"),
        ("db", "⏸ db: 2 alerts held back, alerting stopped"),
    ]
    assert flushed[1].body.splitlines()[:2] == [
        "(+2 × agent_restarting suppressed since 09:58; last: ↻ db restarting "
        "(attempt 1))",
        "Alerting was detached before they were reported.",
    ]
    assert flushed[1].severity is Severity.WARNING
    assert told([*out, *flushed]) == 5 + 3
    assert pipeline.stats().notes_dropped == 0
    assert pipeline.flush() == []  # told once


def test_a_muted_report_is_dropped_and_counted_at_detach() -> None:
    pipeline, _ = make({**OFF, "flap_threshold": 3})
    for _ in range(5):
        pipeline.offer(ev(E.AGENT_ERROR))
    pipeline.mute("worker-3", seconds=60)
    assert pipeline.flush() == []
    assert pipeline.stats().notes_dropped == 2


def test_a_recovery_carries_what_the_flapping_held_back() -> None:
    pipeline, clock = make(
        {**OFF, "flap_threshold": 3, "recovery": True, "stable_after": 30.0}
    )
    out = [n for _ in range(6) for n in pipeline.offer(ev(E.AGENT_ERROR))]
    at(clock, 5)
    pipeline.offer(ev(E.AGENT_READY), forward=False)
    at(clock, 35)
    (recovered,) = pipeline.due()  # no report of its own
    assert recovered.event == AGENT_RECOVERED
    assert recovered.body.splitlines()[0] == (
        "(+3 alerts held back while worker-3 was flapping, since 09:58)"
    )
    assert told([*out, recovered]) == 6


def test_a_start_by_an_operator_reports_what_fatal_held_back_if_not_sent() -> None:
    pipeline, clock = make({**OFF, "quiet_after_fatal": True})
    assert len(pipeline.offer(ev(E.AGENT_FATAL, attempt=3))) == 1
    assert pipeline.offer(ev(E.AGENT_ERROR, error="late")) == []
    at(clock, 60)
    (report,) = pipeline.offer(ev(E.AGENT_STARTED), forward=False)
    assert report.title == "⏸ worker-3: 1 alerts held back, started again"
    assert report.body.splitlines()[1] == (
        "An operator started it: its alerts are sent again."
    )
    assert pipeline.offer(ev(E.AGENT_ERROR, error="new")) != []  # sent again


def test_fatal_not_sent_still_ends_the_flapping_count_with_a_report() -> None:
    pipeline, _ = make({**OFF, "flap_threshold": 3, "quiet_after_fatal": True})
    out = [n for _ in range(5) for n in pipeline.offer(ev(E.AGENT_ERROR))]
    (report,) = pipeline.offer(ev(E.AGENT_FATAL, attempt=4), forward=False)
    assert report.title == "⏸ worker-3: 2 alerts held back, now FATAL"
    assert told([*out, report]) == 5


def test_in_quiet_hours_a_report_goes_into_the_digest_once() -> None:
    rules = {
        **OFF,
        "flap_threshold": 3,
        "held_report_interval": 60.0,
        "quiet_hours": {"start": "10:00", "end": "11:00", "hold_below": "critical"},
    }
    pipeline, clock = make(rules)  # 09:58
    out = [n for _ in range(6) for n in pipeline.offer(ev(E.AGENT_ERROR))]
    assert len(out) == 3
    at(clock, 3 * 60)  # 10:01, in the quiet hours: the report is held
    assert pipeline.due() == []
    at(clock, 63 * 60)  # 11:01: the digest
    (digest,) = pipeline.due()
    assert digest.title == "Quiet hours digest: 3 alerts held"
    assert "worker-3 agent_held_back ×3" in digest.body
    assert pipeline.flush() == []  # not told twice
    assert told([*out, digest]) == 6


@pytest.mark.parametrize("seed", range(40))
def test_the_counts_in_an_agents_messages_add_up_to_its_alerts(seed: int) -> None:
    """Random crash loops through the default rules (recovery on or off, some
    quiet hours), pumped at random times, then detached: every forwarded alert is
    told exactly once."""
    rng = random.Random(seed)
    rules: dict[str, Any] = {
        "recovery": rng.random() < 0.5,
        "held_report_interval": rng.choice([None, 30.0, 300.0]),
        "stable_after": rng.choice([5.0, 30.0]),
        "flap_threshold": rng.choice([None, 3, 5]),
    }
    if rng.random() < 0.3:
        rules["quiet_hours"] = {"start": "10:00", "end": "10:30"}
    pipeline, clock = make(rules)
    sent: list[Notification] = []
    forwarded = 0
    for _ in range(rng.randrange(20, 120)):
        at(clock, clock() + rng.choice([0.1, 1, 2, 5, 20, 40, 120]))
        agent = rng.choice(["w1", "w2"])
        event = rng.choice(
            [E.AGENT_ERROR] * 4
            + [E.AGENT_READY, E.AGENT_RESTARTING, E.AGENT_STARTED]
            + [E.AGENT_FATAL] * (rng.random() < 0.05)
        )
        forward = event in (E.AGENT_ERROR, E.AGENT_FATAL)
        forwarded += forward
        error = rng.choice(["ValueError: a", "ValueError: b"])
        sent += pipeline.offer(ev(event, agent, error=error), forward=forward)
        if rng.random() < 0.3:
            sent += pipeline.due()
    sent += pipeline.flush()
    assert told(sent) == forwarded
    assert pipeline.stats().notes_dropped == 0


# ---------------------------------------------------------------- recovery


def test_recovered_after_the_ready_that_held() -> None:
    pipeline, clock = make({**OFF, "recovery": True, "stable_after": 30.0})
    assert len(pipeline.offer(ev(E.AGENT_ERROR))) == 1
    pipeline.offer(ev(E.AGENT_TERMINATED), forward=False)
    at(clock, 1)
    pipeline.offer(ev(E.AGENT_RESTARTING, attempt=1), forward=False)
    at(clock, 42)
    pipeline.offer(ev(E.AGENT_STARTED), forward=False)
    assert pipeline.offer(ev(E.AGENT_READY), forward=False) == []
    assert pipeline.next_due() == 72
    at(clock, 71.9)
    assert pipeline.due() == []
    at(clock, 72)
    (recovered,) = pipeline.due()
    assert recovered.title == "✔ worker-3 recovered after 42 s"
    assert recovered.body.splitlines()[0] == (
        "failing since 09:58:00: 1 error(s), 1 restart(s); up again at 09:58:42, "
        "stable for 30 s"
    )
    assert pipeline.next_due() is None
    assert pipeline.stats().recoveries == 1


def test_no_recovery_while_it_keeps_crashing_after_ready() -> None:
    pipeline, clock = make({**OFF, "recovery": True, "stable_after": 30.0})
    for n in range(10):  # READY, then the crash 5 s later, ten times
        at(clock, 10 * n)
        pipeline.offer(ev(E.AGENT_READY), forward=False)
        at(clock, 10 * n + 5)
        pipeline.offer(ev(E.AGENT_ERROR))
        pipeline.offer(ev(E.AGENT_TERMINATED), forward=False)
    at(clock, 1000)
    assert pipeline.due() == []  # never stable: it ended after each READY
    pipeline.offer(ev(E.AGENT_READY), forward=False)
    at(clock, 1030)
    (recovered,) = pipeline.due()
    assert recovered.title == "✔ worker-3 recovered after 17 min"  # 5 s to 1000 s


def test_recovery_is_opt_in() -> None:
    pipeline, clock = make({**OFF, "recovery": False})
    pipeline.offer(ev(E.AGENT_ERROR))
    at(clock, 1)
    pipeline.offer(ev(E.AGENT_READY), forward=False)
    assert pipeline.next_due() is None
    at(clock, 100)
    assert pipeline.due() == []


def test_a_clean_end_after_the_restart_is_a_recovery_too() -> None:
    pipeline, clock = make({**OFF, "recovery": True, "stable_after": 30.0})
    pipeline.offer(ev(E.AGENT_ERROR))
    at(clock, 3)
    pipeline.offer(ev(E.AGENT_READY), forward=False)
    at(clock, 5)
    clean = Notification(
        "■ worker-3 terminated (success)",
        "",
        Severity.INFO,
        agent="worker-3",
        event="agent_terminated",
    )
    (recovered,) = pipeline.offer(clean, forward=False)
    assert recovered.title == "✔ worker-3 recovered after 3 s"
    assert "up again at 09:58:03, then ended cleanly" in recovered.body


# ---------------------------------------------------------------- mutes


def test_a_muted_agent_sends_nothing_until_the_mute_expires() -> None:
    pipeline, clock = make({**OFF, "group_window": 60.0})
    mute = pipeline.mute("worker-*", seconds=600, reason="deploy")
    assert pipeline.mutes() == [mute]
    for when in range(0, 600, 50):
        at(clock, when)
        assert pipeline.offer(ev(E.AGENT_ERROR)) == []
        assert pipeline.offer(ev(E.AGENT_FATAL)) == []
    assert titles(pipeline.offer(ev(E.AGENT_ERROR, "db"))) == ["✖ db failed"]
    at(clock, 600)
    assert pipeline.mutes() == []
    (alert,) = pipeline.offer(ev(E.AGENT_ERROR))
    assert alert.body.splitlines()[0] == "(+24 alerts muted since 09:58)"
    assert pipeline.stats().muted == 24


def test_mute_one_event_and_unmute() -> None:
    pipeline, _ = make(OFF)
    mute = pipeline.mute(event="agent_restarting", seconds=60)
    assert pipeline.offer(ev(E.AGENT_RESTARTING, attempt=1)) == []
    assert len(pipeline.offer(ev(E.AGENT_ERROR))) == 1
    assert pipeline.unmute(mute) == 1
    assert len(pipeline.offer(ev(E.AGENT_RESTARTING, attempt=2))) == 1
    pipeline.mute("db", E.AGENT_ERROR, seconds=60)
    assert pipeline.offer(ev(E.AGENT_ERROR, "db")) == []
    assert pipeline.unmute(agent="db", event="agent_error") == 1
    assert len(pipeline.offer(ev(E.AGENT_ERROR, "db"))) == 1


def test_mute_arguments() -> None:
    pipeline, _ = make(OFF)
    with pytest.raises(ValueError, match="seconds= or until="):
        pipeline.mute("a")
    with pytest.raises(ValueError, match="time zone"):
        pipeline.mute("a", until=_dt.datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="unknown event"):
        pipeline.mute("a", "nonsense", seconds=1)
    with pytest.raises(ValueError, match="greater than 0"):
        pipeline.mute("a", seconds=0)


def test_muted_predicate_and_mutes_from_the_config() -> None:
    until = _dt.datetime(2026, 11, 25, 10, 0, tzinfo=BERLIN)  # 2 min after T0
    rules = {
        **OFF,
        "mutes": [{"agents": ["db"], "events": ["agent_error"], "until": until}],
    }
    pipeline, clock = make(rules, muted=lambda agent, event: agent == "noisy")
    assert pipeline.offer(ev(E.AGENT_ERROR, "noisy")) == []
    assert pipeline.offer(ev(E.AGENT_ERROR, "db")) == []
    assert len(pipeline.offer(ev(E.AGENT_FATAL, "db"))) == 1  # another event
    at(clock, 120)
    assert len(pipeline.offer(ev(E.AGENT_ERROR, "db"))) == 1


def test_a_mute_silences_the_pipelines_own_messages_too() -> None:
    pipeline, clock = make({**OFF, "group_window": 60.0, "flap_threshold": 3})
    pipeline.offer(ev(E.AGENT_ERROR))
    pipeline.offer(ev(E.AGENT_ERROR))
    pipeline.mute("worker-3", seconds=1000)
    assert pipeline.offer(ev(E.AGENT_ERROR)) == []  # no flapping alert either
    at(clock, 60)
    assert pipeline.due() == []  # nor the group's summary


# ---------------------------------------------------------------- quiet hours


def test_quiet_hours_across_midnight_hold_alerts_for_one_digest() -> None:
    start = _dt.datetime(2026, 11, 25, 21, 30, tzinfo=BERLIN).timestamp()
    rules = {
        **OFF,
        "group_window": 60.0,
        "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"},
    }
    pipeline, clock = make(rules, start_wall=start)
    hour = 3600.0
    assert len(pipeline.offer(ev(E.AGENT_ERROR, "web"))) == 1  # 21:30: not quiet
    at(clock, 1.5 * hour)  # 23:00
    for n in range(5):
        assert pipeline.offer(ev(E.AGENT_ERROR, "worker-3", error=f"boom {n}")) == []
    assert pipeline.offer(ev(E.AGENT_RESTARTING, "worker-3", attempt=1)) == []
    at(clock, 4.5 * hour)  # 02:00: critical goes out at once
    (fatal,) = pipeline.offer(ev(E.AGENT_FATAL, "db", attempt=3))
    assert fatal.severity is Severity.CRITICAL
    at(clock, 5.5 * hour)  # 03:00
    for _ in range(8):
        assert pipeline.offer(ev(E.AGENT_ERROR, "web", error="timeout")) == []
    # The digest is due at 07:00 (9.5 h after 21:30).
    assert pipeline.next_due() == pytest.approx(9.5 * hour)
    at(clock, 9.5 * hour - 1)
    assert pipeline.due() == []
    at(clock, 9.5 * hour)
    (digest,) = pipeline.due()
    assert digest.title == "Quiet hours digest: 14 alerts held"
    assert digest.event == ALERTS_DIGEST
    assert digest.agent is None
    assert digest.severity is Severity.ERROR
    assert digest.body.splitlines() == [
        "23:00–23:00 worker-3 agent_error ×5 (last: boom 4)",
        "23:00–23:00 worker-3 agent_restarting ×1 (last: ↻ worker-3 restarting (attempt 1))",
        "03:00–03:00 web agent_error ×8 (last: timeout)",
    ]
    assert pipeline.stats().held == 14
    # After the quiet hours alerts flow again.
    assert len(pipeline.offer(ev(E.AGENT_ERROR, "other"))) == 1


def test_quiet_hours_within_one_day_and_the_digest_line_limit() -> None:
    noon = _dt.datetime(2026, 11, 25, 12, 0, tzinfo=BERLIN).timestamp()
    rules = {
        **OFF,
        "quiet_hours": {"start": "12:00", "end": "13:00", "digest_lines": 2},
    }
    pipeline, clock = make(rules, start_wall=noon)
    for agent in ("a", "b", "c", "d"):
        assert pipeline.offer(ev(E.AGENT_ERROR, agent)) == []
    at(clock, 3600)
    (digest,) = pipeline.due()
    assert digest.title == "Quiet hours digest: 4 alerts held"
    assert digest.body.splitlines()[-1] == "… and 2 more"
    assert len(digest.body.splitlines()) == 3


def test_detach_flushes_the_digest_and_open_groups() -> None:
    rules = {
        **OFF,
        "group_window": 60.0,
        "quiet_hours": {"start": "09:00", "end": "10:00"},
    }
    pipeline, _ = make(rules)  # 09:58: quiet
    assert pipeline.offer(ev(E.AGENT_ERROR)) == []
    flushed = pipeline.flush()
    assert titles(flushed) == ["Quiet hours digest: 1 alerts held"]
    assert pipeline.next_due() is None


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("rules", "path", "reason"),
    [
        ({"dedup_window": -1}, "rules.dedup_window", "greater than 0"),
        ({"group_window": 0}, "rules.group_window", "greater than 0"),
        ({"bogus": 1}, "rules.bogus", "unknown setting"),
        ({"flap_threshold": 1}, "rules.flap_threshold", "greater than or equal to 2"),
        ({"group_events": ["nope"]}, "rules.group_events", "unknown event 'nope'"),
        ({"dedup_min_severity": "loud"}, "rules.dedup_min_severity", "must be one of"),
        ({"timezone": "Mars/Olympus"}, "rules.timezone", "unknown time zone"),
        (
            {"quiet_hours": {"start": "22:00", "end": "22:00"}},
            "rules.quiet_hours",
            "start and end must differ",
        ),
        (
            {"quiet_hours": {"start": "25:00", "end": "07:00"}},
            "rules.quiet_hours.start",
            "",
        ),
        (
            {"mutes": [{"agents": "db", "until": "2030-01-01T00:00:00"}]},
            "rules.mutes.0.until",
            "needs a time zone",
        ),
        (
            {"group_rules": [{"events": ["agent_error"], "agents": []}]},
            "rules.group_rules.0.agents",
            "at least one",
        ),
    ],
)
def test_bad_rules_name_the_field(
    rules: dict[str, Any], path: str, reason: str
) -> None:
    with pytest.raises(NotifierConfigError) as caught:
        PipelineConfig.parse(rules)
    (where, why), *_ = caught.value.errors
    assert where == path
    assert reason in why


def test_config_defaults_and_shapes() -> None:
    config = PipelineConfig()
    assert config.dedup_window == 300.0
    assert config.group_window == 60.0
    assert config.group_events == {
        "agent_error",
        "agent_restarting",
        "agent_watchdog_timeout",
    }
    assert config.group_send_first
    assert config.flap_threshold == 5
    assert config.quiet_after_fatal
    assert not config.recovery
    assert config.quiet_hours is None
    parsed = PipelineConfig.parse(
        {
            "group_events": [E.AGENT_ERROR, "AGENT_FATAL"],
            "dedup_min_severity": "error",
            "quiet_hours": {"start": "22:30", "end": "06:00", "hold_below": "error"},
        }
    )
    assert parsed.group_events == {"agent_error", "agent_fatal"}
    assert parsed.dedup_min_severity is Severity.ERROR
    assert parsed.quiet_hours is not None
    assert parsed.quiet_hours.start == _dt.time(22, 30)
    assert parsed.quiet_hours.hold_below is Severity.ERROR
    with pytest.raises(NotifierConfigError, match="rules: must be a PipelineConfig"):
        PipelineConfig.parse(42)  # type: ignore[arg-type]
    assert PipelineConfig.parse(parsed) is parsed
    hash(parsed.quiet_hours)  # frozen


def test_templates_override_the_pipelines_texts() -> None:
    templates = {
        "alert_group": Template("{agent} x{count}", "{last}"),
        "note_identical": Template("", "[{count} more]"),
    }
    pipeline, clock = make({**OFF, "group_window": 10.0}, templates=templates)
    for n in range(3):
        pipeline.offer(ev(E.AGENT_ERROR, error=f"e{n}"))
    at(clock, 10)
    (summary,) = pipeline.due()
    assert (summary.title, summary.body) == ("worker-3 x3", "e2")


def test_format_duration() -> None:
    assert [
        format_duration(s) for s in (0, 0.44, 3, 9.96, 42, 119, 300, 7260, 7200)
    ] == [
        "0 s",
        "0.4 s",
        "3 s",
        "10 s",
        "42 s",
        "119 s",
        "5 min",
        "2 h 1 min",
        "2 h",
    ]


# ---------------------------------------------------------------- threads


def test_offer_is_thread_safe_and_counts_every_alert() -> None:
    pipeline, clock = make({**OFF, "group_window": 60.0})
    sent: list[Notification] = []
    lock = threading.Lock()

    def offer_many() -> None:
        for n in range(1000):
            out = pipeline.offer(ev(E.AGENT_ERROR, error=f"e{n}"))
            with lock:
                sent.extend(out)

    threads = [threading.Thread(target=offer_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    at(clock, 60)
    (summary,) = pipeline.due()
    assert len(sent) == 1
    assert summary.title == "worker-3: agent_error ×8000 in 0 s"
    assert pipeline.stats().grouped == 7999


def test_the_timer_thread_submits_summaries_and_stops_on_close() -> None:
    pipeline = AlertPipeline({**OFF, "group_window": 0.2})
    got: list[Notification] = []
    arrived = threading.Event()

    def submit(notification: Notification) -> None:
        got.append(notification)
        arrived.set()

    timer = PipelineTimer(pipeline, submit, name="notifiers-pipeline-test")
    for n in range(3):
        for out in pipeline.offer(ev(E.AGENT_ERROR, error=f"e{n}")):
            submit(out)
        timer.schedule(pipeline.next_due())
    assert timer.running
    assert any(t.name == "notifiers-pipeline-test" for t in threading.enumerate())
    deadline = time.monotonic() + 5
    while len(got) < 2 and time.monotonic() < deadline:
        arrived.wait(0.1)
    assert titles(got) == ["✖ worker-3 failed", "worker-3: agent_error ×3 in 0 s"]
    assert timer.close()
    assert not timer.running


def test_the_timer_starts_only_when_something_is_pending() -> None:
    pipeline = AlertPipeline({**OFF, "group_window": 60.0})
    timer = PipelineTimer(pipeline, lambda n: None, name="notifiers-pipeline-lazy")
    pipeline.offer(ev(E.AGENT_ERROR))  # sent at once; nothing pending
    timer.schedule(pipeline.next_due())
    assert not timer.running
    assert timer.close()


def test_the_timer_follows_a_fake_clock() -> None:
    pipeline, clock = make({**OFF, "group_window": 3600.0})
    got: list[Notification] = []
    done = threading.Event()

    def submit(notification: Notification) -> None:
        got.append(notification)
        done.set()

    timer = PipelineTimer(pipeline, submit, name="notifiers-pipeline-fake")
    try:
        pipeline.offer(ev(E.AGENT_ERROR, error="a"))
        pipeline.offer(ev(E.AGENT_ERROR, error="b"))
        timer.schedule(pipeline.next_due())
        clock.advance(3600)  # an hour of fake time: the timer wakes at once
        assert done.wait(5)
        assert titles(got) == ["worker-3: agent_error ×2 in 0 s"]
    finally:
        assert timer.close()


# ---------------------------------------------------------------- helpers


def _fields(notification: Notification) -> dict[str, Any]:
    return {
        "title": notification.title,
        "body": notification.body,
        "severity": notification.severity,
        "agent": notification.agent,
        "event": notification.event,
        "error": notification.error,
    }


class Titled:
    """Equal to any notification with this title."""

    def __init__(self, title: str) -> None:
        self.title = title

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Notification) and other.title == self.title

    def __repr__(self) -> str:
        return f"<notification {self.title!r}>"


def test_a_mute_built_by_hand_matches_only_its_agents() -> None:
    from notifiers.pipeline import Mute

    one = Mute("worker-1", None, until=1e12)
    assert one.matches("worker-1", "agent_error")
    assert not one.matches("other", "agent_error")
    glob = Mute("worker-*", "agent_error", until=1e12)
    assert glob.matches("worker-9", "agent_error")
    assert not glob.matches("worker-9", "agent_ready")
    assert not glob.matches("db", "agent_error")
    assert Mute(None, None, until=1e12).matches("anything", None)
