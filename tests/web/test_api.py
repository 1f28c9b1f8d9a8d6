"""The JSON API against a real orchestrator over its real socket."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from pyorchestrate.web import build_app
from pyorchestrate.web._api import mask_secrets

from .conftest import LOCAL, XSS, Fleet, MakeFleet


def test_agents_lists_every_agent_with_its_state(api: TestClient) -> None:
    response = api.get("/api/agents")
    assert response.status_code == 200
    rows = {row["name"]: row for row in response.json()["agents"]}
    assert rows["worker"]["lifecycle_state"] == "READY"
    assert rows["boom"]["lifecycle_state"] == "TERMINATED"
    assert "ValueError: boom" in rows["boom"]["last_error"]


def test_health_status_dependencies_stats(api: TestClient) -> None:
    health = api.get("/api/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["orchestrator"] == "web-test"
    status = api.get("/api/orchestrator/status").json()
    assert status["total_agents"] == 2
    assert api.get("/api/orchestrator/dependencies").json() == {
        "dependencies": {"boom": ["worker"]}
    }
    stats = api.get("/api/orchestrator/stats").json()
    assert {row["name"] for row in stats["agents"]} == {"worker", "boom"}


def test_one_agent_and_an_unknown_one(api: TestClient) -> None:
    worker = api.get("/api/agents/worker")
    assert worker.status_code == 200
    assert worker.json()["name"] == "worker"
    assert "config" in worker.json()
    missing = api.get("/api/agents/nobody")
    assert missing.status_code == 404
    assert missing.json()["error"] == "agent_not_found"
    assert "nobody" in missing.json()["detail"]


def test_history_filters_and_stats(api: TestClient) -> None:
    events = api.get("/api/history", params={"agent": "boom"}).json()["events"]
    assert events and {event["agent"] for event in events} == {"boom"}
    errors = api.get(
        "/api/history", params={"event_type": "agent_error", "last": 5}
    ).json()
    assert [event["agent"] for event in errors["events"]] == ["boom"]
    after = events[0]["seq"]
    later = api.get("/api/history", params={"after_seq": after}).json()["events"]
    assert all(event["seq"] > after for event in later)
    stats = api.get("/api/history/stats", params={"agent": "boom"}).json()
    assert stats["agent_filter"] == "boom"
    assert stats["statistics"]["by_type"]["agent_error"] == 1


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"last": "ten"}, "last"),
        ({"last": "-1"}, "last"),
        ({"after_seq": "1.5"}, "after_seq"),
        ({"event_type": "agent_exploded"}, "event_type"),
        ({"agnet": "boom"}, "agnet"),
        ({"agent": ""}, "agent"),
    ],
)
def test_a_bad_query_parameter_is_422_naming_it(
    api: TestClient, query: dict[str, str], parameter: str
) -> None:
    response = api.get("/api/history", params=query)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [item["loc"] for item in detail] == [["query", parameter]]


def test_a_repeated_query_parameter_is_422(api: TestClient) -> None:
    response = api.get("/api/history?last=1&last=2")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "last"]


def test_an_unreachable_orchestrator_is_503_with_a_clear_body(short_tmp: Path) -> None:
    socket = str(short_tmp / "nobody.sock")
    with TestClient(base_url=LOCAL, app=build_app(socket_path=socket)) as client:
        for path in ("/api/health", "/api/agents", "/api/agents/x", "/api/history"):
            response = client.get(path)
            assert response.status_code == 503, path
            body = response.json()
            assert body["error"] == "orchestrator_unreachable"
            assert socket in body["detail"]


def test_an_agent_name_with_a_slash_and_markup(make_fleet: MakeFleet) -> None:
    from tests.agents import agent

    fleet = make_fleet(
        lambda o: (
            o.register_agent(agent("forever", "thread"), XSS),
            o.register_agent(agent("forever", "thread"), "a/b"),
        )
    )
    fleet.wait_state(XSS, "READY")
    with TestClient(base_url=LOCAL, app=build_app(socket_path=fleet.socket)) as client:
        assert client.get(f"/api/agents/{XSS}").json()["name"] == XSS
        assert client.get("/api/agents/a/b").json()["name"] == "a/b"


def test_secret_looking_config_keys_are_masked_at_any_depth() -> None:
    status = {
        "name": "svc",
        "config": {
            "api_token": "t0k",
            "smtp": {"password": "pw", "host": "localhost"},
            "hooks": [{"webhook_url": "https://x/y"}, {"limit": 3}],
            "auth_header": None,
        },
    }
    masked = mask_secrets(status)
    assert masked == {
        "name": "svc",
        "config": {
            "api_token": "****",
            "smtp": {"password": "****", "host": "localhost"},
            "hooks": [{"webhook_url": "****"}, {"limit": 3}],
            "auth_header": None,
        },
    }


def test_fleet_fixture_is_real(fleet: Fleet) -> None:
    assert fleet.answers()


def test_on_loopback_a_foreign_host_header_is_refused(fleet: Fleet) -> None:
    """DNS rebinding: a page elsewhere whose name resolves to 127.0.0.1 sends its own
    host name; the dashboard on loopback answers loopback names only."""
    app = build_app(socket_path=fleet.socket)
    with TestClient(app, base_url="http://rebound.example:8000") as client:
        assert client.get("/api/agents").status_code == 400
        assert client.get("/").status_code == 400
    with TestClient(app, base_url="http://localhost:8000") as client:
        assert client.get("/api/agents").status_code == 200
    public = build_app(socket_path=fleet.socket, host="0.0.0.0", token="t0k-123")
    with TestClient(public, base_url="http://dashboard.example") as client:
        assert client.get("/api/agents").status_code == 200
