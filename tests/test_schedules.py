"""Schedules (issue 16, items 3 and 4): cron and ``every`` runs, overlap, max_runtime,
warn_after (AGENT_LATE), grace (AGENT_MISSED), catch-up, external jobs and ``ping``.

Every orchestrator runs on a ``FakeClock``: its monotonic clock (every timeout) and
its wall clock (``clock.wall``, when runs are due) move only when the test says so,
so a daily schedule is tested in milliseconds. Runs are real: thread, process and
command agents. The router acts on what became due after each ``advance`` (it wakes
on it); ``lifecycle.check_deadlines()`` is called where a test asserts that nothing
happened before a deadline.
"""

from __future__ import annotations

import datetime as _dt
import json
import zoneinfo
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyorchestrate import (
    AgentState,
    CommandAgent,
    ConfigError,
    ExternalJob,
    LifecycleError,
    Orchestrator,
    OrchestratorEvent,
    RegistrationError,
    Schedule,
    Severity,
    StartStatus,
    severity_of,
)
from pyorchestrate.testing import EventRecorder, FakeClock, wait_until
from tests.agents import (
    BoomThread,
    ForeverThread,
    QuickProcess,
    QuickThread,
    SleepForeverProcess,
    SlowThread,
    TickerThread,
)

E = OrchestratorEvent
S = AgentState

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")

FAST: dict[str, Any] = {
    "enable_command_interface": False,
    "check_interval": 0.05,
    "agent_start_timeout": 5.0,
    "agent_stop_timeout": 1.0,
    "termination_grace": 0.5,
}


def wall_at(*args: int, tz: _dt.tzinfo = _dt.UTC) -> float:
    return _dt.datetime(*args, tzinfo=tz).timestamp()  # type: ignore[misc]


MakeOrchestrator = Callable[..., Orchestrator]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(wall=wall_at(2026, 12, 3, 12, 0, 0))


@pytest.fixture
def make(clock: FakeClock, tmp_path: Path) -> Iterator[MakeOrchestrator]:
    made: list[Orchestrator] = []

    def build(**config: Any) -> Orchestrator:
        state = config.pop("schedule_state", tmp_path / "schedules.json")
        orchestrator = Orchestrator(
            f"sched-{len(made)}",
            {**FAST, **config},
            clock=clock,
            wall_clock=clock.wall,
            schedule_state=state,
        )
        made.append(orchestrator)
        return orchestrator

    yield build
    for orchestrator in made:
        # A shutdown waits on the fake clock too: move it while it waits.
        orchestrator.stop()
        for _ in range(100):
            if orchestrator.lifecycle.is_idle():
                break
            clock.advance(0.5)
            wait_until(orchestrator.lifecycle.is_idle, timeout=0.05)
        assert orchestrator.shutdown(timeout=5.0) == []


def recorder_of(orchestrator: Orchestrator) -> EventRecorder:
    return EventRecorder().attach(orchestrator)


def state(orchestrator: Orchestrator, name: str) -> AgentState:
    with orchestrator.lifecycle.lock:
        return orchestrator.get_agent(name).state


def settle(orchestrator: Orchestrator) -> None:
    """Run the router's check now, in the test's thread (what a wake-up does)."""
    orchestrator.lifecycle.check_deadlines()


# ---------------------------------------------------------------- the model


