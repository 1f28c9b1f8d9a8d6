"""The event history: one seq, ring buffers, heartbeat buckets, queries, truncation."""

from __future__ import annotations

import itertools
import json

import pytest

from pyorchestrate import OrchestratorEvent, Severity
from pyorchestrate.core.orchestrator import EventHistory
from pyorchestrate.core.utilities.event import EventRecord
from pyorchestrate.testing import EventRecorder
from tests.agents import agent

from .conftest import MakeOrchestrator


def _history(**kwargs: object) -> EventHistory:
    ticks = itertools.count(1_700_000_000)
    mono = itertools.count(1_000)
    return EventHistory(
        clock=lambda: float(next(ticks)),
        mono_ns=lambda: next(mono),
        **kwargs,  # type: ignore[arg-type]
    )


def test_seq_is_dense_and_a_heartbeat_carries_the_seq_before_it() -> None:
    """Issue 12, item 8: heartbeats took numbers the history then dropped (gaps)."""
    history = _history()
    names = [
        "agent_heartbeat",
        "agent_started",
        "agent_heartbeat",
        "agent_ready",
        "agent_heartbeat",
        "agent_heartbeat",
        "agent_heartbeat",
    ]
    records = [history.record(name, agent="a") for name in names]
    records.append(history.record("INIT", category="system"))
    assert [r.seq for r in records] == [0, 1, 1, 2, 2, 2, 2, 3]
    assert history.last_seq == 3
    # Merged across the ring and the heartbeat bucket (the last two beats), oldest
    # first: each heartbeat right after the record whose seq it carries.
    assert [(r.event_name, r.seq) for r in history.last(10)] == [
        ("agent_started", 1),
        ("agent_ready", 2),
        ("agent_heartbeat", 2),
        ("agent_heartbeat", 2),
        ("INIT", 3),
    ]
    assert [r.t_mono_ns for r in history.last(10, event_name="agent_heartbeat")] == [
        records[5].t_mono_ns,
        records[6].t_mono_ns,
    ]
    # What the history holds has no gap in seq, however many heartbeats came.
    for _ in range(50):
        history.record("agent_heartbeat", agent="b")
    history.record("agent_terminated", agent="a")
    held = [r.seq for r in history.last(100) if r.event_name != "agent_heartbeat"]
    assert held == [1, 2, 3, 4]


def test_after_seq_leaves_out_the_record_and_the_heartbeats_that_carry_it() -> None:
    history = _history()
    history.record("agent_started", agent="a")  # 1
    history.record("agent_heartbeat", agent="a")  # carries 1
    history.record("agent_ready", agent="a")  # 2
    history.record("agent_heartbeat", agent="a")  # carries 2
    after = history.last(10, after_seq=1)
    assert [(r.event_name, r.seq) for r in after] == [
        ("agent_ready", 2),
        ("agent_heartbeat", 2),
    ]
    assert history.last(10, after_seq=2) == []
    backlog, unsubscribe = history.subscribe(lambda record: None, after_seq=1)
    unsubscribe()
    assert backlog == after


def test_positions_grow_with_every_record() -> None:
    history = _history()
    names = ["agent_heartbeat", "agent_started", "agent_heartbeat", "agent_heartbeat"]
    names += ["agent_ready", "agent_error", "agent_heartbeat"]
    positions = [history.position(history.record(n, agent="a")) for n in names]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)


def test_record_fields() -> None:
    history = _history()
    record = history.record(
        "agent_error",
        agent="a",
        severity=Severity.ERROR,
        data={"error_message": "boom", "pid": 42, "exit_code": None},
    )
    assert record.category == "orchestrator"
    assert record.severity is Severity.ERROR
    # Values become strings; None is dropped.
    assert record.data == {"error_message": "boom", "pid": "42"}
    assert record.t_wall == 1_700_000_000.0
    assert record.t_mono_ns == 1_000
    as_dict = json.loads(json.dumps(record.to_dict()))
    assert as_dict["seq"] == 1
    assert as_dict["event_name"] == "agent_error"
    assert as_dict["severity"] == "ERROR"
    assert as_dict["timestamp"].startswith("2023-11-")


def test_last_returns_the_newest_n_oldest_first() -> None:
    history = _history()
    for i in range(10):
        history.record(f"e{i}", agent="a")
    assert [r.event_name for r in history.last(3)] == ["e7", "e8", "e9"]
    assert len(history.last(100)) == 10


