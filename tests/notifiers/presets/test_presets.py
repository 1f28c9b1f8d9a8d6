"""Presets against a real orchestrator: what is sent, the filters, detach, and threads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from notifiers import (
    DeliveryStatus,
    Dispatcher,
    DispatcherClosed,
    Notification,
    NotifierConfigError,
    RetryPolicy,
    Severity,
    Template,
)
from notifiers.presets import (
    PRESETS,
    Attachment,
    Preset,
    SupportsRegisterEvent,
    attach,
    attach_from_settings,
    detach,
)
from notifiers.testing import RecordingNotifier
from pyorchestrate import EventRecord, Orchestrator, OrchestratorEvent
from pyorchestrate.testing import EventRecorder
from tests.agents import agent

E = OrchestratorEvent
MakeOrchestrator = Callable[..., Orchestrator]


@pytest.fixture(autouse=True)
def _dispatchers_closed(no_dispatcher_leaks: None) -> None:
    """Every test here must close every dispatcher it made."""


def run_to_end(
    orchestrator: Orchestrator, *agents: str, recorder: EventRecorder | None = None
) -> None:
    """Start, wait until each agent terminated, shut down (runs queued callbacks)."""
    recorder = recorder or EventRecorder().attach(orchestrator)
    orchestrator.start()
    for name in agents:
        recorder.wait_for(E.AGENT_TERMINATED, name)
    orchestrator.shutdown(timeout=2.0)


def boom_and_quick(make: MakeOrchestrator) -> Orchestrator:
    orchestrator = make()
    orchestrator.register_agent(agent("boom", "thread"), "boom")
    orchestrator.register_agent(agent("quick", "thread"), "quick")
    return orchestrator


def sent_by_agent(channel: RecordingNotifier) -> dict[str | None, list[str | None]]:
    out: dict[str | None, list[str | None]] = {}
    for notification in channel.sent:
        out.setdefault(notification.agent, []).append(notification.event)
    return out


# ---------------------------------------------------------------- presets


def test_errors_only_sends_one_alert_for_a_failing_agent(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = boom_and_quick(make_orchestrator)
    channel = RecordingNotifier()
    attachment = attach(orchestrator, "errors_only", channel)
    run_to_end(orchestrator, "boom", "quick")
    assert attachment.detach() == []
    (alert,) = channel.sent
    assert alert.agent == "boom"
    assert alert.event == "agent_error"
    assert alert.severity is Severity.ERROR
    assert "boom" in alert.title
    assert "ValueError: boom" in alert.body
    assert [r.status for r in attachment.results] == [DeliveryStatus.DELIVERED]


def test_lifecycle_sends_started_ready_terminated_and_error(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = boom_and_quick(make_orchestrator)
    channel = RecordingNotifier()
    with attach(orchestrator, "lifecycle", channel) as attachment:
        run_to_end(orchestrator, "boom", "quick")
    assert not attachment.attached
    assert sent_by_agent(channel) == {
        "quick": ["agent_started", "agent_ready", "agent_terminated"],
        "boom": ["agent_started", "agent_ready", "agent_error", "agent_terminated"],
    }
    titles = [n.title for n in channel.sent]
    assert "▶ quick started" in titles
    assert "■ quick terminated (success)" in titles
    assert len(attachment.results) == 7


def test_agent_glob_filter(make_orchestrator: MakeOrchestrator) -> None:
    orchestrator = boom_and_quick(make_orchestrator)
    channel = RecordingNotifier()
    with attach(orchestrator, "lifecycle", channel, agents="qu*"):
        run_to_end(orchestrator, "boom", "quick")
    assert set(sent_by_agent(channel)) == {"quick"}


def test_list_of_agent_globs(make_orchestrator: MakeOrchestrator) -> None:
    orchestrator = boom_and_quick(make_orchestrator)
    channel = RecordingNotifier()
    with attach(orchestrator, "lifecycle", channel, agents=["nobody-*", "b?om"]):
        run_to_end(orchestrator, "boom", "quick")
    assert set(sent_by_agent(channel)) == {"boom"}


def test_event_filter_narrows_the_preset(make_orchestrator: MakeOrchestrator) -> None:
    orchestrator = boom_and_quick(make_orchestrator)
    channel = RecordingNotifier()
    with attach(orchestrator, "lifecycle", channel, events=["agent_terminated"]):
        run_to_end(orchestrator, "boom", "quick")
    assert sent_by_agent(channel) == {
        "boom": ["agent_terminated"],
        "quick": ["agent_terminated"],
    }


def test_min_severity_filter(make_orchestrator: MakeOrchestrator) -> None:
    orchestrator = boom_and_quick(make_orchestrator)
    channel = RecordingNotifier()
    with attach(orchestrator, "lifecycle", channel, min_severity="error"):
        run_to_end(orchestrator, "boom", "quick")
    # quick's events are INFO; boom's error is ERROR and its termination status
    # ("critical") makes its AGENT_TERMINATED at least as severe.
    assert sent_by_agent(channel) == {"boom": ["agent_error", "agent_terminated"]}
    assert all(n.severity >= Severity.ERROR for n in channel.sent)


def test_custom_templates(make_orchestrator: MakeOrchestrator) -> None:
    orchestrator = boom_and_quick(make_orchestrator)
    channel = RecordingNotifier()
    templates = {
        "agent_error": Template(
            "{orchestrator}/{agent} down", "{error}", Severity.CRITICAL
        )
    }
    with attach(orchestrator, "errors_only", channel, templates=templates):
        run_to_end(orchestrator, "boom", "quick")
    (alert,) = channel.sent
    assert alert.title == "alerts/boom down"
    assert alert.body == "ValueError: boom"
    assert alert.severity is Severity.CRITICAL


def test_a_custom_preset(make_orchestrator: MakeOrchestrator) -> None:
    preset = Preset("ends", ("agent_terminated",), min_severity="warning")  # type: ignore[arg-type]
    assert preset.events == (E.AGENT_TERMINATED,)
    assert preset.min_severity is Severity.WARNING
    hash(preset)  # frozen and hashable
    orchestrator = boom_and_quick(make_orchestrator)
    channel = RecordingNotifier()
    with attach(orchestrator, preset, channel):
        run_to_end(orchestrator, "boom", "quick")
    assert sent_by_agent(channel) == {"boom": ["agent_terminated"]}  # not success


def test_builtin_presets() -> None:
    # A scheduled run that did not happen is a failure too (issue 16).
    assert PRESETS["errors_only"].events == (
        E.AGENT_ERROR,
        E.AGENT_FATAL,
        E.AGENT_MISSED,
    )
    assert set(PRESETS["lifecycle"].events) == {
        E.AGENT_STARTED,
        E.AGENT_READY,
        E.AGENT_TERMINATED,
        E.AGENT_ERROR,
        E.AGENT_RESTARTING,
        E.AGENT_FATAL,
        E.AGENT_MISSED,
        E.AGENT_LATE,
    }
    with pytest.raises(TypeError):
        PRESETS["x"] = PRESETS["lifecycle"]  # type: ignore[index]


# ---------------------------------------------------------------- threads


class SpyDispatcher(Dispatcher):
    """Records which thread calls submit()."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.submit_threads: list[str] = []

    def submit(self, notification: Notification) -> None:
        self.submit_threads.append(threading.current_thread().name)
        super().submit(notification)


