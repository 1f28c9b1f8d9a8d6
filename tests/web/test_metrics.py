"""``/metrics`` in Prometheus' text format, from a real orchestrator."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from pyorchestrate import Orchestrator
from pyorchestrate.core.events import OrchestratorEvent
from pyorchestrate.core.orchestrator.states import AgentState
from pyorchestrate.testing import wait_until
from pyorchestrate.web import build_app
from tests.agents import agent

from .conftest import LOCAL, Fleet, MakeFleet

RESTART_FAST = {
    "restart": "always",
    "immediate_restarts": 0,
    "backoff_initial": 0.05,
    "backoff_jitter": 0,
}


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_every_label_set_is_there_from_the_first_scrape(api: TestClient) -> None:
    found = samples(api)
    assert found[("pyorchestrate_orchestrator_up", ())] == 1
    for name in ("worker", "boom"):
        states = {
            state.value: found[
                ("pyorchestrate_agent_state", (("agent", name), ("state", state.value)))
            ]
            for state in AgentState
        }
        assert sum(states.values()) == 1
        assert found[("pyorchestrate_agent_restarts_total", (("agent", name),))] == 0
    assert (
        found[("pyorchestrate_agent_state", (("agent", "worker"), ("state", "READY")))]
        == 1
    )
    assert found[("pyorchestrate_agent_up", (("agent", "worker"),))] == 1
    assert found[("pyorchestrate_agent_up", (("agent", "boom"),))] == 0
    for event in OrchestratorEvent:
        assert ("pyorchestrate_events_total", (("event", event.value),)) in found


def test_events_are_counted_from_the_stream(fleet: Fleet, api: TestClient) -> None:
    key = ("pyorchestrate_events_total", (("event", "agent_started"),))
    assert wait_until(lambda: api.get("/api/health").status_code == 200, 5)
    hub = api.app.state.dashboard.hub  # type: ignore[attr-defined]
    assert wait_until(lambda: hub.connected, 5)
    before = samples(api)[key]
    fleet.orchestrator.restart_agent("worker")
    assert wait_until(lambda: samples(api)[key] >= before + 1, 10)


def test_a_killed_process_agent_counts_a_restart(make_fleet: MakeFleet) -> None:
    def register(orchestrator: Orchestrator) -> None:
        orchestrator.register_agent(
            agent("forever", "process"), "proc", supervision=RESTART_FAST
        )

    fleet = make_fleet(register)
    fleet.wait_state("proc", "READY")
    with TestClient(base_url=LOCAL, app=build_app(socket_path=fleet.socket)) as client:
        key = ("pyorchestrate_agent_restarts_total", (("agent", "proc"),))
        assert samples(client)[key] == 0
        os.kill(fleet.orchestrator.agent_status("proc")["pid"], signal.SIGKILL)
        assert wait_until(lambda: samples(client)[key] >= 1, 15)
        fleet.wait_state("proc", "READY")
        code = ("pyorchestrate_agent_last_exit_code", (("agent", "proc"),))
        assert samples(client)[code] == -signal.SIGKILL


def test_an_unreachable_orchestrator_scrapes_as_down(short_tmp: Path) -> None:
    with TestClient(
        base_url=LOCAL, app=build_app(socket_path=str(short_tmp / "none.sock"))
    ) as client:
        found = samples(client)
    assert found[("pyorchestrate_orchestrator_up", ())] == 0
    assert not any(name.startswith("pyorchestrate_agent_") for name, _ in found)
    assert ("pyorchestrate_events_total", (("event", "agent_error"),)) in found
