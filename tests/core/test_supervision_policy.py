"""The supervision policy on plain numbers: SupervisionConfig, backoff_delay, RestartTracker.

No orchestrator, no threads, no clock: ``RestartTracker.decide`` is given ``now`` and
``uptime`` directly, as the lifecycle manager does from its injected clock.
"""

from __future__ import annotations

import random

import pytest

from pyorchestrate import ConfigError, SupervisionConfig
from pyorchestrate.core.supervision_config import (
    RestartDecision,
    RestartTracker,
    backoff_delay,
)


def _exact(**overrides: object) -> SupervisionConfig:
    """A policy without jitter or immediate restarts, so every delay is exact."""
    return SupervisionConfig(
        **{"backoff_jitter": 0.0, "immediate_restarts": 0, **overrides}
    )


# ---------------------------------------------------------------- SupervisionConfig


def test_defaults_turn_everything_off_but_keep_sane_backoff() -> None:
    config = SupervisionConfig()
    assert config.restart == "never"
    assert config.restarts_enabled is False
    assert config.success_exit_codes == frozenset({0})
    assert config.max_restarts == -1
    assert config.immediate_restarts == 1
    assert config.backoff_initial == 0.1
    assert config.backoff_multiplier == 2.0
    assert config.backoff_max == 30.0
    assert config.backoff_jitter == 0.1
    assert config.reset_after == 30.0
    assert config.flap_restarts == 5
    assert config.flap_window == 60.0
    assert config.ready_timeout is None
    assert config.heartbeat_timeout is None
    assert config.stop_timeout is None
    assert config.kill_timeout is None


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("on-failure", "on-failure"),
        ("on_failure", "on-failure"),
        ("ON-FAILURE", "on-failure"),
        ("On_Failure", "on-failure"),
        (" always ", "always"),
        ("NEVER", "never"),
    ],
)
def test_restart_spellings_are_normalised(spelling: str, expected: str) -> None:
    config = SupervisionConfig(restart=spelling)
    assert config.restart == expected
    assert config.restarts_enabled is (expected != "never")


@pytest.mark.parametrize("value", ["sometimes", "on failure", "", 1])
def test_an_unknown_restart_value_is_rejected_naming_the_field(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        SupervisionConfig(restart=value)
    assert [loc for loc, _ in info.value.errors] == ["restart"]
    message = str(info.value)
    assert "restart: must be 'never', 'on-failure' or 'always'" in message


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("max_restarts", -2, "must be greater than or equal to -1"),
        ("backoff_initial", -0.1, "must be greater than or equal to 0"),
        ("backoff_multiplier", 0.5, "must be greater than or equal to 1"),
        ("backoff_max", -1.0, "must be greater than or equal to 0"),
        ("backoff_jitter", 1.5, "must be less than or equal to 1"),
        ("backoff_jitter", -0.1, "must be greater than or equal to 0"),
        ("reset_after", 0, "must be greater than 0"),
        ("flap_restarts", 0, "must be greater than or equal to 1"),
        ("flap_window", 0, "must be greater than 0"),
        ("ready_timeout", 0, "must be greater than 0"),
        ("heartbeat_timeout", -1, "must be greater than 0"),
        ("stop_timeout", 0, "must be greater than 0"),
        ("kill_timeout", 0, "must be greater than 0"),
    ],
)
def test_a_bad_value_is_rejected_naming_the_field(
    field: str, value: object, reason: str
) -> None:
    with pytest.raises(ConfigError) as info:
        SupervisionConfig(**{field: value})
    assert info.value.errors == [(field, reason)]
    assert f"{field}: {reason}" in str(info.value)


def test_an_unknown_field_is_rejected() -> None:
    with pytest.raises(ConfigError) as info:
        SupervisionConfig(max_restart=3)  # type: ignore[call-arg]
    assert info.value.errors == [
        ("max_restart", "unknown setting; did you mean 'max_restarts'?")
    ]
    with pytest.raises(ConfigError) as info:
        SupervisionConfig(restart_policy="always")  # type: ignore[call-arg]
    assert info.value.errors == [("restart_policy", "unknown setting")]


def test_backoff_max_below_backoff_initial_is_rejected() -> None:
    with pytest.raises(ConfigError) as info:
        SupervisionConfig(backoff_initial=2.0, backoff_max=1.0)
    assert "backoff_max: must be at least backoff_initial (1 < 2)" in str(info.value)
    # Equal bounds are fine: every delay is then the same.
    config = _exact(backoff_initial=2.0, backoff_max=2.0)
    assert [backoff_delay(config, n) for n in (1, 2, 3)] == [2.0, 2.0, 2.0]


def test_optional_limits_accept_none() -> None:
    config = SupervisionConfig(flap_restarts=None, ready_timeout=None)
    assert config.flap_restarts is None


