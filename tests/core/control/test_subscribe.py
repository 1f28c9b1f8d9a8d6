"""subscribe: new events streamed on the subscribing connection, in seq order."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from pyorchestrate.core.control.client import ControlClient
from pyorchestrate.testing import wait_until
from tests.agents import agent

from .conftest import RawConn, Serve, Served

QUICK = agent("quick", "thread")
FOREVER = agent("forever", "thread")


def _subscribe(
    conn: RawConn, filters: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    rid = conn.request("subscribe", filters) if filters else conn.request("subscribe")
    message = conn.read_json()
    assert message["event_name"] == "STATUS", message
    payload = message["payload"]
    assert payload["request_id"] == rid
    assert payload["status"] == "success", payload
    assert payload["data"]["subscribed"] is True
    return rid, payload["data"]


def _next_event(
    conn: RawConn, rid: str, timeout: float | None = None, *, agents_only: bool = False
) -> dict[str, Any]:
    """The next event; with ``agents_only``, the next of the agents' own (the audit
    events of the test's ``start`` requests, recorded as those return, before or
    after the agent's first event, are passed over)."""
    while True:
        message = conn.read_json(timeout)
        assert message["event_name"] == "EVENT", message
        assert message["payload"]["request_id"] == rid
        event: dict[str, Any] = message["payload"]["event"]
        if not agents_only or event["event_name"] != "operator_action":
            return event


def _events_until(conn: RawConn, rid: str, last_seq: int) -> list[dict[str, Any]]:
    """Read events until one with ``seq >= last_seq`` arrives."""
    events: list[dict[str, Any]] = []
    while not events or events[-1]["seq"] < last_seq:
        events.append(_next_event(conn, rid, timeout=3.0))
    return events


def _run_once(client: ControlClient, name: str) -> None:
    """Start a quick agent and wait until that run has ended."""
    generation = client.status(name)["generation_id"]
    client.start(name)
    seen: dict[str, Any] = {}

    def ended() -> bool:
        seen.update(client.status(name))
        return (seen["generation_id"], seen["lifecycle_state"]) == (
            generation + 1,
            "TERMINATED",
        )

    assert wait_until(ended, 10), f"{name} did not run: {seen}"


def _last_seq(client: ControlClient) -> int:
    return int(client.history(last=1)["capacity_info"]["last_seq"])


@pytest.fixture
def quiet(serve: Serve) -> Served:
    """An orchestrator whose agents have settled (no events until a test acts)."""
    served = serve(agents=[(FOREVER, "w"), (QUICK, "a"), (QUICK, "b")])
    served.wait_state("w", "READY")
    served.wait_state("a", "TERMINATED")
    served.wait_state("b", "TERMINATED")
    return served


def test_events_arrive_in_seq_order_while_another_client_sends_commands(
    quiet: Served,
) -> None:
    control = quiet.client()
    start = _last_seq(control)
    sub = quiet.raw()
    rid, data = _subscribe(sub)
    assert data["backlog"] == 0
    received: list[dict[str, Any]] = []
    target: list[int] = []
    failure: list[BaseException] = []

    def read() -> None:
        deadline = time.monotonic() + 30
        try:
            while not (target and received and received[-1]["seq"] >= target[0]):
                try:
                    received.append(_next_event(sub, rid, timeout=0.1))
                except TimeoutError:
                    if time.monotonic() > deadline:
                        raise
        except BaseException as exc:  # reported below
            failure.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(4):
            _run_once(control, "a")
            control.ps()
            control.stats()
            control.restart("w")
            control.history(last=3)
            _run_once(control, "b")
    finally:
        target.append(_last_seq(control))
        reader.join(35)
    assert not reader.is_alive() and not failure, failure
    # w's restart goes on after its reply (its READY may be recorded after the last
    # seq was read, and read before the reader stopped): compare up to that seq.
    received = [e for e in received if e["seq"] <= target[0]]
    seqs = [e["seq"] for e in received]
    # In order, without a gap or a repeat: every record made since subscribing.
    assert seqs == list(range(start + 1, target[0] + 1))
    stored = [
        e
        for e in control.history(after_seq=start, last=10_000)["events"]
        if e["seq"] <= target[0]
    ]
    assert received == stored
    started = [e["agent"] for e in received if e["event_name"] == "agent_started"]
    assert started.count("a") == 4 and started.count("b") == 4


def test_agent_and_event_filters(quiet: Served) -> None:
    control = quiet.client()
    by_agent, by_event, by_both = quiet.raw(), quiet.raw(), quiet.raw()
    rid_agent, data = _subscribe(by_agent, {"agent": "a"})
    assert data["filters"] == {"agent": "a"}
    rid_event, data = _subscribe(by_event, {"type": "agent_started"})  # legacy alias
    assert data["filters"] == {"event_name": "agent_started"}
    rid_both, _ = _subscribe(by_both, {"agent": "a", "event_name": "agent_started"})
    _run_once(control, "b")  # first b, then a: a broken filter shows b's events first
    _run_once(control, "a")
    only_a = []
    while not only_a or only_a[-1]["event_name"] != "agent_terminated":
        only_a.append(_next_event(by_agent, rid_agent, agents_only=True))
    assert {e["agent"] for e in only_a} == {"a"}
    assert only_a[0]["event_name"] == "agent_started"
    starts = [_next_event(by_event, rid_event) for _ in range(2)]
    assert [(e["agent"], e["event_name"]) for e in starts] == [
        ("b", "agent_started"),
        ("a", "agent_started"),
    ]
    first = _next_event(by_both, rid_both, agents_only=True)
    assert (first["agent"], first["event_name"]) == ("a", "agent_started")