class ThreadNotingNotifier(RecordingNotifier):
    """Records which thread send() runs on."""

    def __init__(self) -> None:
        super().__init__()
        self.send_threads: list[str] = []

    async def send(self, notification: Notification) -> None:
        self.send_threads.append(threading.current_thread().name)
        await super().send(notification)


def test_handler_only_submits_on_a_callback_thread(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = boom_and_quick(make_orchestrator)
    channel = ThreadNotingNotifier()
    dispatcher = SpyDispatcher([channel], name="notifiers-spy")
    try:
        with attach(orchestrator, "lifecycle", dispatcher=dispatcher):
            run_to_end(orchestrator, "boom", "quick")
        assert dispatcher.flush(10)
    finally:
        dispatcher.close()
    assert len(dispatcher.submit_threads) == 7
    for name in dispatcher.submit_threads:
        assert name.startswith("pyorchestrate-alerts-callbacks-"), name
        assert "router" not in name
    # Sending happened on the dispatcher's own thread, never in the handler.
    assert channel.send_threads == ["notifiers-spy"] * 7


# ---------------------------------------------------------------- detach


def test_detach_stops_notifications_and_closes_the_owned_dispatcher(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = boom_and_quick(make_orchestrator)
    channel = RecordingNotifier()
    attachment = attach(orchestrator, "lifecycle", channel)
    assert attachment.owns_dispatcher
    assert detach(attachment) == []
    assert not attachment.attached
    run_to_end(orchestrator, "boom", "quick")
    assert channel.sent == []
    with pytest.raises(DispatcherClosed):
        attachment.dispatcher.submit(Notification("t", "b"))
    assert attachment.detach() == []  # idempotent


def test_detach_keeps_a_shared_dispatcher_open(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = boom_and_quick(make_orchestrator)
    channel = RecordingNotifier()
    with Dispatcher([channel]) as shared:
        errors = attach(orchestrator, "errors_only", dispatcher=shared)
        quick = attach(orchestrator, "lifecycle", dispatcher=shared, agents="quick")
        assert not errors.owns_dispatcher
        run_to_end(orchestrator, "boom", "quick")
        assert errors.detach() == []
        assert quick.detach() == []
        shared.submit(Notification("still open", ""))  # not closed by detach
        assert shared.flush(10)
    assert sent_by_agent(channel) == {
        "boom": ["agent_error"],
        "quick": ["agent_started", "agent_ready", "agent_terminated"],
        None: [None],
    }


class FakeOrchestrator:
    """Only the two methods attach() uses; emit() calls the callbacks in line."""

    def __init__(self) -> None:
        self.callbacks: dict[OrchestratorEvent, list[Callable[..., object]]] = {}

    def register_event(
        self, event: OrchestratorEvent, callback: Callable[..., object]
    ) -> None:
        self.callbacks.setdefault(event, []).append(callback)

    def unregister_event(
        self, event: OrchestratorEvent, callback: Callable[..., object]
    ) -> bool:
        kept = [c for c in self.callbacks.get(event, []) if c is not callback]
        found = len(kept) != len(self.callbacks.get(event, []))
        self.callbacks[event] = kept
        return found

    def emit(self, event: OrchestratorEvent, **kwargs: Any) -> None:
        for callback in list(self.callbacks.get(event, [])):
            callback(event=event, **kwargs)


def test_detach_unregisters_every_callback() -> None:
    fake = FakeOrchestrator()
    typed: SupportsRegisterEvent = fake  # the Protocol is all attach() needs
    attachment = attach(typed, "lifecycle", RecordingNotifier())
    assert {e for e, cbs in fake.callbacks.items() if cbs} == set(
        PRESETS["lifecycle"].events
    )
    attachment.detach()
    assert all(not cbs for cbs in fake.callbacks.values())


class BlockedNotifier(RecordingNotifier):
    """Never finishes a send (until the dispatcher cancels it)."""

    async def send(self, notification: Notification) -> None:
        await asyncio.Event().wait()


def test_detach_returns_what_the_owned_dispatcher_abandoned() -> None:
    fake = FakeOrchestrator()
    attachment = attach(fake, "errors_only", BlockedNotifier(name="stuck"))
    for n in range(3):
        fake.emit(E.AGENT_ERROR, agent_name=f"a{n}", error_message="x")
    abandoned = attachment.detach(timeout=0.1)
    assert sorted(r.agent or "" for r in abandoned) == ["a0", "a1", "a2"]
    assert {r.status for r in abandoned} == {DeliveryStatus.ABANDONED}
    assert {r.channel for r in abandoned} == {"stuck"}


class SlowNotifier(RecordingNotifier):
    """Each send takes ``seconds`` (an async sleep): deliveries keep ending."""

    def __init__(self, seconds: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seconds = seconds

    async def send(self, notification: Notification) -> None:
        await asyncio.sleep(self.seconds)
        await super().send(notification)


def test_detach_function_passes_max_wait_on() -> None:
    """detach(attachment, timeout, max_wait=) is Attachment.detach's: a channel that
    keeps delivering (one alert per 0.2 s, 12 queued: >= 2.4 s) is cut off at
    max_wait instead of being waited for (default 300 s), and the rest returned."""
    fake = FakeOrchestrator()
    channel = SlowNotifier(0.2, name="slow")
    attachment = attach(fake, "errors_only", channel)
    agents = [f"a{n:02d}" for n in range(12)]
    for name in agents:
        fake.emit(E.AGENT_ERROR, agent_name=name, error_message="x")

    abandoned = detach(attachment, 0.5, max_wait=0.5)

    assert abandoned  # 0.5 s in all is not enough for 12 sends of 0.2 s
    assert {r.status for r in abandoned} == {DeliveryStatus.ABANDONED}
    assert {r.channel for r in abandoned} == {"slow"}
    sent = [n.agent for n in channel.sent]
    assert sent + [r.agent for r in abandoned] == agents  # in order, none lost


def test_events_after_detach_are_ignored_even_if_already_queued() -> None:
    fake = FakeOrchestrator()
    channel = RecordingNotifier()
    attachment = attach(fake, "errors_only", channel)
    handler = fake.callbacks[E.AGENT_ERROR][0]
    attachment.detach()
    handler(event=E.AGENT_ERROR, agent_name="late", error_message="x")  # no raise
    assert channel.sent == []


# ---------------------------------------------------------------- arguments


@pytest.fixture
def fake() -> Iterator[FakeOrchestrator]:
    yield FakeOrchestrator()


def test_unknown_preset_is_named(fake: FakeOrchestrator) -> None:
    with pytest.raises(NotifierConfigError, match="preset: unknown preset 'loud'"):
        attach(fake, "loud", RecordingNotifier())


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"events": [E.AGENT_STARTED]}, "events"),  # not in errors_only
        ({"events": ["nonsense"]}, "events"),
        ({"events": []}, "events"),
        ({"min_severity": "loud"}, "min_severity"),
        ({"agents": ""}, "agents"),
        ({"agents": []}, "agents"),
    ],
)
def test_bad_arguments_are_named(
    fake: FakeOrchestrator, kwargs: dict[str, Any], path: str
) -> None:
    with pytest.raises(NotifierConfigError) as caught:
        attach(fake, "errors_only", RecordingNotifier(), **kwargs)
    assert caught.value.errors[0][0] == path
    assert not any(fake.callbacks.values())  # nothing half-attached