def test_success_exit_codes_accept_any_iterable_of_ints() -> None:
    config = SupervisionConfig(success_exit_codes=[0, 3, 3])
    assert config.success_exit_codes == frozenset({0, 3})
    with pytest.raises(
        ConfigError, match=r"success_exit_codes\.1: must be a valid integer"
    ):
        SupervisionConfig(success_exit_codes=[0, "three"])


def test_a_rejected_assignment_names_the_field_and_changes_nothing() -> None:
    config = SupervisionConfig(max_restarts=3)
    with pytest.raises(
        ConfigError, match="max_restarts: must be greater than or equal"
    ):
        config.max_restarts = -5
    assert config.max_restarts == 3


def test_a_rejected_assignment_of_backoff_max_leaves_the_old_value() -> None:
    """The cross-field check (backoff_max >= backoff_initial) on assignment.

    The assignment is refused, so the config must keep its old, valid, value; it must
    not be left holding ``backoff_max < backoff_initial``, which would then make every
    later assignment (of any field) fail on the same check.
    """
    config = SupervisionConfig(backoff_initial=1.0, backoff_max=5.0)
    with pytest.raises(ConfigError, match="backoff_max: must be at least"):
        config.backoff_max = 0.5
    assert config.backoff_max == 5.0
    config.restart = "always"  # an unrelated, valid assignment still works
    assert config.restart == "always"


# ---------------------------------------------------------------- backoff_delay


def test_backoff_grows_by_the_multiplier_up_to_the_cap() -> None:
    config = _exact(backoff_initial=0.5, backoff_multiplier=3.0, backoff_max=10.0)
    delays = [backoff_delay(config, n) for n in range(1, 7)]
    assert delays == [0.5, 1.5, 4.5, 10.0, 10.0, 10.0]


def test_backoff_with_the_defaults_restarts_once_at_once_then_doubles_from_100_ms() -> (
    None
):
    config = SupervisionConfig(backoff_jitter=0.0)
    delays = [backoff_delay(config, n) for n in range(1, 12)]
    assert delays == pytest.approx(
        [0.0, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0]
    )


def test_immediate_restarts_come_first_then_the_backoff_starts_at_its_initial() -> None:
    config = _exact(immediate_restarts=3, backoff_initial=0.5)
    delays = [backoff_delay(config, n) for n in range(1, 7)]
    assert delays == [0.0, 0.0, 0.0, 0.5, 1.0, 2.0]
    jittered = SupervisionConfig(immediate_restarts=2, backoff_jitter=0.5)
    assert backoff_delay(jittered, 2, random.Random(5)) == 0.0  # no jitter on "now"


def test_a_multiplier_of_one_keeps_the_delay_constant() -> None:
    config = _exact(backoff_initial=0.25, backoff_multiplier=1.0)
    assert {backoff_delay(config, n) for n in (1, 2, 50, 10**9)} == {0.25}


def test_attempt_zero_or_less_counts_as_the_first() -> None:
    config = _exact(backoff_initial=0.25)
    assert backoff_delay(config, 0) == backoff_delay(config, -3) == 0.25


@pytest.mark.parametrize("attempt", [1_024, 1_025, 5_000, 10**9, 10**18])
def test_huge_attempt_numbers_do_not_overflow(attempt: int) -> None:
    config = _exact(backoff_initial=0.1, backoff_max=7.0)
    assert backoff_delay(config, attempt) == 7.0
    jittered = SupervisionConfig(
        immediate_restarts=0, backoff_initial=0.1, backoff_max=7.0
    )
    assert 6.3 <= backoff_delay(jittered, attempt, random.Random(1)) <= 7.0


def test_a_zero_initial_delay_stays_zero_for_every_attempt() -> None:
    """``backoff_initial * multiplier ** (attempt - 1)`` is 0 for every attempt.

    A huge attempt number must not turn the product into ``backoff_max``: the
    overflow of ``multiplier ** (attempt - 1)`` does not make ``0 * ...`` large.
    """
    config = _exact(backoff_initial=0.0, backoff_max=30.0)
    attempts = [1, 2, 1_024, 1_025, 10**9]
    assert [backoff_delay(config, n) for n in attempts] == [0.0] * len(attempts)


def test_jitter_stays_within_its_bounds_and_spreads_both_ways() -> None:
    config = SupervisionConfig(
        immediate_restarts=0,
        backoff_initial=1.0,
        backoff_multiplier=2.0,
        backoff_max=100.0,
        backoff_jitter=0.25,
    )
    rng = random.Random(20240601)
    for attempt, base in ((1, 1.0), (3, 4.0)):
        samples = [backoff_delay(config, attempt, rng) for _ in range(2_000)]
        assert min(samples) >= base * 0.75
        assert max(samples) <= base * 1.25
        # Both sides of the base are used, and most of the range is.
        assert min(samples) < base * 0.8
        assert max(samples) > base * 1.2