@pytest.mark.parametrize("n", [0, -1, -100])
def test_last_with_n_not_positive_is_empty(n: int) -> None:
    history = _history()
    history.record("e", agent="a")
    assert history.last(n) == []


def test_last_filters() -> None:
    history = _history()
    history.record("agent_started", agent="a")  # 1
    history.record("agent_started", agent="b")  # 2
    history.record("agent_ready", agent="a")  # 3
    history.record("agent_started", agent="a")  # 4
    history.record("INIT", category="system")  # 5

    assert [r.seq for r in history.last(10, agent="a")] == [1, 3, 4]
    assert [r.seq for r in history.last(10, event_name="agent_started")] == [1, 2, 4]
    assert [r.seq for r in history.last(10, after_seq=3)] == [4, 5]
    started_a = history.last(10, agent="a", event_name="agent_started")
    assert [r.seq for r in started_a] == [1, 4]
    assert [
        r.seq
        for r in history.last(1, agent="a", event_name="agent_started", after_seq=0)
    ] == [4]
    assert history.last(10, agent="nobody") == []
    assert history.latest("b") is not None and history.latest("b").seq == 2  # type: ignore[union-attr]
    assert history.latest().seq == 5  # type: ignore[union-attr]


def test_ring_evicts_at_capacity_but_stats_keep_counting() -> None:
    history = _history(max_events=3)
    for i in range(5):
        history.record("agent_started", agent=f"a{i}")
    kept = history.last(10)
    assert [r.agent for r in kept] == ["a2", "a3", "a4"]
    stats = history.stats()
    assert stats["by_type"] == {"agent_started": 5}
    assert stats["total"] == 5
    assert history.stats("a0")["by_type"] == {"agent_started": 1}
    info = history.capacity_info()
    assert info["stored_events"] == 3
    assert info["evicted_events"] == 2
    assert info["max_events"] == 3
    assert info["last_seq"] == 5


def test_heartbeats_keep_two_per_agent_and_do_not_evict_others() -> None:
    history = _history(max_events=3)
    history.record("agent_error", agent="a", severity=Severity.ERROR)
    for _ in range(5):
        history.record("agent_heartbeat", agent="a")
        history.record("agent_heartbeat", agent="b")
    beats_a = history.last(10, agent="a", event_name="agent_heartbeat")
    beats_b = history.last(10, agent="b", event_name="agent_heartbeat")
    assert len(beats_a) == 2
    assert len(beats_b) == 2
    # The newest two are kept (records 8 and 10 of this history's fake clock).
    assert [r.t_mono_ns for r in beats_a] == [1_007, 1_009]
    assert {r.seq for r in beats_a + beats_b} == {1}
    # The error is still there: heartbeats live apart from the main ring.
    assert [r.event_name for r in history.last(10, agent="a")] == [
        "agent_error",
        "agent_heartbeat",
        "agent_heartbeat",
    ]
    assert history.stats("a")["by_type"] == {"agent_error": 1, "agent_heartbeat": 5}
    info = history.capacity_info()
    assert info["heartbeat_buckets"] == 2
    assert info["stored_heartbeats"] == 4
    assert info["evicted_events"] == 0


def test_a_query_does_not_create_a_bucket() -> None:
    history = _history()
    history.last(10, agent="ghost", event_name="agent_heartbeat")
    history.stats("ghost")
    history.latest("ghost")
    assert history.capacity_info()["heartbeat_buckets"] == 0


def test_a_heartbeat_without_an_agent_has_its_own_bucket() -> None:
    history = _history()
    for _ in range(3):
        history.record("agent_heartbeat")
    assert len(history.last(10, event_name="agent_heartbeat")) == 2


def test_long_data_is_truncated_ending_with_dots() -> None:
    history = _history(payload_bytes=20)
    record = history.record(
        "agent_error", agent="a", data={"error_message": "x" * 100, "short": "ok"}
    )
    text = record.data["error_message"]
    assert text.endswith("...")
    assert len(text.encode()) <= 20
    assert text.startswith("x" * 10)
    assert record.data["short"] == "ok"