def test_after_seq_replays_then_streams_without_gaps_or_repeats(
    quiet: Served,
) -> None:
    control = quiet.client()
    begin = _last_seq(control)
    stop = threading.Event()
    failure: list[BaseException] = []

    def churn() -> None:
        client = quiet.client()
        try:
            while not stop.is_set():
                _run_once(client, "a")
        except BaseException as exc:  # reported below
            failure.append(exc)

    churner = threading.Thread(target=churn)
    churner.start()
    subs: list[tuple[RawConn, str, int, int]] = []
    try:
        # Subscribe several times while events are being made, each replaying from
        # an earlier point: the backlog and the live stream must join exactly.
        for replay_from in (1, begin, begin + 3):
            floor = replay_from + 6
            assert wait_until(lambda f=floor: _last_seq(control) >= f, 10)
            conn = quiet.raw()
            rid, data = _subscribe(conn, {"after_seq": replay_from})
            assert data["filters"] == {"after_seq": replay_from}
            subs.append((conn, rid, replay_from, data["backlog"]))
    finally:
        stop.set()
        churner.join(15)
    assert not churner.is_alive() and not failure, failure
    end = _last_seq(control)
    for conn, rid, replay_from, backlog in subs:
        events = _events_until(conn, rid, end)
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(replay_from + 1, end + 1)), (replay_from, seqs)
        assert backlog >= 6  # it did replay stored events first
        stored = control.history(after_seq=replay_from, last=10_000)["events"]
        assert events == stored


def test_after_seq_zero_replays_everything_and_a_future_seq_nothing(
    quiet: Served,
) -> None:
    control = quiet.client()
    everything = control.history(last=10_000)["events"]
    end = everything[-1]["seq"]
    full, future = quiet.raw(), quiet.raw()
    rid_full, data = _subscribe(full, {"after_seq": 0})
    assert data["backlog"] == len(everything)
    assert _events_until(full, rid_full, end) == everything
    _, data = _subscribe(future, {"after_seq": end + 1000})
    assert data["backlog"] == 0
    _run_once(control, "a")
    # After the replay, the live stream goes on from the very next record.
    full_next = _next_event(full, rid_full)
    assert full_next["seq"] == end + 1
    ps = future.reply("ps")  # the future subscriber got no event: this is next
    assert ps["status"] == "success"


def test_a_subscriber_connection_still_answers_commands(quiet: Served) -> None:
    sub = quiet.raw()
    rid, _ = _subscribe(sub, {"agent": "nobody"})
    payload = sub.reply("status", "w")
    assert payload["data"]["lifecycle_state"] == "READY"
    assert payload["request_id"] != rid


def test_bad_subscribe_filters_are_400_and_nothing_streams(quiet: Served) -> None:
    conn = quiet.raw()
    for filters in ({"last": 3}, {"agent": 5}, {"after_seq": "x"}, "{oops", [1]):
        payload = conn.reply("subscribe", filters)
        assert payload["code"] == 400, (filters, payload)
    assert conn.reply("subscribe", {}, {})["code"] == 400  # too many arguments
    _run_once(quiet.client(), "a")
    assert conn.reply("ps")["status"] == "success"  # no EVENT line came first


def test_a_closed_subscriber_does_not_disturb_the_others(quiet: Served) -> None:
    gone = quiet.raw()
    _subscribe(gone)
    gone.close()
    stays = quiet.raw()
    rid, _ = _subscribe(stays, {"agent": "a"})
    control = quiet.client()
    _run_once(control, "a")
    assert _next_event(stays, rid, agents_only=True)["event_name"] == "agent_started"
    assert control.ps()["agents"]


def test_client_subscribe_replays_with_after_seq(quiet: Served) -> None:
    everything = quiet.client().history(last=10_000)["events"]
    client = quiet.client()
    replayed = list(client.subscribe(after_seq=0, idle_timeout=0.5))
    assert replayed == everything


def test_client_subscribe_streams_live_events(quiet: Served) -> None:
    stop = threading.Event()
    failure: list[BaseException] = []

    def churn() -> None:  # until told to stop: the subscription starts lazily
        client = quiet.client()
        try:
            while not stop.is_set():
                _run_once(client, "a")
                _run_once(client, "b")
        except BaseException as exc:  # reported below
            failure.append(exc)

    churner = threading.Thread(target=churn)
    churner.start()
    try:
        stream = quiet.client().subscribe(
            agent="b", event_name="agent_terminated", idle_timeout=5
        )
        events = [next(stream), next(stream)]
        stream.close()
    finally:
        stop.set()
        churner.join(15)
    assert not churner.is_alive() and not failure, failure
    assert [(e["agent"], e["event_name"]) for e in events] == [
        ("b", "agent_terminated")
    ] * 2
    assert events[0]["seq"] < events[1]["seq"]


def test_subscribers_get_the_shutdown_record_then_eof(quiet: Served) -> None:
    conn = quiet.raw()
    rid, _ = _subscribe(conn)
    quiet.orchestrator.shutdown(timeout=2.0)
    names = []
    while True:
        line = conn.read_line()
        if line is None:
            break
        message = json.loads(line)
        assert message["payload"]["request_id"] == rid
        names.append(message["payload"]["event"]["event_name"])
    assert names[-1] == "SHUTDOWN"
    assert "agent_terminated" in names  # w stopped during the shutdown