def test_schedule_accepts_durations_and_exactly_one_kind() -> None:
    assert Schedule(every="15m").every == 900.0
    assert Schedule(every="1h30m", grace="90s").grace == 90.0
    assert Schedule(every=2.5).every == 2.5
    assert Schedule(cron="0  3 * * *").cron == "0 3 * * *"
    assert Schedule(cron="0 3 * * *").timezone == "UTC"  # the documented default


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        ({"cron": "61 * * * *"}, "cron", "invalid cron expression '61 * * * *'"),
        (
            {"cron": "0 3 * * *", "timezone": "Mars/Olympus"},
            "timezone",
            "invalid timezone 'Mars/Olympus'",
        ),
        ({"every": "soon"}, "every", "invalid duration 'soon'"),
        ({"every": "15m", "overlap": "stack"}, "overlap", "'skip', 'queue' or"),
        ({"every": "15m", "catch_up": "all"}, "catch_up", "'none' or 'last'"),
        ({"every": "15m", "grace": 0}, "grace", "greater than 0"),
        ({"every": "15m", "scheduel": "x"}, "scheduel", "unknown setting"),
    ],
)
def test_bad_schedules_name_the_field(
    data: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Schedule(**data)
    lines = str(caught.value).splitlines()
    assert any(
        line.strip().startswith(f"{field}:") and reason in line for line in lines
    ), lines


def test_schedule_needs_exactly_one_of_cron_and_every() -> None:
    for data in ({}, {"cron": "* * * * *", "every": 60}):
        with pytest.raises(ConfigError, match="exactly one of 'cron' and 'every'"):
            Schedule(**data)
    with pytest.raises(ConfigError, match=r"warn_after .* shorter than max_runtime"):
        Schedule(every=60, warn_after=30, max_runtime=20)


def test_cron_follows_dst_in_its_timezone() -> None:
    """Spring forward: 02:30 does not exist, the run is at 03:00. Fall back: 02:30
    happens twice, the run is once."""
    daily = Schedule(cron="30 2 * * *", timezone="Europe/Berlin")

    def runs(start: float, n: int) -> list[str]:
        out, t = [], start
        for _ in range(n):
            t = daily.next_due(t, anchor=start)
            out.append(_dt.datetime.fromtimestamp(t, BERLIN).isoformat())
        return out

    assert runs(wall_at(2026, 3, 28, 12, 0, tz=BERLIN), 3) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]
    assert runs(wall_at(2026, 10, 24, 12, 0, tz=BERLIN), 3) == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
        "2026-10-27T02:30:00+01:00",
    ]


# ---------------------------------------------------------------- registration


def test_a_looping_agent_cannot_be_scheduled(make: MakeOrchestrator) -> None:
    orchestrator = make()
    for cls in (ForeverThread, TickerThread):
        with pytest.raises(RegistrationError, match="only one-shot agents"):
            orchestrator.register_agent(cls, "loop", schedule={"every": "1m"})
    assert not orchestrator.has_agent("loop")
    with pytest.raises(RegistrationError, match="ExternalJob needs a schedule"):
        orchestrator.register_agent(ExternalJob, "outside")
    with pytest.raises(ConfigError, match="cron: invalid cron expression"):
        orchestrator.register_agent(QuickThread, "q", schedule={"cron": "61 * * * *"})


# ---------------------------------------------------------------- runs


@pytest.mark.parametrize("cls", [QuickThread, QuickProcess], ids=["thread", "process"])
def test_every_runs_at_each_due_time_and_not_before(
    make: MakeOrchestrator, clock: FakeClock, cls: type[Any]
) -> None:
    orchestrator = make()
    orchestrator.register_agent(cls, "job", schedule=Schedule(every="10m"))
    recorder = recorder_of(orchestrator)
    results = orchestrator.start()
    assert results[0].status is StartStatus.SCHEDULED
    assert orchestrator.agent_summary("job")["next_run"] == "2026-12-03T12:10:00+00:00"
    clock.advance(599.0)
    settle(orchestrator)
    assert orchestrator.get_agent("job").starts == 0
    clock.advance(1.0)
    recorder.wait_for(E.AGENT_TERMINATED, "job")
    assert wait_until(
        lambda: orchestrator.agent_summary("job")["last_result"] == "success"
    )
    summary = orchestrator.agent_summary("job")
    assert summary["next_run"] == "2026-12-03T12:20:00+00:00"
    clock.advance(600.0)
    recorder.wait_for(E.AGENT_TERMINATED, "job", count=2)
    assert orchestrator.get_agent("job").starts == 2
    assert recorder.of(E.AGENT_MISSED) == []


def test_a_failed_run_is_the_last_result(
    make: MakeOrchestrator, clock: FakeClock
) -> None:
    orchestrator = make()
    orchestrator.register_agent(BoomThread, "boom", schedule={"every": 60})
    recorder = recorder_of(orchestrator)
    orchestrator.start()
    clock.advance(60.0)
    recorder.wait_for(E.AGENT_TERMINATED, "boom")
    assert wait_until(
        lambda: orchestrator.agent_summary("boom")["last_result"] == "failed"
    )


