"""The JSON shapes built from a target's snapshots (``core/control/reports.py``).

The key order is part of the wire contract (tables and ``--json`` output follow it),
and durations are rounded here, once."""

from __future__ import annotations

import json
import os

from pyorchestrate.core.control.reports import (
    build_agent_status,
    build_agent_summary,
    build_orchestrator_status,
    build_report,
)
from pyorchestrate.core.control.target import (
    AgentDetails,
    AgentSnapshot,
    OrchestratorSnapshot,
    PoolCounts,
)

SUMMARY_KEYS = [
    "name",
    "agent_name",
    "class_name",
    "lifecycle_state",
    "alive",
    "started",
    "in_queue",
    "pid",
    "uptime",
    "restarts",
    "exit_code",
    "signal",
    "next_start_in",
    "fatal_reason",
    "last_error",
    "next_run",
    "last_result",
]
STATUS_KEYS = [
    *SUMMARY_KEYS,
    "flavour",
    "generation_id",
    "starts",
    "restart_policy",
    "restart_attempt",
    "termination_status",
    "dependencies",
    "config",
]

AGENT = AgentSnapshot(
    name="w",
    class_name="Worker",
    state="BACKOFF",
    flavour="process",
    alive=False,
    started=True,
    in_queue=False,
    pid=4321,
    uptime=12.34567,
    starts=3,
    exit_code=1,
    signal=None,
    next_start_in=0.12345,
    fatal_reason=None,
    last_error="ValueError: boom",
)
DETAILS = AgentDetails(
    agent=AGENT,
    generation_id=3,
    restart_policy="on-failure",
    restart_attempt=2,
    termination_status="error",
    dependencies=("db",),
    config={"limit": 4},
)
ORCHESTRATOR = OrchestratorSnapshot(
    name="main",
    run_mode="daemon",
    started=True,
    shutdown_requested=False,
    uptime=99.87654,
    total_agents=2,
    pool=PoolCounts(running=1, max_workers=4, waiting=0),
    dependencies={"w": ["db"]},
    command_interface_enabled=True,
    command_socket_path="/tmp/x.sock",
)


def test_an_agent_summary_in_wire_order() -> None:
    summary = build_agent_summary(AGENT)
    assert list(summary) == SUMMARY_KEYS
    assert (summary["uptime"], summary["next_start_in"]) == (12.346, 0.123)
    assert summary["restarts"] == 2  # starts after the first
    assert summary["agent_name"] == summary["name"] == "w"


def test_an_agent_status_extends_its_summary() -> None:
    status = build_agent_status(DETAILS)
    assert list(status) == STATUS_KEYS
    assert {k: status[k] for k in SUMMARY_KEYS} == build_agent_summary(AGENT)
    assert status["dependencies"] == ["db"]  # a list, as JSON has it
    assert (status["flavour"], status["starts"], status["config"]) == (
        "process",
        3,
        {"limit": 4},
    )
    json.dumps(status)


def test_nothing_to_round_stays_none() -> None:
    fresh = build_agent_summary(
        AGENT._replace(uptime=None, next_start_in=None, starts=0)
    )
    assert (fresh["uptime"], fresh["next_start_in"], fresh["restarts"]) == (
        None,
        None,
        0,
    )


def test_the_orchestrator_status_and_report() -> None:
    status = build_orchestrator_status(ORCHESTRATOR)
    assert status == {
        "name": "main",
        "run_mode": "daemon",
        "total_agents": 2,
        "running_agents": 1,
        "max_workers": 4,
        "waiting_agents": 0,
        "uptime": 99.877,
        "pid": os.getpid(),
        "command_interface_enabled": True,
        "command_socket_path": "/tmp/x.sock",
        "shutdown_requested": False,
    }
    report = build_report(
        ORCHESTRATOR,
        [DETAILS],
        workers={"max_workers": 4},
        history={"max_events": 10},
        callbacks={"dropped": 0, "failed": 1},
    )
    assert list(report) == [
        "name",
        "run_mode",
        "started",
        "shutdown_requested",
        "uptime",
        "workers",
        "agents",
        "dependencies",
        "history",
        "callbacks",
    ]
    assert report["agents"] == [build_agent_status(DETAILS)]
    assert report["uptime"] == 99.877
    json.dumps(report)
