"""The Alerts page, the ``notify_*`` metrics and mute/unmute, over a real notifier
state file written by a real dispatcher (fake channels, no network)."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from notifiers import Dispatcher, Notification, RetryPolicy, TransientDeliveryError
from notifiers.state import NotifierState
from notifiers.testing import FlakyNotifier, RecordingNotifier
from notifiers.web_panel import DELIVERY_BUCKETS, NotifierPanel
from pyorchestrate.web import build_app

from .conftest import LOCAL, XSS, Fleet

TOKEN = "tok-alerts-51c9e0"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
NO_WAIT = RetryPolicy(max_attempts=2, budget=1e9, initial=0, max_wait=0)


def _notes(count: int) -> list[Notification]:
    return [
        Notification(f"alert {i}", "body", agent="worker", event="agent_error")
        for i in range(count)
    ]


def _dispatcher(path: Path | None, *channels: Any, **kwargs: Any) -> Dispatcher:
    return Dispatcher(
        list(channels),
        policy=NO_WAIT,
        rate_limits=False,
        name="web-alerts-test",
        state=path,
        **kwargs,
    )


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    """A state file a real dispatcher wrote: ``pager`` delivered 3 alerts; ``chat``
    failed the first (two attempts), parked, and left all 3 in the outbox (1
    failed, 2 pending); its error holds markup."""
    path = tmp_path / "notify.sqlite3"
    pager = RecordingNotifier(name="pager")
    chat = FlakyNotifier([TransientDeliveryError(f"down {XSS}")] * 100, name="chat")
    dispatcher = _dispatcher(path, pager, chat, outbox_retry=3600.0)
    try:
        for note in _notes(3):
            dispatcher.submit(note)
        pager.wait_for(3)
        assert dispatcher.flush(10)
    finally:
        dispatcher.close()
    return path


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyorchestrate", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _samples(
    client: TestClient,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.fixture
def alerts(fleet: Fleet, state_file: Path) -> Iterator[TestClient]:
    app = build_app(socket_path=fleet.socket, notify_state=str(state_file))
    with TestClient(app, base_url=LOCAL) as client:
        yield client


@pytest.fixture
def operator(fleet: Fleet, state_file: Path) -> Iterator[TestClient]:
    app = build_app(
        socket_path=fleet.socket,
        notify_state=str(state_file),
        token=TOKEN,
        permissions="operator",
        actor="alice",
    )
    with TestClient(app, base_url=LOCAL) as client:
        yield client


def test_the_page_shows_counts_outbox_and_mutes_from_the_state_file(
    alerts: TestClient, state_file: Path
) -> None:
    muted = _cli(
        "notify",
        "mute",
        "--agent",
        "db-*",
        "--for",
        "2h",
        "--reason",
        "maintenance",
        "--state-path",
        str(state_file),
    )
    assert muted.returncode == 0, muted.stderr
    page = alerts.get("/alerts")
    assert page.status_code == 200
    html = page.text
    assert '<tr data-channel="pager">' in html
    assert '<td data-count="sent">3</td>' in html
    chat = html[html.index('<tr data-channel="chat">') :]
    assert '<td data-count="failed" class="error">1</td>' in chat
    assert '<td data-count="retried">1</td>' in chat
    assert '<td data-count="outbox">2 pending, 1 failed, 0 dead</td>' in chat
    assert '<tr data-kind="agent" data-value="db-*">' in html
    assert "maintenance" in html
    assert "alert 0" in html  # the outbox rows
    # Markup in a stored error is text, never markup.
    assert XSS not in html
    assert "down &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "mute-form" not in html  # read_only: no buttons

    data = alerts.get("/api/alerts").json()
    by_name = {c["channel"]: c for c in data["channels"]}
    assert by_name["pager"]["sent"] == 3
    assert by_name["chat"]["failed"] == 1
    assert sum(by_name["chat"]["outbox"].values()) == 3
    assert data["outbox_total"] == 3
    assert [(m["kind"], m["value"]) for m in data["mutes"]] == [("agent", "db-*")]


def test_the_notify_metrics_are_scraped_with_every_label_set(
    alerts: TestClient,
) -> None:
    found = _samples(alerts)
    assert found[("pyorchestrate_web_panel_up", (("panel", "alerts"),))] == 1
    assert found[("notify_sent_total", (("channel", "pager"),))] == 3
    assert found[("notify_sent_total", (("channel", "chat"),))] == 0
    assert found[("notify_failed_total", (("channel", "chat"),))] == 1
    assert found[("notify_failed_total", (("channel", "pager"),))] == 0
    assert found[("notify_retries_total", (("channel", "chat"),))] == 1
    assert found[("notify_dropped_total", (("channel", "pager"),))] == 0
    assert found[("notify_outbox_pending", (("channel", "chat"),))] == 3
    assert found[("notify_outbox_pending", (("channel", "pager"),))] == 0
    assert found[("notify_mutes", ())] == 0


def test_a_configured_channel_has_its_series_before_anything_happened(
    fleet: Fleet, tmp_path: Path
) -> None:
    """A channel in the settings that never sent: its counters exist at 0, so an
    ``increase()`` rule fires on its first failure; no file yet is not an error."""
    settings = tmp_path / "notify.toml"
    settings.write_text(
        f'state_path = "{tmp_path / "later.sqlite3"}"\n'
        "[webhook]\n"
        'url = "http://127.0.0.1:9/hook/s3cr3t-path-token"\n'
    )
    app = build_app(socket_path=fleet.socket, notify_config=str(settings))
    with TestClient(app, base_url=LOCAL) as client:
        found = _samples(client)
        assert found[("notify_failed_total", (("channel", "webhook"),))] == 0
        assert found[("notify_sent_total", (("channel", "webhook"),))] == 0
        assert found[("notify_delivery_seconds_count", (("channel", "webhook"),))] == 0
        assert (
            found[
                (
                    "notify_delivery_seconds_bucket",
                    (("channel", "webhook"), ("le", "+Inf")),
                )
            ]
            == 0
        )
        page = client.get("/alerts")
        assert page.status_code == 200
        assert "no state file at" in page.text
        for text in (
            page.text,
            client.get("/metrics").text,
            client.get("/api/alerts").text,
        ):
            assert "s3cr3t" not in text
    assert not (tmp_path / "later.sqlite3").exists()  # never created just to read


def test_the_settings_secrets_are_masked_in_what_the_state_file_holds(
    fleet: Fleet, tmp_path: Path
) -> None:
    """A second net: an error stored with a secret in it (by a process that did not
    know it) is masked with the secrets of ``--notify-config``'s settings."""
    secret = f"hook-{uuid.uuid4().hex}"  # never registered in this process before
    path = tmp_path / "notify.sqlite3"
    with NotifierState(path) as state:
        state.save_stats(
            {"webhook": {"failed": 1, "last_error": f"POST /{secret} refused"}}
        )
        state.mute("agent", "worker", duration=600, reason=f"see /{secret}")
    settings = tmp_path / "notify.toml"
    settings.write_text(
        f'state_path = "{path}"\n[webhook]\nurl = "json://127.0.0.1:9/{secret}"\n'
    )
    app = build_app(socket_path=fleet.socket, notify_config=str(settings))
    with TestClient(app, base_url=LOCAL) as client:
        page = client.get("/alerts").text
        # Masked: how much of it depends on the secrets this process registered
        # before (the mask is process-wide), so look for the mask, not its span.
        assert re.search(r"POST [^<]*\*\*\*[^<]* refused", page), page
        for text in (page, client.get("/api/alerts").text, client.get("/metrics").text):
            assert secret not in text