def test_notifiers_or_dispatcher(fake: FakeOrchestrator) -> None:
    with pytest.raises(TypeError, match="at least one notifier"):
        attach(fake, "errors_only")
    with Dispatcher([RecordingNotifier()]) as shared:
        with pytest.raises(TypeError, match="not both"):
            attach(fake, "errors_only", RecordingNotifier(), dispatcher=shared)
        with pytest.raises(TypeError, match="policy"):
            attach(fake, "errors_only", dispatcher=shared, policy=RetryPolicy())
    assert not any(fake.callbacks.values())


def test_failed_registration_leaves_nothing_behind() -> None:
    class Refusing(FakeOrchestrator):
        def register_event(
            self, event: OrchestratorEvent, callback: Callable[..., object]
        ) -> None:
            if event is E.AGENT_TERMINATED:
                raise TypeError("no")
            super().register_event(event, callback)

    refusing = Refusing()
    with pytest.raises(TypeError, match="no"):
        attach(refusing, "lifecycle", RecordingNotifier())
    assert not any(refusing.callbacks.values())
    # the owned dispatcher was closed too (the autouse leak check would fail)


def test_repr(fake: FakeOrchestrator) -> None:
    attachment = attach(fake, "errors_only", RecordingNotifier(name="ops"))
    assert isinstance(attachment, Attachment)
    assert "'errors_only' attached" in repr(attachment)
    attachment.detach()
    assert "detached" in repr(attachment)


