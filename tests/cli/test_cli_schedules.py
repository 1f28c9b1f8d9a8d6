"""``pyorchestrate ping`` and the scheduled columns of ``ps`` (issue 16), against a
real orchestrator on a real socket."""

from __future__ import annotations

import json
from collections.abc import Callable

from pyorchestrate import ExternalJob, Orchestrator, OrchestratorEvent
from pyorchestrate.testing import EventRecorder
from tests.agents import QuickThread

from .conftest import Invoke, MakeFleet


def _register(recorder: EventRecorder) -> Callable[[Orchestrator], None]:
    def register(orchestrator: Orchestrator) -> None:
        recorder.attach(orchestrator)
        orchestrator.register_agent(
            ExternalJob, "dump", schedule={"cron": "0 2 * * *", "grace": "30m"}
        )
        orchestrator.register_agent(QuickThread, "report", schedule={"every": "1h"})

    return register


def test_ping_reports_a_run_and_a_failure(make_fleet: MakeFleet, cli: Invoke) -> None:
    recorder = EventRecorder()
    fleet = make_fleet(agents=False, register=_register(recorder))
    ok = cli("ping", "dump", "--socket", fleet.socket)
    assert (ok.exit_code, ok.stdout.strip()) == (0, "agent 'dump': success recorded")
    recorder.wait_for(OrchestratorEvent.AGENT_HEARTBEAT, "dump")
    failed = cli(
        "ping", "dump", "--fail", "-m", "pg_dump: disk full", "--socket", fleet.socket
    )
    assert failed.exit_code == 0
    error = recorder.wait_for(OrchestratorEvent.AGENT_ERROR, "dump")
    assert (error["reason"], error["error_message"]) == (
        "ping_fail",
        "pg_dump: disk full",
    )
    # Only an external job takes pings; an unknown name is a 404.
    refused = cli("ping", "report", "--socket", fleet.socket)
    assert refused.exit_code == 1
    assert "not an external job" in refused.stderr
    assert cli("ping", "ghost", "--socket", fleet.socket).exit_code == 1


def test_ps_shows_next_run_and_last_result(make_fleet: MakeFleet, cli: Invoke) -> None:
    fleet = make_fleet(agents=False, register=_register(EventRecorder()))
    assert cli("ping", "dump", "--fail", "--socket", fleet.socket).exit_code == 0
    table = cli("ps", "--socket", fleet.socket)
    assert table.exit_code == 0, table.stderr
    header = next(line for line in table.stdout.splitlines() if "NAME" in line)
    assert "NEXT RUN" in header and "LAST RESULT" in header
    rows = {line.split()[0]: line for line in table.stdout.splitlines() if line}
    assert "+00:00" in rows["dump"] and " failed " in rows["dump"]
    data = json.loads(cli("ps", "--json", "--socket", fleet.socket).stdout)
    by_name = {row["name"]: row for row in data["agents"]}
    assert by_name["dump"]["next_run"].endswith("T02:00:00+00:00")
    assert by_name["dump"]["last_result"] == "failed"
    assert by_name["report"]["last_result"] is None
