"""Actions through the dashboard: Bearer token, permission preset, the same
command layer as the CLI."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from pyorchestrate.testing import wait_until
from pyorchestrate.web import build_app

from .conftest import LOCAL, Fleet

TOKEN = "tok-9f2c7e1d5a"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def operator(fleet: Fleet) -> Iterator[TestClient]:
    app = build_app(socket_path=fleet.socket, token=TOKEN, permissions="operator")
    with TestClient(app, base_url=LOCAL) as client:
        yield client


def test_actions_are_off_without_a_token(api: TestClient) -> None:
    response = api.post("/api/agents/worker/restart", headers=BEARER)
    assert response.status_code == 403
    assert response.json()["error"] == "actions_off"


@pytest.mark.parametrize(
    ("headers", "params", "cookies"),
    [
        ({}, {}, {}),
        ({"Authorization": "Bearer wrong"}, {}, {}),
        ({"Authorization": TOKEN}, {}, {}),  # no scheme
        ({"Authorization": f"Basic {TOKEN}"}, {}, {}),
        ({}, {"token": TOKEN}, {}),  # never from the URL
        ({}, {}, {"token": TOKEN}),  # nor from a cookie
    ],
    ids=["none", "wrong", "no-scheme", "basic", "in-url", "in-cookie"],
)
def test_a_request_without_the_token_is_401(
    fleet: Fleet,
    operator: TestClient,
    headers: dict[str, str],
    params: dict[str, str],
    cookies: dict[str, str],
) -> None:
    operator.cookies.update(cookies)
    before = fleet.orchestrator.agent_status("worker")["generation_id"]
    response = operator.post(
        "/api/agents/worker/restart", headers=headers, params=params
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert fleet.orchestrator.agent_status("worker")["generation_id"] == before


def test_the_read_only_preset_refuses_even_with_the_token(fleet: Fleet) -> None:
    app = build_app(socket_path=fleet.socket, token=TOKEN)
    with TestClient(app, base_url=LOCAL) as client:
        response = client.post("/api/agents/worker/stop", headers=BEARER)
        assert response.status_code == 403
        assert "'read_only' preset does not allow 'stop'" in response.json()["detail"]
        assert "data-action=" not in client.get("/agents/worker").text
    assert fleet.state("worker") == "READY"


def test_the_operator_restarts_stops_and_starts(
    fleet: Fleet, operator: TestClient
) -> None:
    before = fleet.orchestrator.agent_status("worker")["generation_id"]
    response = operator.post("/api/agents/worker/restart", headers=BEARER)
    assert response.status_code == 200, response.text
    assert response.json()["action"] == "restart"
    assert wait_until(
        lambda: fleet.orchestrator.agent_status("worker")["generation_id"] > before, 10
    )
    fleet.wait_state("worker", "READY")
    assert operator.post("/api/agents/worker/stop", headers=BEARER).status_code == 200
    fleet.wait_state("worker", "TERMINATED")
    assert operator.post("/api/agents/worker/start", headers=BEARER).status_code == 200
    fleet.wait_state("worker", "READY")
    missing = operator.post("/api/agents/nobody/restart", headers=BEARER)
    assert missing.status_code == 404
    unknown = operator.post("/api/agents/worker/explode", headers=BEARER)
    assert unknown.status_code == 404
    assert operator.get("/api/agents/worker/restart").status_code in (404, 405)


def test_the_agent_page_shows_the_buttons_and_never_the_token(
    operator: TestClient,
) -> None:
    page = operator.get("/agents/worker").text
    for action in ("start", "stop", "restart"):
        assert f'data-action="{action}"' in page
    for path in ("/", "/events", "/agents/worker", "/api/agents/worker", "/metrics"):
        assert TOKEN not in operator.get(path).text, path


def test_an_action_is_recorded_in_the_history_with_source_web(
    fleet: Fleet, operator: TestClient
) -> None:
    assert (
        operator.post("/api/agents/worker/restart", headers=BEARER).status_code == 200
    )
    refused = operator.post("/api/agents/nobody/stop", headers=BEARER)
    assert refused.status_code == 404
    history = operator.get(
        "/api/history", params={"event_type": "operator_action"}
    ).json()["events"]
    actions = [(e["agent"], e["data"]) for e in history]
    assert [(agent, data["action"], data["ok"]) for agent, data in actions] == [
        ("worker", "restart", "True"),  # the history keeps data as text
        (None, "stop", "False"),
    ]
    for _, data in actions:
        assert data["source"] == "web"
        assert data["actor"] == "token@testclient"  # the TestClient's address
    # The CLI's history shows the same.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pyorchestrate",
            "history",
            "--json",
            "--socket",
            fleet.socket,
            "--event",
            "operator_action",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"source": "web"' in result.stdout.replace('":"', '": "')
