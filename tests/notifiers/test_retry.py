"""Retry: the policy on its own (tenacity), and through the dispatcher.

Sleeps are faked (``sleep=``), so waits are recorded, never slept. With a fake sleep
tenacity's time-based stops never see the waits add up, so these tests bound retries
with ``max_attempts`` and keep ``budget`` out of the way, except where a single wait
crosses it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pydantic
import pytest
from tenacity import RetryCallState

from notifiers import (
    DeliveryError,
    DeliveryResult,
    DeliveryStatus,
    Dispatcher,
    MaybeDelivered,
    Notification,
    Notifier,
    NotifierConfigError,
    PermanentDeliveryError,
    RateLimited,
    RetryPolicy,
    TransientDeliveryError,
)
from notifiers.redact import SECRETS
from notifiers.testing import FlakyNotifier

if TYPE_CHECKING:
    from tests.notifiers.conftest import SleepRecorder

NO_BUDGET = 1e9
"""A budget no single fake wait crosses."""


def policy(**overrides: object) -> RetryPolicy:
    settings: dict[str, object] = {"budget": NO_BUDGET, "jitter": 0.0}
    settings.update(overrides)
    return RetryPolicy(**settings)


def run(
    retry_policy: RetryPolicy,
    errors: Sequence[BaseException],
    sleep: SleepRecorder,
    on_retry: Callable[[RetryCallState], None] | None = None,
) -> int:
    """Call an operation raising ``errors`` in turn, then succeeding; return the calls."""
    pending = list(errors)
    calls = 0

    async def operation() -> None:
        nonlocal calls
        calls += 1
        if pending:
            raise pending.pop(0)

    async def main() -> None:
        await retry_policy.retrying(sleep=sleep, on_retry=on_retry)(operation)

    asyncio.run(main())
    return calls


# ------------------------------------------------------------------ the policy


class TestPolicy:
    def test_defaults_follow_the_spec(self) -> None:
        default = RetryPolicy()
        assert default.max_attempts == 5
        assert default.budget == 60.0
        assert (default.initial, default.multiplier, default.max_wait) == (1, 2, 30)
        assert default.jitter == 1.0
        assert default.retry_after_cap == 60.0
        assert default.retry_maybe_delivered is False

    def test_frozen_and_strict(self) -> None:
        default = RetryPolicy()
        with pytest.raises(pydantic.ValidationError):
            default.max_attempts = 3  # type: ignore[misc]
        with pytest.raises(NotifierConfigError) as info:
            RetryPolicy(attempts=3)  # type: ignore[call-arg]
        assert info.value.errors == [("attempts", "unknown setting")]

    @pytest.mark.parametrize(
        "bad",
        [
            {"max_attempts": 0},
            {"budget": 0},
            {"initial": -1},
            {"multiplier": 0.5},
            {"jitter": -0.1},
            {"max_attempts": "three"},
        ],
    )
    def test_rejects_bad_values_naming_the_field(self, bad: dict[str, object]) -> None:
        # Our own error, like the settings' (not pydantic's ValidationError).
        with pytest.raises(NotifierConfigError) as info:
            RetryPolicy(**bad)
        assert not isinstance(info.value, pydantic.ValidationError)
        assert str(info.value).startswith("invalid retry policy")
        assert [loc for loc, _ in info.value.errors] == list(bad)
        assert "input_value" not in str(info.value)

    def test_the_settings_name_the_retry_field(self) -> None:
        from notifiers.settings import NotifierSettings

        with pytest.raises(NotifierConfigError) as info:
            NotifierSettings(state_path="none", retry={"max_attempts": 0, "x": 1})
        assert [loc for loc, _ in info.value.errors] == [
            "retry.max_attempts",
            "retry.x",
        ]

    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            (TransientDeliveryError("x"), True),
            (RateLimited("x", retry_after=60), True),
            (RateLimited("x", retry_after=60.5), False),
            (MaybeDelivered("x"), False),
            (PermanentDeliveryError("x"), False),
            (DeliveryError("x"), False),
            (ValueError("x"), False),
        ],
    )
    def test_should_retry(self, error: BaseException, expected: bool) -> None:
        assert RetryPolicy().should_retry(error) is expected

    def test_should_retry_maybe_delivered_when_asked(self) -> None:
        at_least_once = RetryPolicy(retry_maybe_delivered=True)
        assert at_least_once.should_retry(MaybeDelivered("x"))

    def test_transient_errors_retried_up_to_max_attempts(
        self, fake_sleep: SleepRecorder
    ) -> None:
        errors = [TransientDeliveryError(f"down {i}") for i in range(10)]
        with pytest.raises(TransientDeliveryError, match="down 3"):
            run(policy(max_attempts=4), errors, fake_sleep)
        assert fake_sleep.waits == [1.0, 2.0, 4.0]

    def test_success_after_retries(self, fake_sleep: SleepRecorder) -> None:
        errors = [TransientDeliveryError("down")] * 2
        assert run(policy(max_attempts=5), errors, fake_sleep) == 3
        assert fake_sleep.waits == [1.0, 2.0]

    def test_exponential_with_jitter_bounds(self, fake_sleep: SleepRecorder) -> None:
        retry_policy = policy(
            max_attempts=7, initial=0.5, multiplier=3, max_wait=20, jitter=0.25
        )
        rounds = 60
        for _ in range(rounds):
            errors = [TransientDeliveryError("down")] * 10
            with pytest.raises(TransientDeliveryError):
                run(retry_policy, errors, fake_sleep)
        assert len(fake_sleep.waits) == rounds * 6
        bases = [0.5, 1.5, 4.5, 13.5, 20.0, 20.0]
        for i, base in enumerate(bases):
            waits = fake_sleep.waits[i::6]
            if base < 20:
                assert all(base <= w <= base + 0.25 for w in waits), (base, waits)
                assert max(waits) > min(waits)  # jitter is there
            else:  # the cap holds, jitter included
                assert all(w == 20.0 for w in waits), waits

    def test_rate_limited_waits_retry_after(self, fake_sleep: SleepRecorder) -> None:
        errors = [RateLimited("slow down", retry_after=7.5)]
        assert run(policy(jitter=1.0), errors, fake_sleep) == 2
        assert fake_sleep.waits == [7.5]

    def test_rate_limited_up_to_the_cap(self, fake_sleep: SleepRecorder) -> None:
        errors = [RateLimited("slow down", retry_after=10)]
        assert run(policy(retry_after_cap=10), errors, fake_sleep) == 2
        assert fake_sleep.waits == [10]

    def test_rate_limited_beyond_the_cap_is_not_retried(
        self, fake_sleep: SleepRecorder
    ) -> None:
        errors = [RateLimited("slow down", retry_after=10.5)]
        with pytest.raises(RateLimited):
            run(policy(retry_after_cap=10), errors, fake_sleep)
        assert fake_sleep.waits == []

    def test_a_wait_crossing_the_budget_stops(self, fake_sleep: SleepRecorder) -> None:
        errors = [RateLimited("slow down", retry_after=30)]
        with pytest.raises(RateLimited):
            run(policy(budget=20, retry_after_cap=60), errors, fake_sleep)
        assert fake_sleep.waits == []

    def test_permanent_is_not_retried(self, fake_sleep: SleepRecorder) -> None:
        with pytest.raises(PermanentDeliveryError):
            run(policy(), [PermanentDeliveryError("bad token")], fake_sleep)
        assert fake_sleep.waits == []

    def test_foreign_exceptions_are_not_retried_by_the_policy(
        self, fake_sleep: SleepRecorder
    ) -> None:
        # The dispatcher classifies them first (see TestThroughDispatcher).
        with pytest.raises(KeyError):
            run(policy(), [KeyError("x")], fake_sleep)
        assert fake_sleep.waits == []

    def test_before_sleep_logs_progress_at_info_and_calls_on_retry(
        self, fake_sleep: SleepRecorder, caplog: pytest.LogCaptureFixture
    ) -> None:
        secret = "retry-secret-0c8f1e2a"
        SECRETS.add(secret)
        states: list[int] = []
        errors = [TransientDeliveryError(f"ConnectError: down with {secret}")] * 2
        with caplog.at_level(logging.INFO, logger="notifiers.retry"):
            run(
                policy(),
                errors,
                fake_sleep,
                on_retry=lambda s: states.append(s.attempt_number),
            )
        assert states == [1, 2]
        lines = [r for r in caplog.records if r.name == "notifiers.retry"]
        assert [r.levelno for r in lines] == [logging.INFO] * 2
        assert lines[0].getMessage().startswith("attempt 1/5 failed (ConnectError)")
        assert secret not in caplog.text


# ------------------------------------------------------------------ through the dispatcher


class Raising(Notifier):
    """Raises ``make_error()`` on its first ``failures`` sends (all if None)."""

    channel = "raising"

    def __init__(
        self,
        make_error: Callable[[], BaseException],
        failures: int | None = None,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.make_error = make_error
        self.failures = failures
        self.calls = 0

    async def send(self, notification: Notification) -> None:
        self.calls += 1
        if self.failures is None or self.calls <= self.failures:
            raise self.make_error()


class PermanentClassifier(Raising):
    def classify(self, exc: BaseException) -> DeliveryError:
        return PermanentDeliveryError(f"classified {type(exc).__name__}")


def deliver_one(dispatcher: Dispatcher) -> list[DeliveryResult]:
    dispatcher.submit(Notification("alert", "body"))
    assert dispatcher.flush(10)
    return list(dispatcher.results)


class TestThroughDispatcher:
    def test_transient_errors_exhaust_max_attempts(
        self, make_dispatcher: Callable[..., Dispatcher], fake_sleep: SleepRecorder
    ) -> None:
        flaky = FlakyNotifier([TransientDeliveryError("down")] * 10)
        retry_policy = policy(max_attempts=4, jitter=0.5)
        dispatcher = make_dispatcher([flaky], policy=retry_policy, sleep=fake_sleep)
        [result] = deliver_one(dispatcher)
        assert result.status is DeliveryStatus.FAILED
        assert result.attempts == 4
        assert result.error_class == "TransientDeliveryError"
        assert result.error == "down"
        assert flaky.attempts == 4
        assert len(fake_sleep.waits) == 3
        for wait, base in zip(fake_sleep.waits, [1, 2, 4], strict=True):
            assert base <= wait <= base + 0.5
        stats = dispatcher.stats()["flaky"]
        assert (stats.retried, stats.failed, stats.sent) == (3, 1, 0)
        assert stats.last_error == "down"

    def test_success_after_transient_errors(
        self, make_dispatcher: Callable[..., Dispatcher], fake_sleep: SleepRecorder
    ) -> None:
        flaky = FlakyNotifier([TransientDeliveryError("down")] * 2)
        dispatcher = make_dispatcher([flaky], policy=policy(), sleep=fake_sleep)
        [result] = deliver_one(dispatcher)
        assert result.status is DeliveryStatus.DELIVERED
        assert result.attempts == 3
        assert result.error is None
        assert result.error_class is None
        assert len(flaky.sent) == 1
        assert fake_sleep.waits == [1.0, 2.0]
        stats = dispatcher.stats()["flaky"]
        assert (stats.sent, stats.retried, stats.failed) == (1, 2, 0)
        assert stats.last_success is not None

    def test_rate_limited_is_honoured(
        self, make_dispatcher: Callable[..., Dispatcher], fake_sleep: SleepRecorder
    ) -> None:
        flaky = FlakyNotifier([RateLimited("429", retry_after=7)])
        dispatcher = make_dispatcher(
            [flaky], policy=policy(jitter=1.0), sleep=fake_sleep
        )
        [result] = deliver_one(dispatcher)
        assert result.status is DeliveryStatus.DELIVERED
        assert result.attempts == 2
        assert fake_sleep.waits == [7]

    def test_rate_limited_above_the_cap_fails_at_once(
        self, make_dispatcher: Callable[..., Dispatcher], fake_sleep: SleepRecorder
    ) -> None:
        flaky = FlakyNotifier([RateLimited("429", retry_after=134)])
        dispatcher = make_dispatcher(
            [flaky], policy=policy(retry_after_cap=60), sleep=fake_sleep
        )
        [result] = deliver_one(dispatcher)
        assert result.status is DeliveryStatus.FAILED
        assert result.attempts == 1
        assert result.error_class == "RateLimited"
        assert fake_sleep.waits == []

    def test_permanent_is_not_retried(
        self, make_dispatcher: Callable[..., Dispatcher], fake_sleep: SleepRecorder
    ) -> None:
        flaky = FlakyNotifier([PermanentDeliveryError("chat not found")])
        dispatcher = make_dispatcher([flaky], policy=policy(), sleep=fake_sleep)
        [result] = deliver_one(dispatcher)
        assert result.status is DeliveryStatus.PERMANENT
        assert result.attempts == 1
        assert result.error_class == "PermanentDeliveryError"
        assert result.error == "chat not found"
        assert fake_sleep.waits == []
        assert flaky.sent == []

    def test_maybe_delivered_is_not_retried_by_default(
        self, make_dispatcher: Callable[..., Dispatcher], fake_sleep: SleepRecorder
    ) -> None:
        flaky = FlakyNotifier([MaybeDelivered("read timeout")])
        dispatcher = make_dispatcher([flaky], policy=policy(), sleep=fake_sleep)
        [result] = deliver_one(dispatcher)
        assert result.status is DeliveryStatus.MAYBE_DELIVERED
        assert result.attempts == 1
        assert result.error_class == "MaybeDelivered"
        assert fake_sleep.waits == []

    def test_maybe_delivered_retried_when_asked(
        self, make_dispatcher: Callable[..., Dispatcher], fake_sleep: SleepRecorder
    ) -> None:
        flaky = FlakyNotifier([MaybeDelivered("read timeout")])
        at_least_once = policy(retry_maybe_delivered=True)
        dispatcher = make_dispatcher([flaky], policy=at_least_once, sleep=fake_sleep)
        [result] = deliver_one(dispatcher)
        assert result.status is DeliveryStatus.DELIVERED
        assert result.attempts == 2
        assert fake_sleep.waits == [1.0]

    def test_maybe_delivered_every_time(
        self, make_dispatcher: Callable[..., Dispatcher], fake_sleep: SleepRecorder
    ) -> None:
        flaky = FlakyNotifier([MaybeDelivered("read timeout")] * 5)
        at_least_once = policy(retry_maybe_delivered=True, max_attempts=3)
        dispatcher = make_dispatcher([flaky], policy=at_least_once, sleep=fake_sleep)
        [result] = deliver_one(dispatcher)
        assert result.status is DeliveryStatus.MAYBE_DELIVERED
        assert result.attempts == 3

    def test_unexpected_exception_is_transient(
        self, make_dispatcher: Callable[..., Dispatcher], fake_sleep: SleepRecorder
    ) -> None:
        raising = Raising(lambda: ValueError("surprise"), failures=2)
        dispatcher = make_dispatcher([raising], policy=policy(), sleep=fake_sleep)
        [result] = deliver_one(dispatcher)
        assert result.status is DeliveryStatus.DELIVERED
        assert result.attempts == 3
        assert len(fake_sleep.waits) == 2

    def test_unexpected_exception_every_time(
        self, make_dispatcher: Callable[..., Dispatcher], fake_sleep: SleepRecorder
    ) -> None:
        raising = Raising(lambda: OSError("connection reset"))
        dispatcher = make_dispatcher(
            [raising], policy=policy(max_attempts=3), sleep=fake_sleep
        )
        [result] = deliver_one(dispatcher)
        assert result.status is DeliveryStatus.FAILED
        assert result.attempts == 3
        assert result.error_class == "TransientDeliveryError"
        assert result.error == "OSError: connection reset"

    def test_classify_decides(
        self, make_dispatcher: Callable[..., Dispatcher], fake_sleep: SleepRecorder
    ) -> None:
        raising = PermanentClassifier(lambda: ValueError("bad request"))
        dispatcher = make_dispatcher([raising], policy=policy(), sleep=fake_sleep)
        [result] = deliver_one(dispatcher)
        assert result.status is DeliveryStatus.PERMANENT
        assert result.attempts == 1
        assert result.error == "classified ValueError"

    def test_one_policy_per_channel(
        self, make_dispatcher: Callable[..., Dispatcher], fake_sleep: SleepRecorder
    ) -> None:
        patient = Raising(lambda: TransientDeliveryError("down"), name="patient")
        hasty = Raising(lambda: TransientDeliveryError("down"), name="hasty")
        dispatcher = make_dispatcher(
            [patient, hasty],
            policy=policy(max_attempts=4),
            policies={"hasty": policy(max_attempts=1)},
            sleep=fake_sleep,
        )
        results = {r.channel: r for r in deliver_one(dispatcher)}
        assert results["patient"].attempts == 4
        assert results["hasty"].attempts == 1
        assert (patient.calls, hasty.calls) == (4, 1)