def test_delivery_times_come_from_a_dispatcher_of_this_process(
    fleet: Fleet, tmp_path: Path
) -> None:
    pager = RecordingNotifier(name="pager")
    dispatcher = _dispatcher(tmp_path / "live.sqlite3", pager)
    try:
        panel = NotifierPanel(dispatcher=dispatcher)
        app = build_app(socket_path=fleet.socket, alerts=panel)
        with TestClient(app, base_url=LOCAL) as client:
            before = _samples(client)
            assert (
                before[("notify_delivery_seconds_count", (("channel", "pager"),))] == 0
            )
            for note in _notes(4):
                dispatcher.submit(note)
            pager.wait_for(4)
            assert dispatcher.flush(10)
            found = _samples(client)
        panel.close()
    finally:
        dispatcher.close()
    assert found[("notify_sent_total", (("channel", "pager"),))] == 4  # live
    assert found[("notify_delivery_seconds_count", (("channel", "pager"),))] == 4
    assert (
        found[
            ("notify_delivery_seconds_bucket", (("channel", "pager"), ("le", "+Inf")))
        ]
        == 4
    )


def _histogram(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], channel: str
) -> tuple[list[tuple[float, float]], float, float]:
    """``notify_delivery_seconds`` of ``channel``: its buckets (by bound, +Inf
    last), count and sum, as scraped."""
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for (name, labels), value in found.items()
        if name == "notify_delivery_seconds_bucket"
        and dict(labels)["channel"] == channel
    )
    key = (("channel", channel),)
    return (
        buckets,
        found[("notify_delivery_seconds_count", key)],
        found[("notify_delivery_seconds_sum", key)],
    )


