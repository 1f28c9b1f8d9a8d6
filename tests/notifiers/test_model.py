"""The data model: Notification, DeliveryResult, Severity, and the error tree."""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket

import pytest

from notifiers import (
    DeliveryError,
    DeliveryResult,
    DeliveryStatus,
    DispatcherClosed,
    MaybeDelivered,
    Notification,
    NotifierConfigError,
    NotifierError,
    PermanentDeliveryError,
    RateLimited,
    RetriesExhausted,
    Severity,
    TextFormat,
    TransientDeliveryError,
)


class TestNotification:
    def test_is_frozen(self) -> None:
        notification = Notification("title", "body")
        with pytest.raises(dataclasses.FrozenInstanceError):
            notification.title = "changed"  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            notification.severity = Severity.ERROR  # type: ignore[misc]

    def test_has_no_instance_dict(self) -> None:
        notification = Notification("title", "body")
        with pytest.raises((AttributeError, TypeError)):
            notification.extra = 1  # type: ignore[attr-defined]

    def test_defaults(self) -> None:
        before = dt.datetime.now().astimezone()
        notification = Notification("title", "body")
        after = dt.datetime.now().astimezone()
        assert notification.severity is Severity.INFO
        assert notification.agent is None
        assert notification.event is None
        assert notification.generation is None
        assert notification.error is None
        assert notification.host == socket.gethostname()
        assert notification.timestamp.tzinfo is not None
        assert before <= notification.timestamp <= after

    def test_every_field(self) -> None:
        stamp = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
        notification = Notification(
            "t",
            "b",
            Severity.ERROR,
            agent="worker",
            event="agent_error",
            timestamp=stamp,
            generation=3,
            error="boom",
            host="box",
        )
        assert notification.timestamp == stamp
        assert notification.generation == 3
        assert notification.host == "box"
        assert notification.key == ("worker", "agent_error", "boom")

    def test_ids_are_unique_and_increasing(self) -> None:
        ids = [Notification("t", "b").id for _ in range(50)]
        assert ids == sorted(ids)
        assert len(set(ids)) == 50

    def test_replace_keeps_the_id(self) -> None:
        notification = Notification("t", "b")
        changed = dataclasses.replace(notification, severity=Severity.CRITICAL)
        assert changed.id == notification.id
        assert changed.severity is Severity.CRITICAL
        assert notification.severity is Severity.INFO


class TestSeverity:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("error", Severity.ERROR),
            ("ERROR", Severity.ERROR),
            ("  Warning ", Severity.WARNING),
            ("debug", Severity.DEBUG),
            ("critical", Severity.CRITICAL),
            (20, Severity.INFO),
            (50, Severity.CRITICAL),
            (Severity.ERROR, Severity.ERROR),
        ],
    )
    def test_parse(self, value: str | int | Severity, expected: Severity) -> None:
        assert Severity.parse(value) is expected

    @pytest.mark.parametrize("value", ["fatal", "", "err", 15, 0])
    def test_parse_rejects(self, value: str | int) -> None:
        with pytest.raises(ValueError):
            Severity.parse(value)

    def test_unknown_name_lists_the_known_ones(self) -> None:
        with pytest.raises(ValueError, match="debug, info, warning, error, critical"):
            Severity.parse("fatal")

    def test_ordered(self) -> None:
        assert Severity.DEBUG < Severity.INFO < Severity.WARNING
        assert Severity.WARNING < Severity.ERROR < Severity.CRITICAL
        assert Severity.parse("error") >= Severity.WARNING


def test_text_formats() -> None:
    assert {f.value for f in TextFormat} == {"plain", "html", "markdownv2"}


class TestDeliveryResult:
    def test_defaults_and_ok(self) -> None:
        result = DeliveryResult(1, "telegram", DeliveryStatus.DELIVERED)
        assert result.ok
        assert result.attempts == 0
        assert result.error is None
        assert result.error_class is None
        assert result.duration == 0.0

    @pytest.mark.parametrize(
        "status", [s for s in DeliveryStatus if s is not DeliveryStatus.DELIVERED]
    )
    def test_only_delivered_is_ok(self, status: DeliveryStatus) -> None:
        assert not DeliveryResult(1, "c", status).ok

    def test_is_frozen(self) -> None:
        result = DeliveryResult(1, "c", DeliveryStatus.FAILED)
        with pytest.raises(dataclasses.FrozenInstanceError):
            result.status = DeliveryStatus.DELIVERED  # type: ignore[misc]


class TestErrors:
    def test_tree(self) -> None:
        assert issubclass(NotifierConfigError, NotifierError)
        assert issubclass(NotifierConfigError, ValueError)
        assert issubclass(DeliveryError, NotifierError)
        assert issubclass(TransientDeliveryError, DeliveryError)
        assert issubclass(RateLimited, TransientDeliveryError)
        assert issubclass(MaybeDelivered, TransientDeliveryError)
        assert issubclass(PermanentDeliveryError, DeliveryError)
        assert not issubclass(PermanentDeliveryError, TransientDeliveryError)
        assert issubclass(RetriesExhausted, DeliveryError)
        assert issubclass(DispatcherClosed, NotifierError)
        assert issubclass(DispatcherClosed, RuntimeError)

    def test_delivery_error_fields(self) -> None:
        error = TransientDeliveryError("down", channel="mail", attempts=2)
        assert str(error) == "down"
        assert (error.message, error.channel, error.attempts) == ("down", "mail", 2)

    def test_rate_limited_keeps_retry_after(self) -> None:
        error = RateLimited("slow down", retry_after=3.5, channel="telegram")
        assert error.retry_after == 3.5
        assert error.channel == "telegram"

    def test_retries_exhausted_keeps_last_error(self) -> None:
        last = TransientDeliveryError("down")
        error = RetriesExhausted("gave up", last_error=last, attempts=5)
        assert error.last_error is last
        assert error.attempts == 5

    def test_config_error_lists_fields(self) -> None:
        error = NotifierConfigError(
            "invalid settings", [("telegram.token", "missing"), ("", "general")]
        )
        assert str(error).splitlines() == [
            "invalid settings",
            "  telegram.token: missing",
            "  general",
        ]
        assert error.errors == [("telegram.token", "missing"), ("", "general")]