def test_jitter_never_goes_above_backoff_max() -> None:
    config = SupervisionConfig(
        immediate_restarts=0, backoff_initial=8.0, backoff_max=10.0, backoff_jitter=0.5
    )
    rng = random.Random(3)
    samples = [backoff_delay(config, 2, rng) for _ in range(1_000)]  # base: the cap
    assert max(samples) <= 10.0
    assert min(samples) >= 5.0
    assert min(samples) < 6.0


def test_jitter_is_reproducible_with_a_seeded_random() -> None:
    config = SupervisionConfig(immediate_restarts=0, backoff_jitter=0.5)
    first = [backoff_delay(config, n, random.Random(42)) for n in range(1, 6)]
    second = [backoff_delay(config, n, random.Random(42)) for n in range(1, 6)]
    assert first == second


# ---------------------------------------------------------------- RestartTracker


def test_restart_never_never_restarts() -> None:
    tracker = RestartTracker()
    config = _exact(restart="never")
    for failed in (True, False):
        decision = tracker.decide(config, now=0.0, failed=failed, uptime=1.0)
        assert decision == RestartDecision("none", reason="restart=never")
    assert tracker.attempts == 0


def test_on_failure_restarts_a_failure_only() -> None:
    tracker = RestartTracker()
    config = _exact(restart="on-failure", backoff_initial=0.5)
    clean = tracker.decide(config, now=0.0, failed=False, uptime=1.0)
    assert clean == RestartDecision("none", reason="ended cleanly")
    assert tracker.attempts == 0  # a clean end is not counted
    failure = tracker.decide(config, now=1.0, failed=True, uptime=1.0)
    assert failure == RestartDecision(
        "restart", attempt=1, delay=0.5, restarts_in_window=1
    )


def test_always_restarts_a_clean_end_too() -> None:
    tracker = RestartTracker()
    config = _exact(restart="always", backoff_initial=0.5)
    first = tracker.decide(config, now=0.0, failed=False, uptime=1.0)
    second = tracker.decide(config, now=1.0, failed=True, uptime=1.0)
    assert (first.action, first.attempt, first.delay) == ("restart", 1, 0.5)
    assert (second.action, second.attempt, second.delay) == ("restart", 2, 1.0)


def test_a_start_that_never_ran_is_a_failure_without_uptime() -> None:
    tracker = RestartTracker()
    config = _exact(restart="on-failure", reset_after=1.0)
    for n in (1, 2, 3):
        decision = tracker.decide(config, now=float(n), failed=True, uptime=None)
        assert (decision.action, decision.attempt) == ("restart", n)


def test_max_restarts_is_a_budget_then_fatal() -> None:
    tracker = RestartTracker()
    config = _exact(
        restart="always", max_restarts=2, flap_restarts=None, backoff_initial=1.0
    )
    decisions = [
        tracker.decide(config, now=t, failed=True, uptime=0.1) for t in (0.0, 5.0, 10.0)
    ]
    assert [(d.action, d.attempt, d.delay) for d in decisions] == [
        ("restart", 1, 1.0),
        ("restart", 2, 2.0),
        ("fatal", 2, 0.0),
    ]
    assert decisions[-1].reason == "max_restarts"
    # FATAL is not a restart: asking again stays FATAL with the same count.
    again = tracker.decide(config, now=11.0, failed=True, uptime=0.1)
    assert (again.action, again.attempt, again.reason) == ("fatal", 2, "max_restarts")
    assert tracker.attempts == 2


def test_max_restarts_zero_is_fatal_at_the_first_end() -> None:
    tracker = RestartTracker()
    config = _exact(restart="on-failure", max_restarts=0)
    decision = tracker.decide(config, now=0.0, failed=True, uptime=1.0)
    assert decision == RestartDecision("fatal", attempt=0, reason="max_restarts")
    # A clean end under on-failure is still no decision at all.
    clean = tracker.decide(config, now=1.0, failed=False, uptime=1.0)
    assert clean.action == "none"


def test_unlimited_restarts_with_flapping_off_never_go_fatal() -> None:
    tracker = RestartTracker()
    config = _exact(restart="always", max_restarts=-1, flap_restarts=None)
    for n in range(1, 201):
        decision = tracker.decide(config, now=n * 0.001, failed=True, uptime=0.0)
        assert (decision.action, decision.attempt) == ("restart", n)
    assert decision.delay == 30.0


