"""The server-rendered pages (TestClient against a real orchestrator)."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.testclient import TestClient

from pyorchestrate import Orchestrator
from pyorchestrate.web import build_app
from pyorchestrate.web._pages import build_runs
from tests.agents import agent

from .conftest import LOCAL, XSS, MakeFleet


def test_the_overview_lists_the_agents_with_their_state(api: TestClient) -> None:
    response = api.get("/")
    assert response.status_code == 200
    html = response.text
    assert '<tr data-agent="worker">' in html
    assert 'class="state state-READY">READY<' in html
    assert 'class="state state-TERMINATED">TERMINATED<' in html
    assert "ValueError: boom" in html
    assert 'data-stream="/api/stream"' in html


def test_assets_come_from_the_package_and_nothing_from_elsewhere(
    api: TestClient,
) -> None:
    html = api.get("/").text
    for asset in ("/static/style.css", "/static/app.js"):
        assert asset in html
        response = api.get(asset)
        assert response.status_code == 200
        assert len(response.content) > 1000
    pages = [html, api.get("/events").text, api.get("/agents/worker").text]
    for page in pages:
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)


def test_markup_in_names_and_errors_renders_as_text(make_fleet: MakeFleet) -> None:
    def register(orchestrator: Orchestrator) -> None:
        orchestrator.register_agent(agent("forever", "thread"), XSS)
        orchestrator.register_agent(agent("boom", "thread"), "<b>bold</b>")

    fleet = make_fleet(register)
    fleet.wait_state(XSS, "READY")
    fleet.wait_state("<b>bold</b>", "TERMINATED")
    with TestClient(base_url=LOCAL, app=build_app(socket_path=fleet.socket)) as client:
        pages = [
            client.get("/").text,
            client.get("/events", params={"severity": "DEBUG"}).text,
            client.get(f"/agents/{XSS}").text,
        ]
    for html in pages:
        assert "<script>alert(1)</script>" not in html
        assert "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0]
    assert "&lt;b&gt;bold&lt;/b&gt;" in pages[0]
    assert 'data-agent="&lt;script&gt;alert(1)&lt;/script&gt;"' in pages[2]


def test_the_agent_page(api: TestClient) -> None:
    html = api.get("/agents/boom").text
    assert 'id="agent-state" class="state state-TERMINATED"' in html
    assert "ValueError: boom" in html
    assert "agent_error" in html  # its history
    assert 'class="run run-failed"' in html  # the timeline
    assert "Restart policy" in html
    assert 'data-stream="/api/stream?agent=boom"' in html
    assert "data-action=" not in html  # no token: no action button
    missing = api.get("/agents/nobody")
    assert missing.status_code == 404


def test_the_events_page_filters(api: TestClient) -> None:
    html = api.get("/events", params={"agent": "boom", "severity": "ERROR"}).text
    rows = re.findall(r'<tr class="sev-(\w+)">', html)
    assert rows and set(rows) <= {"ERROR", "CRITICAL"}
    assert "<td>worker</td>" not in html
    everything = api.get("/events", params={"agent": "", "event_type": ""})
    assert everything.status_code == 200
    assert "<td>worker</td>" in everything.text
    bad = api.get("/events", params={"severity": "LOUD"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "severity"]


def test_a_page_without_an_orchestrator_says_disconnected(short_tmp: Path) -> None:
    with TestClient(
        base_url=LOCAL, app=build_app(socket_path=str(short_tmp / "none.sock"))
    ) as client:
        for path in ("/", "/events", "/agents/x"):
            response = client.get(path)
            assert response.status_code == 503, path
            assert 'class="connection disconnected"' in response.text
            assert "Reconnecting by itself" in response.text


def test_runs_are_built_from_the_events() -> None:
    events = [
        {"event_name": "agent_started", "timestamp": "t1"},
        {
            "event_name": "agent_terminated",
            "timestamp": "t2",
            "severity": "ERROR",
            "data": {"exit_code": "1"},
        },
        {"event_name": "agent_started", "timestamp": "t3"},
        {
            "event_name": "agent_terminated",
            "timestamp": "t4",
            "severity": "ERROR",
            "data": {"exit_code": "-9", "signal": "SIGKILL"},
        },
        {"event_name": "agent_started", "timestamp": "t5"},
    ]
    assert [(run["started"], run["outcome"]) for run in build_runs(events)] == [
        ("t5", "running"),
        ("t3", "killed"),
        ("t1", "failed"),
    ]