def test_cron_run_across_a_dst_change(make: MakeOrchestrator, clock: FakeClock) -> None:
    """The clocks go forward at 02:00 Berlin time: the 02:30 run happens at 03:00
    local, one real hour after 01:30 local (not two)."""
    clock.jump_wall(wall_at(2026, 3, 29, 1, 0, tz=BERLIN) - clock.wall())
    orchestrator = make()
    orchestrator.register_agent(
        QuickThread,
        "nightly",
        schedule=Schedule(cron="30 2 * * *", timezone="Europe/Berlin"),
    )
    recorder = recorder_of(orchestrator)
    orchestrator.start()
    assert (
        orchestrator.agent_summary("nightly")["next_run"] == "2026-03-29T03:00:00+02:00"
    )
    clock.advance(3_599.0)  # 01:59:59 CET
    settle(orchestrator)
    assert orchestrator.get_agent("nightly").starts == 0
    clock.advance(1.0)  # 02:00 CET == 03:00 CEST
    recorder.wait_for(E.AGENT_TERMINATED, "nightly")
    assert (
        orchestrator.agent_summary("nightly")["next_run"] == "2026-03-30T02:30:00+02:00"
    )


# ---------------------------------------------------------------- max_runtime, LATE


def test_max_runtime_stops_the_run_after_an_agent_late(
    make: MakeOrchestrator, clock: FakeClock
) -> None:
    orchestrator = make()
    orchestrator.register_agent(
        SleepForeverProcess,
        "stuck",
        schedule={"every": "1h", "warn_after": "5m", "max_runtime": "10m"},
    )
    recorder = recorder_of(orchestrator)
    orchestrator.start()
    clock.advance(3_600.0)
    recorder.wait_for(E.AGENT_STARTED, "stuck")
    clock.advance(299.0)
    settle(orchestrator)
    assert recorder.of(E.AGENT_LATE) == []
    clock.advance(1.0)
    late = recorder.wait_for(E.AGENT_LATE, "stuck")
    assert late["reason"] == "warn_after"
    assert late["record"].severity is Severity.WARNING
    assert recorder.of(E.AGENT_ERROR) == []
    clock.advance(300.0)
    error = recorder.wait_for(E.AGENT_ERROR, "stuck")
    assert error["reason"] == "max_runtime"
    recorder.wait_for(E.AGENT_TERMINATED, "stuck")
    assert wait_until(
        lambda: orchestrator.agent_summary("stuck")["last_result"] == "max_runtime"
    )
    names = recorder.names("stuck")
    assert names.index("agent_late") < names.index("agent_error")


def test_max_runtime_stops_a_command(make: MakeOrchestrator, clock: FakeClock) -> None:
    orchestrator = make()
    orchestrator.register_agent(
        CommandAgent,
        "sleeper",
        command=["sleep", "60"],
        schedule={"every": 60, "max_runtime": 30},
    )
    recorder = recorder_of(orchestrator)
    orchestrator.start()
    clock.advance(60.0)
    recorder.wait_for(E.AGENT_STARTED, "sleeper")
    clock.advance(30.0)
    error = recorder.wait_for(E.AGENT_ERROR, "sleeper")
    assert error["reason"] == "max_runtime"
    ended = recorder.wait_for(E.AGENT_TERMINATED, "sleeper")
    assert ended["signal"] == "SIGTERM"


# ---------------------------------------------------------------- overlap


@pytest.mark.parametrize("overlap", ["skip", "queue", "replace"])
def test_overlap(make: MakeOrchestrator, clock: FakeClock, overlap: str) -> None:
    orchestrator = make()
    orchestrator.register_agent(
        SleepForeverProcess if overlap == "replace" else SlowThread,
        "long",
        schedule={"every": 60, "overlap": overlap},
        **({} if overlap == "replace" else {"duration": 3_600.0}),
    )
    recorder = recorder_of(orchestrator)
    orchestrator.start()
    clock.advance(60.0)
    recorder.wait_for(E.AGENT_STARTED, "long")
    entry = orchestrator.get_agent("long")
    clock.advance(60.0)  # the second run is due while the first still goes
    settle(orchestrator)
    if overlap == "skip":
        assert entry.starts == 1 and state(orchestrator, "long") in (S.RUNNING, S.READY)
    elif overlap == "queue":
        assert entry.starts == 1
        assert orchestrator.lifecycle.scheduler.slots["long"].queued is not None
        orchestrator.stop_agent("long")  # the first ends: the queued one starts
        recorder.wait_for(E.AGENT_STARTED, "long", count=2)
        assert entry.starts == 2
    else:
        recorder.wait_for(E.AGENT_STARTED, "long", count=2)
        assert entry.starts == 2
        first_end = recorder.wait_for(E.AGENT_TERMINATED, "long")
        assert first_end["generation_id"] == 1
    assert recorder.of(E.AGENT_MISSED) == []


