"""An AGENT_ERROR alert an on-call engineer can act on: which orchestrator and host,
how the agent ended (the real exit code), the exception, the last traceback frames
(``file:line in function``) as a code block escaped for the channel, and the command
that shows more. Real orchestrators, the fake Bot API and aiosmtpd on 127.0.0.1."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest

from notifiers import AppriseNotifier, TelegramNotifier, attach
from notifiers.base import Notification, TextFormat
from notifiers.presets import Attachment
from notifiers.templates import MAX_FRAMES, format_text, plain_text, render
from notifiers.testing import (
    FakeTelegramServer,
    LocalSMTPServer,
    RecordingNotifier,
    WebhookSink,
)
from pyorchestrate import (
    OneShotProcessAgent,
    OneShotThreadAgent,
    Orchestrator,
    OrchestratorEvent,
)

HOST = socket.gethostname()


def innermost_step(path: str) -> None:
    if path:
        raise ValueError(f"disk {path} is full: <quota> & more")


def middle_step() -> None:
    innermost_step("/data")


class Crasher(OneShotThreadAgent):
    def task(self) -> None:
        middle_step()


class ProcessCrasher(OneShotProcessAgent):
    def task(self) -> None:
        middle_step()


def _last_frame() -> str:
    line = innermost_step.__code__.co_firstlineno + 2
    return f"{__file__}:{line} in innermost_step"


def test_telegram_alert_names_the_orchestrator_and_shows_the_last_frame_as_pre(
    fake_telegram: FakeTelegramServer,
    make_orchestrator: Callable[..., Orchestrator],
) -> None:
    orchestrator = make_orchestrator("billing-prod")
    orchestrator.register_agent(Crasher, "crasher")
    channel = TelegramNotifier("123:abc", chat_id=42, base_url=fake_telegram.base_url)
    alerts = attach(orchestrator, "errors_only", channel, rules=False)
    orchestrator.start()
    orchestrator.join()
    [message] = fake_telegram.wait_for(1)
    alerts.detach()
    text = message["text"]
    assert message["parse_mode"] == "HTML"
    assert "orchestrator billing-prod" in text
    assert f"host {HOST}" in text
    assert "ValueError: disk /data is full: &lt;quota&gt; &amp; more" in text
    # The traceback is a <pre> block, its last frame in it, its source line escaped.
    pre = re.search(r"<pre>(.*?)</pre>", text, re.S)
    assert pre is not None
    frames = pre.group(1)
    assert frames.rstrip().splitlines()[-2] == _last_frame()
    assert 'raise ValueError(f"disk {path} is full: &lt;quota&gt; &amp; more")' in (
        frames
    )
    assert "<quota>" not in text
    assert "more: pyorchestrate status crasher --name billing-prod" in text
    # A thread has no exit code: the alert does not pretend to have one.
    assert "reason: exception, no exit code (a thread), start #1" in text
    assert "exit code -" not in text


def test_a_process_agent_that_exits_1_says_exit_code_1(
    fake_telegram: FakeTelegramServer,
    make_orchestrator: Callable[..., Orchestrator],
) -> None:
    orchestrator = make_orchestrator("batch")
    orchestrator.register_agent(ProcessCrasher, "etl")
    channel = TelegramNotifier("123:abc", chat_id=42, base_url=fake_telegram.base_url)
    alerts = attach(orchestrator, "errors_only", channel, rules=False)
    orchestrator.start()
    orchestrator.join()
    [message] = fake_telegram.wait_for(1)
    alerts.detach()
    text = message["text"]
    assert "reason: exception, exit code 1, start #1" in text
    assert "exit code -" not in text
    assert _last_frame() in text
    assert "orchestrator batch" in text


def test_email_carries_the_same_facts_in_plain_text(
    smtp_server: LocalSMTPServer,
    make_orchestrator: Callable[..., Orchestrator],
) -> None:
    orchestrator = make_orchestrator("billing-prod")
    orchestrator.register_agent(Crasher, "crasher")
    channel = AppriseNotifier(smtp_server.url(), name="email")
    alerts = attach(orchestrator, "errors_only", channel, rules=False)
    orchestrator.start()
    orchestrator.join()
    [mail] = smtp_server.wait_for(1)
    alerts.detach()
    body = mail.text
    assert "orchestrator billing-prod" in body
    assert _last_frame() in body
    assert "ValueError: disk /data is full: <quota> & more" in body
    assert "more: pyorchestrate status crasher --name billing-prod" in body
    assert "```" not in body and "<pre>" not in body


def _long_traceback(frames: int) -> str:
    lines = ["Traceback (most recent call last):"]
    for i in range(frames):
        lines.append(f'  File "/srv/app/module_{i}.py", line {i + 1}, in f{i}')
        lines.append(f"    step_{i}(a < b and c & d, '{'x' * 60}')")
    lines.append("RuntimeError: deep")
    return "\n".join(lines) + "\n"


def test_render_keeps_the_last_frames_of_a_long_traceback() -> None:
    notification = render(
        {
            "event": "agent_error",
            "agent_name": "deep",
            "error_message": "RuntimeError: deep",
            "traceback": _long_traceback(400),
        }
    )
    body = notification.body
    assert body.count(" in f") == MAX_FRAMES
    assert "/srv/app/module_399.py:400 in f399\n    step_399(" in body
    assert "/srv/app/module_387.py" not in body


def test_a_long_traceback_is_cut_at_a_frame_boundary_within_the_limit() -> None:
    frames = "\n".join(
        f"/srv/app/module_{i}.py:{i + 1} in f{i}\n    step_{i}(a < b & c, '{'x' * 40}')"
        for i in range(400)
    )
    body = f"RuntimeError: deep\n```\n{frames}\n```\nmore: pyorchestrate status deep"
    for limit in (4096, 1500, 900):
        text = format_text(Notification("✖ deep failed", body), TextFormat.HTML, limit)
        assert len(text) <= limit
        assert text.endswith("</pre>\nmore: pyorchestrate status deep")
        pre = re.search(r"<pre>(.*?)</pre>", text, re.S)
        assert pre is not None
        kept = pre.group(1).split("\n")
        assert re.fullmatch(r"… \d+ earlier line\(s\) cut", kept[0])
        # Every frame kept is whole: its "file:line in function" and its source.
        assert len(kept) % 2 == 1
        for head, source in zip(kept[1::2], kept[2::2], strict=True):
            assert re.fullmatch(r"/srv/app/module_\d+\.py:\d+ in f\d+", head)
            assert (source.startswith("    step_") and source.endswith("&#x27;)")) or (
                source.endswith("')")
            )
            assert "&lt;" in source and "&amp;" in source
        assert kept[-2] == "/srv/app/module_399.py:400 in f399"
        # As many frames as fit: one more would not.
        dropped = int(kept[0].split()[1])
        assert dropped < 400


def test_plain_text_drops_the_fences_and_keeps_the_frames() -> None:
    body = "boom\n```\n/a.py:1 in f\n    x()\n```\nmore: pyorchestrate status a"
    assert (
        plain_text(body) == "boom\n/a.py:1 in f\n    x()\nmore: pyorchestrate status a"
    )
    assert format_text(Notification("t", body), TextFormat.MARKDOWN_V2) == (
        "*t*\nboom\n```\n/a.py:1 in f\n    x()\n```\nmore: pyorchestrate status a"
    )


def test_a_json_webhook_carries_the_same_facts_in_plain_text(
    webhook_sink: WebhookSink,
    make_orchestrator: Callable[..., Orchestrator],
) -> None:
    orchestrator = make_orchestrator("billing-prod")
    orchestrator.register_agent(Crasher, "crasher")
    channel = AppriseNotifier(webhook_sink.json_url("/alerts"), name="webhook")
    alerts = attach(orchestrator, "errors_only", channel, rules=False)
    orchestrator.start()
    orchestrator.join()
    [request] = webhook_sink.wait_for(1)
    alerts.detach()
    message = request.json["message"]
    assert request.json["title"] == "✖ crasher failed"
    assert "orchestrator billing-prod" in message
    assert f"host {HOST}" in message
    assert _last_frame() in message
    assert "ValueError: disk /data is full: <quota> & more" in message
    assert "more: pyorchestrate status crasher --name billing-prod" in message
    assert "```" not in message


def test_slack_gets_the_traceback_as_a_code_block(
    webhook_sink: WebhookSink,
    make_orchestrator: Callable[..., Orchestrator],
) -> None:
    orchestrator = make_orchestrator("billing-prod")
    orchestrator.register_agent(Crasher, "crasher")
    channel = AppriseNotifier(
        "slack://T1ABCDEFG/B2ABCDEFG/abcdefghijklmnopqrstuvwx",
        name="slack",
        slack_webhook_base=webhook_sink.slack_base,
    )
    alerts = attach(orchestrator, "errors_only", channel, rules=False)
    orchestrator.start()
    orchestrator.join()
    [request] = webhook_sink.wait_for(1)
    alerts.detach()
    text = request.json["attachments"][0]["text"]
    block = re.search(r"```\n(.*?)\n```", text, re.S)
    assert block is not None
    assert _last_frame() in block.group(1)
    # Slack's own escaping of its three specials, done by apprise.
    assert "&lt;quota&gt; &amp; more" in text
    assert "orchestrator billing-prod" in text


class _Emitter:
    """register_event/unregister_event, and emit() calling the callbacks in line
    (a process agent whose process never ends, which no real agent does on cue)."""

    name = "edge"

    def __init__(self) -> None:
        self.callbacks: dict[OrchestratorEvent, list[Callable[..., object]]] = {}

    def register_event(
        self, event: OrchestratorEvent, callback: Callable[..., object]
    ) -> None:
        self.callbacks.setdefault(event, []).append(callback)

    def unregister_event(
        self, event: OrchestratorEvent, callback: Callable[..., object]
    ) -> bool:
        self.callbacks[event].remove(callback)
        return True

    def emit(self, event: OrchestratorEvent, **kwargs: Any) -> None:
        for callback in list(self.callbacks.get(event, [])):
            callback(event=event, **kwargs)


_ERROR = {
    "agent_name": "stuck",
    "generation_id": 1,
    "pid": 999_999_999,  # not ours: a process agent
    "error_message": "OSError: gone",
    "reason": "exception",
}


def test_an_error_whose_process_does_not_end_is_sent_after_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Attachment, "EXIT_WAIT", 0.05)
    orchestrator = _Emitter()
    channel = RecordingNotifier()
    alerts = attach(orchestrator, "errors_only", channel, rules=False)
    orchestrator.emit(OrchestratorEvent.AGENT_ERROR, **_ERROR)
    [sent] = channel.wait_for(1)
    alerts.detach()
    assert "reason: exception, exit code unknown, start #1" in sent.body
    assert "orchestrator edge" in sent.body
    assert not [t for t in threading.enumerate() if t.name.startswith("notifiers-exit")]


def test_an_error_still_waiting_at_detach_is_sent_then() -> None:
    orchestrator = _Emitter()
    channel = RecordingNotifier()
    alerts = attach(orchestrator, "errors_only", channel, rules=False)
    orchestrator.emit(OrchestratorEvent.AGENT_ERROR, **_ERROR)
    assert channel.sent == []  # waiting for the end (EXIT_WAIT is 5 s)
    alerts.detach()
    [sent] = channel.sent
    assert "exit code unknown" in sent.body
    assert not [t for t in threading.enumerate() if t.name.startswith("notifiers-exit")]


def test_the_end_event_gives_the_held_error_its_signal() -> None:
    orchestrator = _Emitter()
    channel = RecordingNotifier()
    alerts = attach(orchestrator, "errors_only", channel, rules=False)
    orchestrator.emit(OrchestratorEvent.AGENT_ERROR, **_ERROR)
    orchestrator.emit(
        OrchestratorEvent.AGENT_TERMINATED,
        agent_name="stuck",
        generation_id=1,
        pid=999_999_999,
        exit_code=-9,
        signal="SIGKILL",
    )
    [sent] = channel.wait_for(1)
    alerts.detach()
    assert "reason: exception, signal SIGKILL, start #1" in sent.body
    assert not [t for t in threading.enumerate() if t.name.startswith("notifiers-exit")]
