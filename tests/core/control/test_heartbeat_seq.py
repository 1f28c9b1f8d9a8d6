"""Heartbeats on the command channel: ``seq`` stays dense, heartbeats still stream.

Issue 12, item 8: heartbeats took sequence numbers that the history then dropped, so
``seq`` had gaps. Now a heartbeat carries the ``seq`` of the record before it; a
subscription still streams every heartbeat once, right after that record.
"""

from __future__ import annotations

from typing import Any

from pyorchestrate.core.control.client import ControlClient
from pyorchestrate.testing import wait_until
from tests.agents import agent

from .conftest import RawConn, Serve, Served

QUICK = agent("quick", "thread")
FOREVER = agent("forever", "thread")
BEAT = "agent_heartbeat"


def _subscribe(conn: RawConn, filters: dict[str, Any] | None = None) -> str:
    rid = conn.request("subscribe", filters) if filters else conn.request("subscribe")
    message = conn.read_json()
    assert message["payload"]["status"] == "success", message
    return rid


def _next(conn: RawConn, rid: str) -> dict[str, Any]:
    message = conn.read_json(5.0)
    assert message["event_name"] == "EVENT", message
    assert message["payload"]["request_id"] == rid
    event: dict[str, Any] = message["payload"]["event"]
    return event


def _last_seq(client: ControlClient) -> int:
    return int(client.history(last=1)["capacity_info"]["last_seq"])


def _beating(serve: Serve) -> Served:
    served = serve(
        agents=[
            (FOREVER, "beat", {"custom_config": {"heartbeat_interval": 0.02}}),
            (QUICK, "a"),
        ]
    )
    served.wait_state("beat", "READY")
    served.wait_state("a", "TERMINATED")
    return served


def _check_stream(events: list[dict[str, Any]], start: int) -> None:
    """Records dense from ``start + 1``; each heartbeat carries the record before."""
    seen = start
    records = []
    for event in events:
        if event["event_name"] == BEAT:
            assert event["seq"] == seen, (event, seen)
        else:
            assert event["seq"] == seen + 1, (event, seen)
            seen = event["seq"]
            records.append(event)
    keys = [(e["seq"], e["event_name"] == BEAT, e["t_mono_ns"]) for e in events]
    assert keys == sorted(keys) and len(set(keys)) == len(keys), (
        "repeated or out of order"
    )


def test_a_subscriber_gets_dense_records_and_every_heartbeat_once(
    serve: Serve,
) -> None:
    served = _beating(serve)
    control = served.client()
    sub = served.raw()
    start = _last_seq(control)
    rid = _subscribe(sub)
    events: list[dict[str, Any]] = []
    for _ in range(3):
        generation = control.status("a")["generation_id"]
        control.start("a")
        assert wait_until(
            lambda g=generation: (
                control.status("a")["generation_id"] == g + 1
                and control.status("a")["lifecycle_state"] == "TERMINATED"
            ),
            10,
        )
    target = _last_seq(control)
    # Read past the last record until three heartbeats followed it: the quiet
    # stretch after the last record still streams heartbeats.
    while (
        not events
        or events[-1]["seq"] < target
        or [e["event_name"] for e in events[-3:]] != [BEAT] * 3
    ):
        events.append(_next(sub, rid))
    _check_stream(events, start)
    assert sum(e["event_name"] != BEAT for e in events) == target - start
    assert sum(e["event_name"] == BEAT for e in events) >= 3
    # The history holds the same records, with no gap in seq.
    stored = control.history(after_seq=start, last=10_000)["events"]
    stored_records = [e for e in stored if e["event_name"] != BEAT]
    assert [e["seq"] for e in stored_records] == list(range(start + 1, target + 1))
    assert stored_records == [
        e for e in events if e["event_name"] != BEAT and e["seq"] <= target
    ]


def test_a_subscription_after_seq_replays_then_keeps_streaming_heartbeats(
    serve: Serve,
) -> None:
    served = _beating(serve)
    control = served.client()
    start = _last_seq(control)
    generation = control.status("a")["generation_id"]
    control.start("a")
    assert wait_until(
        lambda: (
            control.status("a")["generation_id"] == generation + 1
            and control.status("a")["lifecycle_state"] == "TERMINATED"
        ),
        10,
    )
    target = _last_seq(control)
    sub = served.raw()
    rid = _subscribe(sub, {"after_seq": start})
    events: list[dict[str, Any]] = []
    while sum(1 for e in events if e["event_name"] == BEAT and e["seq"] >= target) < 3:
        events.append(_next(sub, rid))
    _check_stream(events, start)
    assert [e["seq"] for e in events if e["event_name"] != BEAT][: target - start] == (
        list(range(start + 1, target + 1))
    )