def test_delivery_times_reach_a_dashboard_in_another_process(
    fleet: Fleet, tmp_path: Path
) -> None:
    """A dispatcher delivers and closes; a dashboard over its state file alone has
    each channel's ``notify_delivery_seconds`` (a failed delivery counts too)."""
    path = tmp_path / "notify.sqlite3"
    pager = RecordingNotifier(name="pager")
    slow = RecordingNotifier(name="slow", delay=0.35)
    chat = FlakyNotifier([TransientDeliveryError("down")] * 100, name="chat")
    dispatcher = _dispatcher(path, pager, slow, chat, outbox_retry=3600.0)
    try:
        for note in _notes(5):
            dispatcher.submit(note)
        pager.wait_for(5)
        slow.wait_for(5)
        assert dispatcher.flush(30)
    finally:
        dispatcher.close()
    app = build_app(socket_path=fleet.socket, notify_state=str(path))
    with TestClient(app, base_url=LOCAL) as client:
        found = _samples(client)
    for channel, count in (("pager", 5), ("slow", 5), ("chat", 1)):
        buckets, total, seconds = _histogram(found, channel)
        assert total == count, channel
        assert [b for b, _ in buckets] == [*DELIVERY_BUCKETS, float("inf")]
        assert buckets[-1][1] == total  # +Inf is the count
        counts = [n for _, n in buckets]
        assert counts == sorted(counts), (channel, counts)  # cumulative
        assert seconds >= 0
    # Each of slow's deliveries took at least 0.35 s: none at or under 0.25 s.
    buckets, _, seconds = _histogram(found, "slow")
    assert dict(buckets)[0.25] == 0
    assert seconds >= 5 * 0.3