# ---------------------------------------------------------------- missed


def test_a_run_blocked_by_its_dependency_is_missed_after_grace(
    make: MakeOrchestrator, clock: FakeClock
) -> None:
    orchestrator = make(max_workers=1)
    orchestrator.register_agent(SlowThread, "hog", duration=3_600.0)
    orchestrator.register_agent(QuickThread, "job", schedule={"every": 60, "grace": 30})
    recorder = recorder_of(orchestrator)
    orchestrator.start()
    recorder.wait_for(E.AGENT_STARTED, "hog")
    clock.advance(60.0)
    settle(orchestrator)
    assert state(orchestrator, "job") is S.QUEUED
    clock.advance(29.0)
    settle(orchestrator)
    assert recorder.of(E.AGENT_MISSED) == []
    clock.advance(1.0)
    missed = recorder.wait_for(E.AGENT_MISSED, "job")
    assert missed["reason"] == "not_started"
    assert "waiting for a free worker slot" in missed["error_message"]
    assert missed["due"] == "2026-12-03T12:01:00+00:00"
    assert missed["record"].severity is Severity.ERROR
    orchestrator.stop_agent("hog")  # the late run still starts
    recorder.wait_for(E.AGENT_TERMINATED, "job")
    assert len(recorder.of(E.AGENT_MISSED)) == 1


def test_a_run_blocked_by_a_dependency_is_missed_after_grace(
    make: MakeOrchestrator, clock: FakeClock
) -> None:
    orchestrator = make()
    # ``db`` is scheduled weekly: it has not been READY yet, so ``job`` waits.
    orchestrator.register_agent(QuickThread, "db", schedule={"every": "7d"})
    orchestrator.register_agent(QuickThread, "job", schedule={"every": 60, "grace": 30})
    orchestrator.add_dependency("job", "db")
    recorder = recorder_of(orchestrator)
    orchestrator.start()
    clock.advance(60.0)
    settle(orchestrator)
    assert state(orchestrator, "job") is S.QUEUED
    clock.advance(30.0)
    missed = recorder.wait_for(E.AGENT_MISSED, "job")
    assert missed["reason"] == "not_started"
    assert "waiting for dependencies: db" in missed["error_message"]


def test_jitter_delays_the_start_within_its_bound(
    make: MakeOrchestrator, clock: FakeClock
) -> None:
    orchestrator = make()
    orchestrator.register_agent(
        QuickThread, "job", schedule={"every": 60, "jitter": 10}
    )
    recorder = recorder_of(orchestrator)
    orchestrator.start()
    start_at = orchestrator.lifecycle.scheduler.next_run("job")
    assert start_at is not None
    due = wall_at(2026, 12, 3, 12, 1, 0)
    assert due <= start_at <= due + 10
    clock.advance(start_at - clock.wall() - 2.0**-10)
    settle(orchestrator)
    assert orchestrator.get_agent("job").starts == 0
    clock.advance(2.0**-10)
    recorder.wait_for(E.AGENT_TERMINATED, "job")


def test_a_wall_clock_jump_misses_the_runs_skipped(
    make: MakeOrchestrator, clock: FakeClock
) -> None:
    orchestrator = make()
    orchestrator.register_agent(QuickThread, "job", schedule={"cron": "0 * * * *"})
    orchestrator.register_agent(
        QuickThread, "eager", schedule={"cron": "0 * * * *", "catch_up": "last"}
    )
    recorder = recorder_of(orchestrator)
    orchestrator.start()
    clock.jump_wall(5 * 3_600.0 + 600.0)  # 12:00 -> 17:10, the monotonic clock stays
    recorder.wait_for(E.AGENT_MISSED, "job")
    missed = recorder.wait_for(E.AGENT_MISSED, "eager")
    assert missed["reason"] == "late"
    recorder.wait_for(E.AGENT_TERMINATED, "eager")  # catch_up="last": one run now
    settle(orchestrator)
    assert orchestrator.get_agent("job").starts == 0
    assert orchestrator.agent_summary("job")["last_result"] == "missed"
    assert orchestrator.agent_summary("job")["next_run"] == "2026-12-03T18:00:00+00:00"