def test_attach_from_settings(fake: FakeOrchestrator, fake_channels: type[Any]) -> None:
    from notifiers.settings import load_settings

    settings = load_settings(
        webhook={"url": "http://127.0.0.1:9/po-settings-hook-4f1c"},
        preset="lifecycle",
        agents="web-*",
        min_severity="warning",
        retry={"max_attempts": 1},
    )
    with attach_from_settings(fake, settings) as attachment:
        assert attachment.preset.name == "lifecycle"
        assert attachment.agents == ("web-*",)
        assert attachment.min_severity is Severity.WARNING
        assert attachment.dispatcher.channels == ["webhook"]


def test_a_broken_template_fails_at_attach(fake: FakeOrchestrator) -> None:
    broken = {"agent_error": Template("{agent:d}", "")}  # 'd' on a string
    with pytest.raises(NotifierConfigError) as caught:
        attach(fake, "errors_only", RecordingNotifier(), templates=broken)
    assert caught.value.errors[0][0] == "templates.agent_error"
    assert not any(fake.callbacks.values())


def _record(event: OrchestratorEvent, severity: Severity) -> EventRecord:
    return EventRecord(1, 0.0, 0, "orchestrator", event.value, "a", severity)


@pytest.mark.parametrize(
    ("record_severity", "sent"),
    [(Severity.DEBUG, False), (Severity.INFO, False), (Severity.WARNING, True)],
)
def test_severity_comes_from_the_template_unless_the_record_says_worse(
    fake: FakeOrchestrator, record_severity: Severity, sent: bool
) -> None:
    preset = Preset("beats", (E.AGENT_HEARTBEAT,), min_severity=Severity.INFO)
    channel = RecordingNotifier()
    with attach(fake, preset, channel):
        # The heartbeat template is DEBUG; INFO is every plain event's severity.
        record = _record(E.AGENT_HEARTBEAT, record_severity)
        fake.emit(E.AGENT_HEARTBEAT, agent_name="a", record=record)
    assert len(channel.sent) == int(sent)


