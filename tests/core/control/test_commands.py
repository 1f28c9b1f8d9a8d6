"""Every command through ControlClient against a real, running orchestrator."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest

from pyorchestrate.core.control.client import ControlClient
from pyorchestrate.core.errors import (
    AgentNotFound,
    Conflict,
    ControlUnavailable,
    UnknownCommand,
)
from pyorchestrate.testing import wait_until
from tests.agents import StubbornThread, agent

from .conftest import Serve, Served

START_STATUSES = {"started", "queued", "cancelled", "failed_clean", "failed_live"}
PS_FIELDS = {  # what the ps table shows, and no more (issue 13: a slim ps reply)
    "name",
    "agent_name",
    "class_name",
    "alive",
    "lifecycle_state",
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
    "next_run",  # scheduled agents (issue 16)
    "last_result",
}
STATUS_EXTRA = {  # what only `status NAME` adds to an agent's ps row
    "output_tail",
    "log_files",
    "flavour",
    "generation_id",
    "starts",
    "restart_policy",
    "restart_attempt",
    "termination_status",
    "dependencies",
    "config",
}
STAT_FIELDS = {
    "name",
    "alive",
    "lifecycle_state",
    "started",
    "in_queue",
    "pid",
    "uptime",
    "cpu_percent",
    "memory_mb",
    "memory_percent",
    "threads",
}
NUMBER = (int, float)


def _by_name(rows: list[dict[str, Any]], key: str = "agent_name") -> dict[str, Any]:
    return {row[key]: row for row in rows}


def _wait_status(
    client: ControlClient, name: str, timeout: float = 10.0, **expected: Any
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def matches() -> bool:
        seen.update(client.status(name))
        return all(seen.get(k) == v for k, v in expected.items())

    assert wait_until(matches, timeout), f"{name}: wanted {expected}, last {seen}"
    return seen


# ---------------------------------------------------------------- ps / status


def test_ps_lists_every_agent_with_its_state(serve: Serve, flavour: str) -> None:
    served = serve(
        agents=[
            (agent("forever", flavour), "w", {}),
            (agent("forever", "thread"), "waiting"),
        ],
        max_workers=1,
    )
    served.wait_state("w", "READY")
    late_cls = agent("forever", "thread")
    served.orchestrator.register_agent(late_cls, "late", custom_config={"limit": 7})
    data = served.client().ps()
    rows = _by_name(data["agents"])
    assert list(rows) == ["w", "waiting", "late"]
    for row in rows.values():
        assert set(row) == PS_FIELDS
    client = served.client()
    status = {name: client.status(name) for name in rows}
    for name, row in rows.items():
        assert set(status[name]) == PS_FIELDS | STATUS_EXTRA
        same = {k: v for k, v in status[name].items() if k in PS_FIELDS}
        assert {k: v for k, v in row.items() if k != "uptime"} == {
            k: v for k, v in same.items() if k != "uptime"
        }
    w = rows["w"]
    assert w["class_name"] == agent("forever", flavour).__name__
    assert (w["lifecycle_state"], w["alive"], w["started"], w["in_queue"]) == (
        "READY",
        True,
        True,
        False,
    )
    assert status["w"]["generation_id"] == 1
    assert isinstance(w["uptime"], NUMBER)
    assert status["w"]["config"]["limit"] == -1
    if flavour == "process":
        assert w["pid"] != os.getpid()
        assert psutil.Process(w["pid"]).is_running()
    waiting = rows["waiting"]
    assert (waiting["lifecycle_state"], waiting["in_queue"], waiting["started"]) == (
        "QUEUED",
        True,
        False,
    )
    assert waiting["alive"] is False
    late = rows["late"]
    assert (late["lifecycle_state"], late["started"], late["in_queue"]) == (
        "REGISTERED",
        False,
        False,
    )
    # the registered config, before any start
    assert status["late"]["config"]["limit"] == 7
    assert late["pid"] is None
    assert data["running_count"] == 1
    assert data["max_workers"] == 1
    assert data["waiting_count"] == 1


def test_status_gives_orchestrator_totals(serve: Serve) -> None:
    served = serve(
        agents=[(agent("forever", "thread"), "a"), (agent("forever", "thread"), "b")],
        max_workers=1,
    )
    served.wait_state("a", "READY")
    data = served.client().status()
    assert data["name"] == served.orchestrator.name
    assert data["total_agents"] == 2
    assert data["running_agents"] == 1
    assert data["max_workers"] == 1
    assert data["waiting_agents"] == 1
    assert data["command_interface_enabled"] is True
    assert data["command_socket_path"] == served.path
    assert data["run_mode"] == "daemon"
    assert data["pid"] == os.getpid()
    assert data["shutdown_requested"] is False
    assert isinstance(data["uptime"], NUMBER) and data["uptime"] >= 0


def test_status_of_one_agent_and_404_for_an_unknown(serve: Serve, flavour: str) -> None:
    served = serve(
        agents=[(agent("forever", flavour), "base"), (agent("quick", flavour), "top")],
        dependencies={"top": ["base"]},
    )
    client = served.client()
    data = _wait_status(client, "base", lifecycle_state="READY")
    assert data["name"] == "base"
    assert data["alive"] is True
    assert data["started"] is True
    assert data["in_queue"] is False
    assert data["dependencies"] == []
    assert client.status("top")["dependencies"] == ["base"]
    with pytest.raises(AgentNotFound, match="ghost") as caught:
        client.status("ghost")
    assert caught.value.code == 404
    payload = client.request("status", "ghost")
    assert (payload["status"], payload["code"]) == ("error", 404)


def test_dependencies_lists_only_agents_with_dependencies(serve: Serve) -> None:
    forever = agent("forever", "thread")
    served = serve(
        agents=[(forever, "a"), (forever, "b"), (forever, "c"), (forever, "solo")],
        dependencies={"b": ["a"], "c": ["a", "b"]},
    )
    deps = served.client().dependencies()["dependencies"]
    assert {k: sorted(v) for k, v in deps.items()} == {"b": ["a"], "c": ["a", "b"]}


def test_commands_describes_what_is_allowed(serve: Serve) -> None:
    data = serve().client().commands()
    assert data["allowed_commands"] == sorted(data["allowed_commands"])
    assert len(data["allowed_commands"]) == data["total_available_commands"] == 17
    assert data["restrictions_active"] is False
    assert data["restricted_commands"] == []
    assert set(data["descriptions"]) == set(data["allowed_commands"])


# ---------------------------------------------------------------- start / stop / restart


def test_start_an_ended_agent_again(serve: Serve, flavour: str) -> None:
    served = serve(agents=[(agent("quick", flavour), "q")])
    served.wait_state("q", "TERMINATED")
    client = served.client()
    data = client.start("q")
    assert data["status"] in START_STATUSES
    assert data["status"] == "started"
    assert "q" in data["message"]
    assert "reason" in data
    done = _wait_status(client, "q", lifecycle_state="TERMINATED", generation_id=2)
    assert done["started"] is True
    assert done["restarts"] == 1


def test_start_conflicts_and_unknowns(serve: Serve, flavour: str) -> None:
    served = serve(agents=[(agent("forever", flavour), "w")])
    served.wait_state("w", "READY")
    client = served.client()
    with pytest.raises(Conflict) as caught:
        client.start("w")
    assert caught.value.code == 409
    assert "w" in caught.value.message
    with pytest.raises(AgentNotFound) as missing:
        client.start("ghost")
    assert missing.value.code == 404
    assert client.request("start")["code"] == 400  # no agent given
    assert client.status("w")["generation_id"] == 1  # nothing was started twice


def test_start_queues_when_no_slot_and_stop_takes_it_off_the_queue(
    serve: Serve,
) -> None:
    served = serve(
        agents=[(agent("forever", "thread"), "w"), (agent("quick", "thread"), "q")],
        max_workers=1,
        dependencies={"q": ["w"]},
    )
    served.wait_state("w", "READY")
    served.orchestrator.stop_agent("w")  # q, waiting behind w, never got to run
    served.wait_state("w", "TERMINATED")
    served.wait_state("q", "TERMINATED", "FAILED")
    client = served.client()
    client.start("w")
    _wait_status(client, "w", lifecycle_state="READY")
    data = client.start("q")  # the only slot is w's
    assert data["status"] == "queued"
    assert data["reason"]
    assert client.status("q")["in_queue"] is True
    assert client.ps()["waiting_count"] == 1
    stopped = client.stop("q")
    assert "queue" in stopped["message"]
    after = client.status("q")
    assert (after["in_queue"], after["lifecycle_state"]) == (False, "TERMINATED")


def test_stop_a_running_agent(serve: Serve, flavour: str) -> None:
    served = serve(agents=[(agent("forever", flavour), "w")])
    served.wait_state("w", "READY")
    client = served.client()
    data = client.stop("w")
    assert "w" in data["message"]
    done = _wait_status(client, "w", lifecycle_state="TERMINATED")
    assert done["alive"] is False
    assert "not running" in client.stop("w")["message"]
    with pytest.raises(AgentNotFound):
        client.stop("ghost")
    with pytest.raises(UnknownCommand):
        client.call("stop")


def test_restart_makes_a_new_generation(serve: Serve, flavour: str) -> None:
    served = serve(agents=[(agent("forever", flavour), "w")])
    client = served.client()
    first = _wait_status(client, "w", lifecycle_state="READY")
    assert first["generation_id"] == 1
    assert "w" in client.restart("w")["message"]
    second = _wait_status(
        client, "w", lifecycle_state="READY", generation_id=first["generation_id"] + 1
    )
    assert second["restarts"] == 1
    if flavour == "process":
        assert second["pid"] != first["pid"]
    # A stopped agent is restarted too.
    client.stop("w")
    _wait_status(client, "w", lifecycle_state="TERMINATED")
    client.restart("w")
    _wait_status(client, "w", lifecycle_state="READY", generation_id=3)
    with pytest.raises(AgentNotFound):
        client.restart("ghost")


# ---------------------------------------------------------------- stats


def test_stats_reads_processes_and_says_na_for_the_rest(
    serve: Serve, flavour: str
) -> None:
    served = serve(
        agents=[
            (agent("forever", flavour), "w"),
            (agent("quick", "thread"), "done"),
            (agent("forever", "thread"), "waiting"),
        ],
        max_workers=1,
        dependencies={"waiting": ["w"], "done": ["w"]},
    )
    served.wait_state("w", "READY")
    client = served.client()
    data = client.stats()
    assert isinstance(data["timestamp"], NUMBER)
    assert abs(data["timestamp"] - time.time()) < 60
    orch = data["orchestrator"]
    assert orch["pid"] == os.getpid()
    assert orch["max_workers"] == 1
    assert orch["running_agents"] == 1
    assert orch["waiting_agents"] == 2
    assert isinstance(orch["uptime"], NUMBER)
    assert isinstance(orch["cpu_percent"], NUMBER)
    assert orch["memory_mb"] > 0
    assert isinstance(orch["memory_percent"], NUMBER)
    assert orch["threads"] >= 1
    rows = _by_name(data["agents"], "name")
    assert set(rows) == {"w", "done", "waiting"}
    for row in rows.values():
        assert set(row) >= STAT_FIELDS
    w = rows["w"]
    assert w["alive"] is True
    assert w["lifecycle_state"] == "READY"
    assert isinstance(w["uptime"], NUMBER)
    assert isinstance(w["pid"], int)
    if flavour == "process":
        assert w["pid"] == client.status("w")["pid"] != os.getpid()
        assert isinstance(w["cpu_percent"], NUMBER)
        assert w["memory_mb"] > 0
        assert isinstance(w["memory_percent"], NUMBER)
        assert w["threads"] >= 1
        again = _by_name(client.stats()["agents"], "name")["w"]
        assert isinstance(again["cpu_percent"], NUMBER)  # the cached Process
    for name in ("done", "waiting"):  # queued, never started: nothing to read
        row = rows[name]
        assert row["alive"] is False
        assert row["in_queue"] is True
        assert row["pid"] is None
        for key in ("uptime", "cpu_percent", "memory_mb", "memory_percent", "threads"):
            assert row[key] == "N/A", (name, key, row[key])
    # After it ends, a process agent is "N/A" too (no stale pid).
    client.stop("w")
    _wait_status(client, "w", lifecycle_state="TERMINATED")
    ended = _by_name(client.stats()["agents"], "name")["w"]
    assert ended["pid"] is None
    for key in ("uptime", "cpu_percent", "memory_mb", "memory_percent", "threads"):
        assert ended[key] == "N/A", (key, ended[key])


# ---------------------------------------------------------------- history


@pytest.fixture
def finished(serve: Serve) -> Served:
    """Two quick agents that have run and ended, so the history has their events."""
    quick = agent("quick", "thread")
    served = serve(agents=[(quick, "a"), (quick, "b")])
    served.wait_state("a", "TERMINATED")
    served.wait_state("b", "TERMINATED")
    return served


def test_history_returns_events_oldest_first(finished: Served) -> None:
    data = finished.client().history()
    events = data["events"]
    assert data["count"] == len(events) > 0
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert events[0]["event_name"] == "INIT"
    names = {(e["event_name"], e["agent"]) for e in events}
    for who in ("a", "b"):
        for what in ("agent_registered", "agent_started", "agent_terminated"):
            assert (what, who) in names
    assert data["filters"] == {}
    info = data["capacity_info"]
    assert info["max_events"] == 5000
    assert info["last_seq"] >= seqs[-1]
    for event in events:
        assert set(event) >= {"seq", "timestamp", "event_name", "agent", "data"}


def test_history_filters_combine(finished: Served) -> None:
    client = finished.client()
    data = client.history(last=2, agent="a", event_name="agent_started")
    assert 1 <= data["count"] <= 2
    assert all(
        (e["agent"], e["event_name"]) == ("a", "agent_started") for e in data["events"]
    )
    assert data["filters"] == {"last": 2, "agent": "a", "event_name": "agent_started"}
    assert "capacity_info" in data
    only_a = client.history(agent="a")["events"]
    assert only_a and all(e["agent"] == "a" for e in only_a)
    assert {e["event_name"] for e in only_a} >= {"agent_registered", "agent_terminated"}


def test_history_last_keeps_the_newest(finished: Served) -> None:
    client = finished.client()
    everything = client.history()["events"]
    newest = client.history(last=2)["events"]
    assert [e["seq"] for e in newest] == [e["seq"] for e in everything[-2:]]
    nothing = client.history(last=0)
    assert (nothing["events"], nothing["count"]) == ([], 0)


def test_history_after_seq(finished: Served) -> None:
    client = finished.client()
    everything = client.history()["events"]
    cut = everything[len(everything) // 2]["seq"]
    later = client.history(after_seq=cut)["events"]
    assert [e["seq"] for e in later] == [e["seq"] for e in everything if e["seq"] > cut]


@pytest.mark.parametrize("key", ["type", "event_name", "event"])
def test_history_event_filter_and_its_legacy_aliases(
    finished: Served, key: str
) -> None:
    payload = finished.client().request("history", {key: "agent_terminated"})
    assert payload["status"] == "success", payload
    events = payload["data"]["events"]
    assert {e["agent"] for e in events} == {"a", "b"}
    assert {e["event_name"] for e in events} == {"agent_terminated"}
    assert payload["data"]["filters"] == {"event_name": "agent_terminated"}


def test_history_filters_as_a_json_string(finished: Served) -> None:
    payload = finished.client().request(
        "history", json.dumps({"agent": "b", "last": 1})
    )
    assert payload["status"] == "success", payload
    [event] = payload["data"]["events"]
    assert event["agent"] == "b"


def test_history_default_limit_is_100(finished: Served) -> None:
    for i in range(150):
        finished.orchestrator.history.record("custom", agent="z", data={"i": i})
    client = finished.client()
    assert client.history()["count"] == 100
    assert client.history(agent="z")["events"][-1]["data"] == {"i": "149"}
    assert client.history(last=150, agent="z")["count"] == 150


@pytest.mark.parametrize(
    "filters",
    [{"last": -1}, {"colour": "red"}, {"agent": 5}, {"after_seq": "3"}, [1], "{oops"],
)
def test_history_bad_filters_are_400(finished: Served, filters: object) -> None:
    payload = finished.client().request("history", filters)
    assert payload["code"] == 400, payload
    assert payload["error_type"] == "UnknownCommand"


def test_history_stats_counts_by_type(finished: Served) -> None:
    client = finished.client()
    events = client.history(last=1000)["events"]
    data = client.history_stats()
    assert data["statistics"]["by_type"] == dict(
        Counter(e["event_name"] for e in events)
    )
    assert data["agent_filter"] is None
    assert data["capacity_info"]["stored_events"] == len(events)
    assert isinstance(data["timestamp"], NUMBER)
    mine = client.history_stats(agent="a")
    assert mine["agent_filter"] == "a"
    assert mine["statistics"]["by_type"] == dict(
        Counter(e["event_name"] for e in events if e["agent"] == "a")
    )
    assert client.request("history-stats", {"nope": 1})["code"] == 400


# ---------------------------------------------------------------- shutdown


@pytest.mark.parametrize("run_mode", ["stop_on_empty", "daemon"])
def test_shutdown_replies_first_then_join_returns(serve: Serve, run_mode: str) -> None:
    gate = threading.Event()
    served = serve(
        agents=[
            (StubbornThread, "g", {"release": gate}),
            (agent("forever", "thread"), "w"),
        ],
        run_mode=run_mode,
        agent_stop_timeout=20.0,
    )
    served.wait_state("w", "READY")
    client = served.client()
    try:
        data = client.shutdown()
        # The reply came while teardown is still waiting for "g" to end.
        assert data == {"message": "Orchestrator shutdown initiated"}
        assert served.joiner.is_alive()
        assert served.orchestrator.is_shutting_down
    finally:
        gate.set()
    served.joiner.join(15)
    assert not served.joiner.is_alive(), "join() did not return after shutdown"
    assert served.join_error is None
    assert served.join_result == []
    assert not Path(served.path).exists()
    assert len(served.orchestrator.events(event_name="SHUTDOWN")) == 1
    for name in ("g", "w"):
        assert served.state(name) == "TERMINATED"
    with pytest.raises(ControlUnavailable, match=served.path):
        ControlClient(served.path, timeout=2).ps()


@pytest.mark.parametrize("run_mode", ["stop_on_empty", "daemon"])
def test_shutdown_reply_arrives_on_a_quick_teardown(
    serve: Serve, run_mode: str
) -> None:
    served = serve(agents=[(agent("forever", "thread"), "w")], run_mode=run_mode)
    conn = served.raw()
    payload = conn.reply("shutdown")
    assert payload["status"] == "success"
    assert payload["data"]["message"] == "Orchestrator shutdown initiated"
    served.joiner.join(15)
    assert not served.joiner.is_alive()
    assert conn.at_eof()
    assert not Path(served.path).exists()


@pytest.mark.parametrize("run_mode", ["stop_on_empty", "daemon"])
def test_shutdown_ends_join_even_with_an_agent_that_ignores_stop(
    serve: Serve, run_mode: str
) -> None:
    gate = threading.Event()
    served = serve(
        agents=[(StubbornThread, "g", {"release": gate})],
        run_mode=run_mode,
        agent_stop_timeout=0.5,
    )
    served.wait_state("g", "READY", "RUNNING")
    try:
        assert (
            served.client().shutdown()["message"] == "Orchestrator shutdown initiated"
        )
        # join() honours the request in both modes: g is abandoned, not waited for.
        served.joiner.join(0.5 + 10)
        assert not served.joiner.is_alive(), "join() ignored the shutdown command"
        assert served.join_result == ["g"]
        assert not Path(served.path).exists()
    finally:
        gate.set()