def test_a_clock_set_back_does_not_run_twice(
    make: MakeOrchestrator, clock: FakeClock
) -> None:
    orchestrator = make()
    orchestrator.register_agent(QuickThread, "job", schedule={"cron": "0 * * * *"})
    recorder = recorder_of(orchestrator)
    orchestrator.start()
    clock.advance(3_600.0)
    recorder.wait_for(E.AGENT_TERMINATED, "job")
    clock.jump_wall(-1_800.0)
    clock.advance(60.0)
    settle(orchestrator)
    assert orchestrator.get_agent("job").starts == 1


# ---------------------------------------------------------------- catch-up


def test_catch_up_after_downtime_from_the_state_file(
    clock: FakeClock, tmp_path: Path, make: MakeOrchestrator
) -> None:
    path = tmp_path / "state.json"
    first = make(schedule_state=path)
    first.register_agent(
        QuickThread, "backup", schedule={"cron": "0 3 * * *", "catch_up": "last"}
    )
    first.register_agent(QuickThread, "report", schedule={"cron": "0 3 * * *"})
    recorder = recorder_of(first)
    first.start()
    clock.advance(15 * 3_600.0)  # 12:00 -> 03:00 next day
    recorder.wait_for(E.AGENT_TERMINATED, "backup")
    recorder.wait_for(E.AGENT_TERMINATED, "report")

    def saved() -> bool:
        try:  # written by a callback worker: maybe not yet
            agents: dict[str, Any] = json.loads(path.read_text())["agents"]
        except FileNotFoundError:
            return False
        return bool(agents["backup"]["last_result"] == "success")

    assert wait_until(saved)
    first.stop()
    assert first.shutdown(timeout=2.0) == []
    clock.advance(2 * 86_400.0)  # down for two days: two 03:00 runs missed
    second = make(schedule_state=path)
    second.register_agent(
        QuickThread, "backup", schedule={"cron": "0 3 * * *", "catch_up": "last"}
    )
    second.register_agent(QuickThread, "report", schedule={"cron": "0 3 * * *"})
    again = recorder_of(second)
    second.start()
    missed = again.wait_for(E.AGENT_MISSED, "backup")
    assert missed["reason"] == "down"
    assert again.wait_for(E.AGENT_MISSED, "report")["reason"] == "down"
    again.wait_for(E.AGENT_TERMINATED, "backup")  # caught up once
    settle(second)
    assert second.get_agent("report").starts == 0


# ---------------------------------------------------------------- external jobs


def test_an_external_job_is_missed_without_a_ping(
    make: MakeOrchestrator, clock: FakeClock
) -> None:
    orchestrator = make()
    orchestrator.register_agent(
        ExternalJob, "dump", schedule={"every": "1h", "grace": "10m"}
    )
    recorder = recorder_of(orchestrator)
    results = orchestrator.start()
    assert results[0].status is StartStatus.SCHEDULED
    with pytest.raises(LifecycleError, match="external job"):
        orchestrator.start_agent("dump")
    clock.advance(3_600.0 - 60.0)
    orchestrator.ping("dump")  # ran a bit early: it counts for this hour
    clock.advance(60.0 + 600.0)
    settle(orchestrator)
    assert recorder.of(E.AGENT_MISSED) == []
    assert orchestrator.agent_summary("dump")["last_result"] == "success"
    clock.advance(3_600.0)  # no ping this hour
    missed = recorder.wait_for(E.AGENT_MISSED, "dump")
    assert missed["reason"] == "no_ping"
    orchestrator.ping("dump", failed=True, message="pg_dump: disk full")
    error = recorder.wait_for(E.AGENT_ERROR, "dump")
    assert error["reason"] == "ping_fail"
    assert error["error_message"] == "pg_dump: disk full"
    assert orchestrator.agent_summary("dump")["last_result"] == "failed"
    with pytest.raises(LifecycleError, match="not an external job"):
        orchestrator.register_agent(QuickThread, "q", schedule={"every": 60})
        orchestrator.ping("q")


# ---------------------------------------------------------------- severities


def test_severities_of_the_new_events() -> None:
    assert severity_of(E.AGENT_MISSED) is Severity.ERROR
    assert severity_of(E.AGENT_LATE) is Severity.WARNING


# ---------------------------------------------------------------- alerts