def test_data_at_the_limit_is_kept_whole() -> None:
    history = _history(payload_bytes=10)
    record = history.record("e", data={"v": "y" * 10})
    assert record.data["v"] == "y" * 10


def test_truncation_counts_bytes_and_keeps_valid_text() -> None:
    history = _history(payload_bytes=10)
    record = history.record("e", data={"v": "é" * 20})  # 2 bytes each
    text = record.data["v"]
    assert text.endswith("...")
    assert len(text.encode("utf-8")) <= 10
    assert set(text[:-3]) == {"é"}


# ---------------------------------------------------------------- in an orchestrator


def test_orchestrator_records_init_and_shutdown(
    make_orchestrator: MakeOrchestrator, flavour: str
) -> None:
    orchestrator = make_orchestrator("hist")
    orchestrator.register_agent(agent("quick", flavour), "a")
    orchestrator.register_agent(agent("quick", flavour), "b")
    (init,) = orchestrator.events(event_name="INIT")
    assert init.category == "system"
    assert init.data["run_mode"] == "stop_on_empty"
    assert init.seq == 1
    orchestrator.start()
    orchestrator.join()
    (shutdown,) = orchestrator.events(event_name="SHUTDOWN")
    assert shutdown.category == "system"
    assert shutdown.data["total_agents"] == "2"
    assert shutdown.data["surviving_agents"] == "0"
    assert shutdown.seq == orchestrator.history.last_seq  # the last record


def test_orchestrator_events_query(
    make_orchestrator: MakeOrchestrator, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    orchestrator.register_agent(agent("quick", flavour), "a")
    orchestrator.register_agent(agent("boom", flavour), "b")
    orchestrator.start()
    orchestrator.join()
    assert [r.event_name for r in orchestrator.events(agent="a")] == [
        "agent_registered",
        "agent_started",
        "agent_ready",
        "agent_terminated",
    ]
    (error,) = orchestrator.events(agent="b", event_name="agent_error")
    assert error.severity is Severity.ERROR
    assert error.data["error_message"] == "ValueError: boom"
    assert error.data["generation_id"] == "1"
    later = orchestrator.events(after_seq=error.seq)
    assert later and all(r.seq > error.seq for r in later)
    assert len(orchestrator.events(2)) == 2
    assert orchestrator.events(0) == []
    seqs = [r.seq for r in orchestrator.events(1000)]
    assert seqs == sorted(seqs)
    assert all(isinstance(r, EventRecord) for r in orchestrator.events())


def test_orchestrator_truncates_payload_but_callbacks_get_the_full_text(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder
) -> None:
    orchestrator = make_orchestrator(history_payload_bytes=12)
    recorder.attach(orchestrator)
    orchestrator.register_agent(agent("boom", "thread"), "b")
    orchestrator.start()
    orchestrator.join()
    event = recorder.wait_for(OrchestratorEvent.AGENT_ERROR, "b")
    assert event["error_message"] == "ValueError: boom"
    (record,) = orchestrator.events(agent="b", event_name="agent_error")
    assert record.data["error_message"] == "ValueErro..."  # 9 bytes + "..."


def test_orchestrator_history_capacity(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator(history_max_events=3)
    for i in range(5):
        orchestrator.register_agent(agent("quick", "thread"), f"a{i}")
    kept = orchestrator.events(100)
    assert [r.agent for r in kept] == ["a2", "a3", "a4"]
    assert orchestrator.history.stats()["by_type"]["agent_registered"] == 5


def test_orchestrator_keeps_two_heartbeats_per_agent(
    make_orchestrator: MakeOrchestrator, recorder: EventRecorder, flavour: str
) -> None:
    orchestrator = make_orchestrator()
    recorder.attach(orchestrator, [OrchestratorEvent.AGENT_HEARTBEAT])
    orchestrator.register_agent(
        agent("forever", flavour), "beat", custom_config={"heartbeat_interval": 0.01}
    )
    orchestrator.start()
    beat = recorder.wait_for(OrchestratorEvent.AGENT_HEARTBEAT, "beat", count=5)
    assert beat["generation_id"] == 1
    kept = orchestrator.events(100, agent="beat", event_name="agent_heartbeat")
    assert len(kept) == 2
    assert orchestrator.history.stats("beat")["by_type"]["agent_heartbeat"] >= 5
    orchestrator.stop()
    assert orchestrator.join() == []