def test_the_typed_record_decides_not_the_keywords(fake: FakeOrchestrator) -> None:
    # The core decided (record.severity); the alert follows it, not a re-reading of
    # termination_status from the keywords.
    preset = Preset("ends", (E.AGENT_TERMINATED,), min_severity=Severity.WARNING)
    channel = RecordingNotifier()
    with attach(fake, preset, channel):
        fake.emit(
            E.AGENT_TERMINATED,
            agent_name="a",
            termination_status="success",
            record=_record(E.AGENT_TERMINATED, Severity.ERROR),
        )
    assert [n.severity for n in channel.sent] == [Severity.ERROR]


def test_the_alert_and_the_history_agree_on_a_termination_severity(
    make_orchestrator: MakeOrchestrator,
) -> None:
    # One decision (pyorchestrate.severity_of) for both: boom ended "critical" (an
    # exception), quick "success".
    orchestrator = boom_and_quick(make_orchestrator)
    channel = RecordingNotifier()
    with attach(orchestrator, "lifecycle", channel, min_severity="warning"):
        run_to_end(orchestrator, "boom", "quick")
    ended = {
        r.agent: r.severity
        for r in orchestrator.history.last(event_name="agent_terminated")
    }
    assert ended == {"boom": Severity.CRITICAL, "quick": Severity.INFO}
    assert [(n.agent, n.event, n.severity) for n in channel.sent] == [
        ("boom", "agent_error", Severity.ERROR),
        ("boom", "agent_terminated", Severity.CRITICAL),
    ]


def test_attach_from_settings_wires_state_rules_and_rate_limits(
    fake: FakeOrchestrator, fake_channels: type[Any], tmp_path: Any
) -> None:
    from notifiers.settings import load_settings

    path = tmp_path / "state" / "notify.sqlite3"
    settings = load_settings(
        webhook={"url": "http://127.0.0.1:9/po-settings-hook-4f1c"},
        state_path=str(path),
        rules={"dedup_window": 30, "recovery": True},
        rate_limiting=False,
    )
    with attach_from_settings(fake, settings) as attachment:
        assert attachment.dispatcher.state is not None
        assert path.exists()  # the write-ahead outbox, mutes and counters live here
        assert attachment.pipeline is not None
        assert attachment.pipeline.config.dedup_window == 30
        assert attachment.pipeline.config.recovery is True
        assert attachment.dispatcher.rate_limiter is None
    with attach_from_settings(
        fake,
        load_settings(
            webhook={"url": "http://127.0.0.1:9/po-settings-hook-4f1c"},
            state_path="none",
        ),
    ) as attachment:
        assert attachment.dispatcher.state is None
        assert attachment.dispatcher.rate_limiter is not None  # on by default


def test_bad_rules_in_settings_name_the_field() -> None:
    from notifiers.settings import load_settings

    with pytest.raises(NotifierConfigError) as caught:
        load_settings(
            webhook={"url": "http://127.0.0.1:9/x"}, rules={"dedup_window": -1}
        )
    assert any(loc.startswith("rules.dedup_window") for loc, _ in caught.value.errors)