@pytest.mark.parametrize("rules", [False, None], ids=["direct", "alert-rules"])
def test_a_missed_run_is_alerted_to_a_webhook(
    make: MakeOrchestrator, clock: FakeClock, rules: bool | None
) -> None:
    """The dead man's switch end to end: an external job's silence goes through the
    ``errors_only`` preset to a real HTTP endpoint on 127.0.0.1."""
    from notifiers import AppriseNotifier, attach
    from notifiers.testing import WebhookSink

    orchestrator = make()
    orchestrator.register_agent(
        ExternalJob, "nightly-dump", schedule={"cron": "0 2 * * *", "grace": "30m"}
    )
    with WebhookSink() as sink:
        channel = AppriseNotifier(sink.json_url("/alerts"), name="webhook")
        alerts = attach(orchestrator, "errors_only", channel, rules=rules)
        try:
            orchestrator.start()
            clock.advance(14 * 3_600.0 + 1_800.0)  # 12:00 -> 02:30 the next day
            [request] = sink.wait_for(1)
        finally:
            alerts.detach()
    assert request.json["title"] == (
        "⌛ nightly-dump missed its run due at 2026-12-04T02:00:00+00:00"
    )
    message = request.json["message"]
    assert "no ping for the run due at 2026-12-04T02:00:00+00:00" in message
    assert "reason: no_ping" in message
    assert request.json["type"] == "failure"


def test_every_never_repeats_a_due_time_at_epoch_scale() -> None:
    """Due times are epoch-sized floats: ``anchor + every - anchor`` is not ``every``
    exactly, and a due time must still be followed by the next one, never itself
    (a run started again and again for one due time, found by the benchmark)."""
    schedule = Schedule(every=1.01)
    anchor = 1_796_000_000.123456
    due = anchor
    for n in range(1, 2_000):
        following = schedule.next_due(due, anchor=anchor)
        assert following > due
        assert abs(following - (anchor + n * 1.01)) < 1e-5
        due = following


def test_a_run_started_by_hand_is_timed_too(
    make: MakeOrchestrator, clock: FakeClock
) -> None:
    orchestrator = make()
    orchestrator.register_agent(
        SleepForeverProcess, "stuck", schedule={"cron": "0 3 * * *", "max_runtime": 60}
    )
    recorder = recorder_of(orchestrator)
    orchestrator.start()
    orchestrator.start_agent("stuck")  # an extra run, now
    recorder.wait_for(E.AGENT_STARTED, "stuck")
    clock.advance(60.0)
    assert recorder.wait_for(E.AGENT_ERROR, "stuck")["reason"] == "max_runtime"
    assert wait_until(
        lambda: orchestrator.agent_summary("stuck")["last_result"] == "max_runtime"
    )


def test_every_keeps_its_cadence_across_a_restart(
    clock: FakeClock, tmp_path: Path, make: MakeOrchestrator
) -> None:
    path = tmp_path / "cadence.json"
    first = make(schedule_state=path)
    first.register_agent(QuickThread, "tick", schedule={"every": "1h"})
    recorder = recorder_of(first)
    first.start()
    clock.advance(3_600.0)  # 13:00: the first run
    recorder.wait_for(E.AGENT_TERMINATED, "tick")
    assert wait_until(lambda: path.exists() and "tick" in path.read_text())
    first.stop()
    assert first.shutdown(timeout=2.0) == []
    clock.advance(1_800.0)  # restarted at 13:30
    second = make(schedule_state=path)
    second.register_agent(QuickThread, "tick", schedule={"every": "1h"})
    second.start()
    assert second.agent_summary("tick")["next_run"] == "2026-12-03T14:00:00+00:00"


def test_an_unreadable_state_file_is_reported_and_replaced(
    clock: FakeClock,
    tmp_path: Path,
    make: MakeOrchestrator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    orchestrator = make(schedule_state=path)
    orchestrator.register_agent(QuickThread, "job", schedule={"every": 60})
    recorder = recorder_of(orchestrator)
    with caplog.at_level("ERROR", logger="pyorchestrate.scheduler"):
        orchestrator.start()
    assert any("unreadable" in r.getMessage() for r in caplog.records)
    clock.advance(60.0)
    recorder.wait_for(E.AGENT_TERMINATED, "job")

    def replaced() -> bool:
        try:
            agents = json.loads(path.read_text())["agents"]
        except ValueError:
            return False  # the broken file, until the first write replaces it
        return bool(agents["job"]["last_result"] == "success")

    assert wait_until(replaced)