def test_restarts_within_the_window_are_flapping() -> None:
    tracker = RestartTracker()
    config = _exact(restart="always", flap_restarts=3, flap_window=10.0)
    decisions = [
        tracker.decide(config, now=t, failed=True, uptime=0.1)
        for t in (100.0, 101.0, 102.0, 103.0)
    ]
    assert [d.action for d in decisions] == ["restart", "restart", "restart", "fatal"]
    assert [d.restarts_in_window for d in decisions] == [1, 2, 3, 3]
    fatal = decisions[-1]
    assert (fatal.reason, fatal.attempt) == ("flapping", 3)


def test_old_restarts_leave_the_window() -> None:
    tracker = RestartTracker()
    config = _exact(restart="always", flap_restarts=3, flap_window=10.0)
    for t in (0.0, 1.0, 2.0):
        assert (
            tracker.decide(config, now=t, failed=True, uptime=0.1).action == "restart"
        )
    # At 11.5 the restarts at 0 and 1 are more than 10 s old: only one is in the window.
    later = tracker.decide(config, now=11.5, failed=True, uptime=0.1)
    assert (later.action, later.attempt, later.restarts_in_window) == ("restart", 4, 2)


def test_restarts_spaced_beyond_the_window_never_flap() -> None:
    tracker = RestartTracker()
    config = _exact(restart="always", flap_restarts=1, flap_window=5.0, backoff_max=8.0)
    for n in range(1, 21):
        decision = tracker.decide(config, now=n * 6.0, failed=True, uptime=0.5)
        assert decision.action == "restart"
        assert decision.restarts_in_window == 1
    # Not stable (uptime < reset_after), so the attempts still count up and back off.
    assert (decision.attempt, decision.delay) == (20, 8.0)


def test_a_stable_run_resets_the_attempts_and_the_delay() -> None:
    tracker = RestartTracker()
    config = _exact(restart="always", reset_after=30.0, backoff_initial=0.5)
    delays = [
        tracker.decide(config, now=float(t), failed=True, uptime=1.0).delay
        for t in range(3)
    ]
    assert delays == [0.5, 1.0, 2.0]
    # Up just under reset_after: not yet stable, the backoff keeps growing.
    almost = tracker.decide(config, now=40.0, failed=True, uptime=29.9)
    assert (almost.attempt, almost.delay) == (4, 4.0)
    # Up reset_after seconds: stable; the next restart is a first one again.
    stable = tracker.decide(config, now=80.0, failed=True, uptime=30.0)
    assert stable == RestartDecision(
        "restart", attempt=1, delay=0.5, restarts_in_window=1
    )


def test_a_stable_run_refreshes_the_max_restarts_budget() -> None:
    tracker = RestartTracker()
    config = _exact(restart="always", max_restarts=1, reset_after=10.0)
    assert tracker.decide(config, now=0.0, failed=True, uptime=1.0).action == "restart"
    assert tracker.decide(config, now=1.0, failed=True, uptime=1.0).action == "fatal"
    again = tracker.decide(config, now=20.0, failed=True, uptime=10.0)
    assert (again.action, again.attempt) == ("restart", 1)


def test_a_stable_run_clears_the_flap_history() -> None:
    tracker = RestartTracker()
    config = _exact(
        restart="always", flap_restarts=2, flap_window=60.0, reset_after=5.0
    )
    for t in (0.0, 1.0):
        assert (
            tracker.decide(config, now=t, failed=True, uptime=0.1).action == "restart"
        )
    # Within the window, but the agent had been up 5 s: the history starts over.
    decision = tracker.decide(config, now=7.0, failed=True, uptime=5.0)
    assert (decision.action, decision.restarts_in_window) == ("restart", 1)


def test_reset_gives_a_fresh_budget_after_an_operator_start() -> None:
    tracker = RestartTracker()
    config = _exact(restart="always", max_restarts=2, backoff_initial=1.0)
    for t in (0.0, 1.0):
        tracker.decide(config, now=t, failed=True, uptime=0.1)
    assert tracker.decide(config, now=2.0, failed=True, uptime=0.1).action == "fatal"
    tracker.reset()
    assert tracker.attempts == 0
    decision = tracker.decide(config, now=3.0, failed=True, uptime=0.1)
    assert decision == RestartDecision(
        "restart", attempt=1, delay=1.0, restarts_in_window=1
    )


def test_the_tracker_uses_its_own_random_for_jitter() -> None:
    config = SupervisionConfig(
        immediate_restarts=0, restart="always", backoff_jitter=0.5
    )
    first = RestartTracker(random.Random(9))
    second = RestartTracker(random.Random(9))
    a = [first.decide(config, now=t, failed=True, uptime=0.0).delay for t in (0, 1, 2)]
    b = [second.decide(config, now=t, failed=True, uptime=0.0).delay for t in (0, 1, 2)]
    assert a == b
    for delay, base in zip(a, (0.1, 0.2, 0.4), strict=True):
        assert base * 0.5 <= delay <= base * 1.5
