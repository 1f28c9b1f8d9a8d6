"""What supervision looks like from the CLI: BACKOFF with its next try, FATAL and why,
the signal that killed an agent, and ``start`` bringing a FATAL agent back."""

from __future__ import annotations

import json
import os
import re
import signal

from pyorchestrate.testing import wait_until
from tests.agents import agent

from .conftest import Invoke, MakeFleet

SLOW_RETRY = {
    "restart": "on-failure",
    "immediate_restarts": 0,
    "backoff_initial": 30.0,
    "backoff_jitter": 0,
}


def _row(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if line.split()[:1] == [name])


def test_ps_shows_backoff_with_the_time_to_the_next_try(
    make_fleet: MakeFleet, cli: Invoke
) -> None:
    fleet = make_fleet(agents=False)
    fleet.orchestrator.register_agent(
        agent("boom", "thread"), "boom", supervision=SLOW_RETRY
    )
    fleet.orchestrator.start_agent("boom")
    fleet.wait_state("boom", "BACKOFF")
    result = cli("ps", "--socket", fleet.socket)
    assert result.exit_code == 0, result.stdout
    row = _row(result.stdout, "boom")
    match = re.search(r"BACKOFF \(retry in (\d+\.\d)s\)", row)
    assert match, row
    assert 25.0 < float(match.group(1)) <= 30.0
    assert "ValueError: boom" in row
    data = json.loads(cli("status", "boom", "--socket", fleet.socket, "--json").stdout)
    assert data["lifecycle_state"] == "BACKOFF"
    assert data["restart_policy"] == "on-failure"
    assert data["restart_attempt"] == 1
    assert 25.0 < data["next_start_in"] <= 30.0
    # An operator stop cancels the pending restart.
    assert cli("stop", "boom", "--socket", fleet.socket).exit_code == 0
    fleet.wait_state("boom", "TERMINATED")
    assert fleet.status("boom")["next_start_in"] is None


def test_ps_shows_fatal_and_start_brings_it_back(
    make_fleet: MakeFleet, cli: Invoke
) -> None:
    fleet = make_fleet(agents=False)
    fleet.orchestrator.register_agent(
        agent("boom", "thread"),
        "boom",
        supervision={"restart": "always", "max_restarts": 0},
    )
    fleet.orchestrator.start_agent("boom")
    fleet.wait_state("boom", "FATAL")
    row = _row(cli("ps", "--socket", fleet.socket).stdout, "boom")
    assert row.split()[1] == "FATAL"
    assert "gave up after 0 restarts (max_restarts); ValueError: boom" in row
    generation = fleet.status("boom")["generation_id"]
    result = cli("start", "boom", "--socket", fleet.socket)
    assert result.exit_code == 0, result.stdout
    assert wait_until(lambda: fleet.status("boom")["generation_id"] == generation + 1)
    fleet.wait_state("boom", "FATAL")  # a fresh budget of 0 restarts, used up again


def test_ps_names_the_signal_that_killed_an_agent(
    make_fleet: MakeFleet, cli: Invoke
) -> None:
    fleet = make_fleet(agents=False)
    fleet.orchestrator.register_agent(agent("forever", "process"), "victim")
    fleet.orchestrator.start_agent("victim")
    fleet.wait_state("victim", "READY")
    os.kill(fleet.status("victim")["pid"], signal.SIGKILL)
    fleet.wait_state("victim", "TERMINATED")
    row = _row(cli("ps", "--socket", fleet.socket).stdout, "victim")
    assert row.split()[5] == "SIGKILL", row
    assert "killed by SIGKILL" in row