def test_a_state_file_of_an_older_version_shows_delivery_times_at_0(
    fleet: Fleet, tmp_path: Path
) -> None:
    """A version-1 file whose stats row was saved without delivery times opens, and
    its channel's histogram is there at 0; a dispatcher that runs on it adds them."""
    path = tmp_path / "old.sqlite3"
    with NotifierState(path) as state:
        state.save_stats({"pager": {"sent": 7, "failed": 0}})
    conn = sqlite3.connect(path)
    for table in ("secrets", "chat_alerts", "escalations"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    app = build_app(socket_path=fleet.socket, notify_state=str(path))
    with TestClient(app, base_url=LOCAL) as client:
        found = _samples(client)
    assert found[("notify_sent_total", (("channel", "pager"),))] == 7
    buckets, count, seconds = _histogram(found, "pager")
    assert (count, seconds) == (0, 0)
    assert [n for _, n in buckets] == [0] * (len(DELIVERY_BUCKETS) + 1)

    pager = RecordingNotifier(name="pager")
    dispatcher = _dispatcher(path, pager)
    try:
        for note in _notes(2):
            dispatcher.submit(note)
        pager.wait_for(2)
        assert dispatcher.flush(10)
    finally:
        dispatcher.close()
    with TestClient(
        build_app(socket_path=fleet.socket, notify_state=str(path)), base_url=LOCAL
    ) as client:
        found = _samples(client)
    buckets, count, _ = _histogram(found, "pager")
    assert count == 2 == buckets[-1][1]


def test_a_mute_from_the_page_shows_in_notify_mutes(
    operator: TestClient, state_file: Path
) -> None:
    assert 'id="mute-form"' in operator.get("/alerts").text
    assert 'data-alert-action="mute"' in operator.get("/agents/worker").text
    response = operator.post(
        "/api/alerts/mute",
        headers=BEARER,
        json={"kind": "agent", "value": "worker", "seconds": 3600, "reason": "deploy"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["mute"]["value"] == "worker"
    listed = _cli("notify", "mutes", "--json", "--state-path", str(state_file))
    assert listed.returncode == 0, listed.stderr
    mutes = json.loads(listed.stdout)
    assert [(m["kind"], m["value"]) for m in mutes] == [("agent", "worker")]
    assert mutes[0]["reason"] == "deploy (by alice@testclient)"
    assert 'data-value="worker"' in operator.get("/alerts").text
    agent_page = operator.get("/agents/worker").text
    assert 'data-alert-action="unmute"' in agent_page
    assert "alerts muted until" in agent_page

    ended = operator.post(
        "/api/alerts/unmute", headers=BEARER, json={"kind": "agent", "value": "worker"}
    )
    assert ended.status_code == 200, ended.text
    listed = _cli("notify", "mutes", "--json", "--state-path", str(state_file))
    assert json.loads(listed.stdout) == []
    again = operator.post(
        "/api/alerts/unmute", headers=BEARER, json={"kind": "agent", "value": "worker"}
    )
    assert again.status_code == 404
    assert response.json()["recorded"] is True
    assert ended.json()["recorded"] is True
    history = operator.get(
        "/api/history", params={"event_type": "operator_action"}
    ).json()["events"]
    assert [(e["agent"], e["data"]["action"]) for e in history] == [
        ("worker", "mute"),
        ("worker", "unmute"),
    ]
    for event in history:
        assert event["data"]["source"] == "web"
        assert event["data"]["actor"] == "alice@testclient"
        assert (event["data"]["kind"], event["data"]["value"]) == ("agent", "worker")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "planet", "value": "x", "seconds": 60}, "kind"),
        ({"kind": "agent", "value": "", "seconds": 60}, "value"),
        ({"kind": "agent", "value": "x", "seconds": 0}, "seconds"),
        ({"kind": "agent", "value": "x"}, "seconds"),
        ({"kind": "agent", "value": "x", "seconds": 60, "extra": 1}, "extra"),
    ],
)
def test_a_bad_mute_is_422_naming_the_field(
    operator: TestClient, state_file: Path, body: dict[str, Any], field: str
) -> None:
    response = operator.post("/api/alerts/mute", headers=BEARER, json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


def test_read_only_cannot_mute_and_no_token_is_401(
    fleet: Fleet, state_file: Path, operator: TestClient
) -> None:
    body = {"kind": "agent", "value": "worker", "seconds": 60}
    app = build_app(socket_path=fleet.socket, notify_state=str(state_file), token=TOKEN)
    with TestClient(app, base_url=LOCAL) as read_only:
        refused = read_only.post("/api/alerts/mute", headers=BEARER, json=body)
        assert refused.status_code == 403
        assert "'read_only' preset does not allow 'mute'" in refused.json()["detail"]
        assert "mute-form" not in read_only.get("/alerts").text
        assert "data-alert-action" not in read_only.get("/agents/worker").text
    anonymous = operator.post("/api/alerts/mute", json=body)
    assert anonymous.status_code == 401
    wrong = operator.post(
        "/api/alerts/mute", headers={"Authorization": "Bearer nope"}, json=body
    )
    assert wrong.status_code == 401
    listed = _cli("notify", "mutes", "--json", "--state-path", str(state_file))
    assert json.loads(listed.stdout) == []


def test_without_a_state_the_page_says_how_and_the_api_is_404(
    api: TestClient,
) -> None:
    page = api.get("/alerts")
    assert page.status_code == 404
    assert "--notify-state" in page.text
    assert api.get("/api/alerts").json()["error"] == "alerts_off"
    assert "notify_sent_total" not in api.get("/metrics").text


def test_a_broken_state_file_is_a_clear_503_and_metrics_go_on(
    fleet: Fleet, tmp_path: Path
) -> None:
    broken = tmp_path / "notify.sqlite3"
    broken.write_bytes(b"this is not a database, just some bytes " * 100)
    app = build_app(socket_path=fleet.socket, notify_state=str(broken))
    with TestClient(app, base_url=LOCAL) as client:
        page = client.get("/alerts")
        assert page.status_code == 503
        assert "cannot read the notifier state: DatabaseError" in page.text
        api = client.get("/api/alerts")
        assert api.status_code == 503
        assert api.json()["error"] == "alerts_unavailable"
        found = _samples(client)
        assert found[("pyorchestrate_web_panel_up", (("panel", "alerts"),))] == 0
        assert found[("pyorchestrate_orchestrator_up", ())] == 1
        assert client.get("/agents/worker").status_code == 200


def test_a_mute_is_kept_when_the_orchestrator_cannot_record_it(
    short_tmp: Path, state_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The mute is the notifier's: it holds even when the orchestrator does not
    answer; the answer and the log say it was not recorded."""
    app = build_app(
        socket_path=str(short_tmp / "gone.sock"),
        notify_state=str(state_file),
        token=TOKEN,
        permissions="operator",
    )
    with TestClient(app, base_url=LOCAL) as client:
        response = client.post(
            "/api/alerts/mute",
            headers=BEARER,
            json={"kind": "channel", "value": "chat", "seconds": 60},
        )
    assert response.status_code == 200, response.text
    assert response.json()["recorded"] is False
    assert "gone.sock" in response.json()["record_error"]
    assert "done but not recorded in the history" in caplog.text
    listed = _cli("notify", "mutes", "--json", "--state-path", str(state_file))
    assert [(m["kind"], m["value"]) for m in json.loads(listed.stdout)] == [
        ("channel", "chat")
    ]
