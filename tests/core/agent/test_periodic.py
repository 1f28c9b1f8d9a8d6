"""PeriodicTimer and PeriodicAgent (§12 items 19, 20).

The timer is driven by a fake clock and a fake waitable, so the schedule arithmetic is
checked exactly; the real agent is only checked for run counts and lower bounds.
"""

from __future__ import annotations

import itertools
import queue
import threading

import pytest

from pyorchestrate.core.agent import (
    ControlEvents,
    PeriodicThreadAgent,
    StateEvents,
    make_event,
)
from pyorchestrate.core.utilities.messaging import MessageChannel
from pyorchestrate.core.utilities.timer import PeriodicTimer
from tests.agents import TickerThread, agent, read_until, read_until_closed, run_to_end


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeEvent:
    """Records each wait's timeout; an unset event lets the fake clock run to it."""

    def __init__(self, clock: FakeClock, is_set: bool = False) -> None:
        self.clock = clock
        self.is_set = is_set
        self.timeouts: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.timeouts.append(timeout)
        if not self.is_set and timeout:
            self.clock.now += timeout
        return self.is_set


# --------------------------------------------------------------------------- timer


def test_on_time_the_timer_waits_one_interval_per_tick() -> None:
    clock = FakeClock(100.0)
    timer = PeriodicTimer(1.0, clock=clock)
    event = FakeEvent(clock)
    assert timer.deadline == 100.0
    for _ in range(3):
        assert timer.wait(event) is False
    assert event.timeouts == [1.0, 1.0, 1.0]
    assert timer.deadline == 103.0
    assert clock.now == 103.0


def test_work_time_is_taken_off_the_wait() -> None:
    clock = FakeClock(100.0)
    timer = PeriodicTimer(1.0, clock=clock)
    event = FakeEvent(clock)
    clock.now += 0.25  # the run took a quarter of the interval
    timer.wait(event)
    assert event.timeouts == [0.75]
    assert clock.now == 101.0


def test_without_compensation_a_late_run_restarts_the_schedule() -> None:
    clock = FakeClock(100.0)
    timer = PeriodicTimer(1.0, compensate=False, clock=clock)
    event = FakeEvent(clock)
    timer.wait(event)  # tick at 101
    clock.now += 2.5  # a slow run: now 103.5, ticks 102 and 103 missed
    assert timer.wait(event) is False
    assert event.timeouts[-1] == 0  # runs again at once...
    assert timer.deadline == 103.5  # ...and the schedule restarts from now
    timer.wait(event)
    assert event.timeouts[-1] == 1.0
    assert clock.now == 104.5


def test_with_compensation_missed_runs_are_caught_up() -> None:
    clock = FakeClock(100.0)
    timer = PeriodicTimer(1.0, compensate=True, clock=clock)
    event = FakeEvent(clock)
    timer.wait(event)  # tick at 101
    clock.now += 2.5  # now 103.5: ticks 102 and 103 are late
    timer.wait(event)
    timer.wait(event)
    assert event.timeouts[-2:] == [0, 0]  # both missed runs happen at once
    timer.wait(event)
    assert event.timeouts[-1] == 0.5  # then back on the old schedule
    assert timer.deadline == 104.0
    assert clock.now == 104.0


def test_wait_returns_true_when_the_event_is_set() -> None:
    clock = FakeClock()
    event = FakeEvent(clock, is_set=True)
    timer = PeriodicTimer(2.0, clock=clock)
    assert timer.wait(event) is True
    assert event.timeouts == [2.0]
    late = PeriodicTimer(1.0, clock=clock)
    clock.now += 5
    assert late.wait(event) is True  # also when the tick is already due


def test_reset_restarts_the_schedule_from_now() -> None:
    clock = FakeClock(100.0)
    timer = PeriodicTimer(1.0, compensate=True, clock=clock)
    clock.now = 150.0
    timer.reset()
    assert timer.deadline == 150.0
    event = FakeEvent(clock)
    timer.wait(event)
    assert event.timeouts == [1.0]


@pytest.mark.parametrize("interval", [0, 0.0, -1, -0.5])
def test_an_interval_not_above_zero_raises_value_error(interval: float) -> None:
    with pytest.raises(ValueError, match="interval"):
        PeriodicTimer(interval)


def test_real_event_cuts_the_wait_short() -> None:
    stop = threading.Event()
    stop.set()
    assert PeriodicTimer(3600).wait(stop) is True
    assert PeriodicTimer(0.01).wait(threading.Event()) is False


# --------------------------------------------------------------------------- agent


def test_timer_exists_only_after_setup_and_follows_the_config() -> None:
    ticker = TickerThread("t", {"execution_interval": 0.5, "delay_compensation": True})
    with pytest.raises(RuntimeError, match="setup"):
        _ = ticker.timer
    ticker.setup()
    assert ticker.timer.interval == 0.5
    assert ticker.timer.compensate is True
    plain = TickerThread("p")
    plain.setup()
    assert (plain.timer.interval, plain.timer.compensate) == (1.0, False)


def test_three_runs_keep_the_interval(flavour: str, channel: MessageChannel) -> None:
    interval = 0.1
    ticker = agent("ticker", flavour)(
        "t", {"limit": 3, "execution_interval": interval}, msg_channel=channel
    )
    run_to_end(ticker)
    messages = read_until_closed(channel, ["t"])
    ticks = [m.payload["tick"] for m in messages if "tick" in m.payload]
    assert len(ticks) == 3
    # Runs follow a fixed schedule from the first one; allow for the first run's
    # own small delay after the schedule started.
    assert ticks[2] - ticks[0] >= 2 * interval - 0.05
    assert all(b > a for a, b in itertools.pairwise(ticks))


def test_stop_cuts_a_periodic_wait_short(flavour: str, channel: MessageChannel) -> None:
    state = StateEvents.create(flavour)
    ticker = agent("ticker", flavour)(
        "t", {"execution_interval": 600}, msg_channel=channel, state_events=state
    )
    ticker.start()
    try:
        read_until(channel, lambda m: "tick" in m.payload)
        ticker.stop()
        ticker.join(15)  # far less than the 600 s interval
    finally:
        ticker.stop()
        ticker.join(5)
    assert not ticker.is_alive()
    messages = read_until_closed(channel, ["t"])
    assert not [m for m in messages if "tick" in m.payload]  # no second run
    assert messages[-1].payload["termination_status"] == "success"


def test_no_wait_after_the_last_run(flavour: str, channel: MessageChannel) -> None:
    ticker = agent("ticker", flavour)(
        "t", {"limit": 1, "execution_interval": 600}, msg_channel=channel
    )
    run_to_end(ticker, timeout=15)  # would take 600 s if it waited after its run
    messages = read_until_closed(channel, ["t"])
    assert len([m for m in messages if "tick" in m.payload]) == 1


def test_a_periodic_agent_must_implement_runner() -> None:
    with pytest.raises(TypeError):
        PeriodicThreadAgent("abstract")  # type: ignore[abstract]


def test_a_recoverable_error_in_runner_keeps_the_schedule(
    flavour: str, channel: MessageChannel
) -> None:
    """A failing run is still followed by the interval's wait, not an immediate rerun."""
    ticker = agent("scripted_ticker", flavour)(
        "t",
        {"limit": 5, "execution_interval": 600, "script": {"*": "recoverable"}},
        msg_channel=channel,
    )
    ticker.start()
    try:
        read_until(channel, lambda m: m.payload.get("run") == 0)
        with pytest.raises(queue.Empty):
            extra = channel.get(timeout=0.3)  # the next run is 600 s away
            pytest.fail(f"ran again at once: {extra.payload}")
    finally:
        ticker.stop()
        ticker.join(15)
    assert not ticker.is_alive()
    read_until_closed(channel, ["t"])


@pytest.mark.parametrize("compensate", [False, True])
def test_the_schedule_starts_when_execution_starts(
    flavour: str, channel: MessageChannel, compensate: bool
) -> None:
    """Time spent held by a custom execute_event is not a backlog of missed runs."""
    interval = 0.1
    control = ControlEvents(execute_event=make_event(flavour))
    state = StateEvents.create(flavour)
    ticker = agent("scripted_ticker", flavour)(
        "t",
        {
            "limit": 3,
            "execution_interval": interval,
            "delay_compensation": compensate,
        },
        msg_channel=channel,
        control_events=control,
        state_events=state,
    )
    ticker.start()
    try:
        assert state.ready_event.wait(15)
        assert not state.close_event.wait(5 * interval)  # held for 5 intervals
        control.execute_event.set()
        ticker.join(15)
    finally:
        ticker.stop()
        ticker.join(5)
    messages = read_until_closed(channel, ["t"])
    ticks = [m.payload["tick"] for m in messages if "tick" in m.payload]
    assert len(ticks) == 3
    assert ticks[2] - ticks[0] >= 2 * interval - 0.05, ticks
