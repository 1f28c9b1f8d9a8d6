"""The alert rules as objects: a rule of one's own in the chain, and one Mute model."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifiers import Notification, Severity
from notifiers.pipeline import (
    Alert,
    AlertPipeline,
    AlertRule,
    PipelineConfig,
    default_rules,
    detect_flapping,
    drop_muted,
    group_alerts,
)
from notifiers.state import NotifierState
from pyorchestrate.testing import FakeClock

OFF = {"dedup_window": None, "group_window": None, "flap_threshold": None}


def alert(agent: str, event: str = "agent_error", error: str = "boom") -> Notification:
    return Notification(
        f"{agent} {event}", "", Severity.ERROR, agent=agent, event=event, error=error
    )


class DropCanaries(AlertRule):
    """A rule of one's own: alerts of canary agents are counted, not sent."""

    def __init__(self) -> None:
        self.seen: list[Alert] = []
        self.dropped = 0

    def __call__(self, alert: Alert) -> bool:
        self.seen.append(alert)
        if (alert.notification.agent or "").startswith("canary-"):
            self.dropped += 1
            return True
        return False


def test_a_rule_of_ones_own_takes_alerts_after_the_built_in_ones() -> None:
    clock = FakeClock()
    canaries = DropCanaries()
    pipeline = AlertPipeline(
        {"group_window": 60}, clock=clock, rules=[*default_rules(), canaries]
    )
    assert pipeline.offer(alert("canary-1")) == []
    assert pipeline.offer(alert("canary-1", "agent_fatal")) == []
    [sent] = pipeline.offer(alert("worker", "agent_fatal"))
    assert sent.agent == "worker"
    assert canaries.dropped == 2
    # The second error of a group is taken by group_alerts: the rule never sees it;
    # the summary at the window's end goes through it, marked as the rules' own.
    pipeline.offer(alert("worker-2"))
    pipeline.offer(alert("worker-2", error="bang"))
    assert [a.notification.agent for a in canaries.seen] == [
        "canary-1",
        "canary-1",
        "worker",
        "worker-2",
    ]
    clock.advance(61)
    [summary] = pipeline.due()
    assert "×2" in summary.title  # noqa: RUF001
    assert canaries.seen[-1].synthesized and canaries.seen[-1].final
    assert pipeline.stats().sent == 3  # FATAL, the first error of the group, summary


def test_a_plain_callable_is_a_rule_and_the_order_is_the_lists() -> None:
    calls: list[str] = []

    def first(alert: Alert) -> bool:
        calls.append("first")
        return alert.notification.severity < Severity.ERROR

    class Last(AlertRule):
        sees_taken = True  # sees what an earlier rule took, too

        def __call__(self, alert: Alert) -> bool:
            calls.append(f"last taken={alert.taken}")
            return False

    pipeline = AlertPipeline(OFF, rules=[first, *default_rules(), Last()])
    info = Notification("note", "", Severity.INFO, agent="a", event="agent_started")
    assert pipeline.offer(info) == []
    assert pipeline.offer(alert("a")) != []
    assert calls == ["first", "last taken=True", "first", "last taken=False"]


def test_rules_run_in_the_given_order_with_no_defaults() -> None:
    """Only the rules given run: no grouping here, although the config groups."""
    pipeline = AlertPipeline(PipelineConfig(), rules=[detect_flapping()])
    sent = [pipeline.offer(alert("w")) for _ in range(3)]
    assert [len(s) for s in sent] == [1, 1, 1]  # group_alerts would have taken 2
    assert isinstance(default_rules()[-1], AlertRule)


def test_muted_goes_to_drop_muted_when_rules_are_given() -> None:
    with pytest.raises(TypeError, match="drop_muted"):
        AlertPipeline(rules=[group_alerts()], muted=lambda agent, event: True)
    pipeline = AlertPipeline(
        OFF, rules=[drop_muted(lambda agent, event: agent == "noisy")]
    )
    assert pipeline.offer(alert("noisy")) == []
    assert pipeline.stats().muted == 1


# ------------------------------------------------------------------ one Mute model


def test_one_mute_model_for_the_rules_and_the_state_file(tmp_path: Path) -> None:
    import notifiers.pipeline
    import notifiers.state

    assert notifiers.pipeline.Mute is notifiers.state.Mute
    with NotifierState(tmp_path / "state.sqlite3") as state:
        # What `pyorchestrate notify mute --agent 'worker-*'` writes.
        state.mute("agent", "worker-*", duration=3600, reason="deploy")
        state.mute("channel", "telegram", duration=3600)
        from_file = state.mutes()
    assert {m.kind for m in from_file} == {"agent", "channel"}
    pipeline = AlertPipeline(OFF)
    pipeline.state.mutes.extend(from_file)
    assert pipeline.offer(alert("worker-3")) == []  # the agent mute holds
    # A channel mute cannot hold in the rules (no channel there): sent.
    [sent] = pipeline.offer(alert("db"))
    assert sent.agent == "db"
    assert pipeline.stats().muted == 1
    # ... and a mute made by the pipeline reads like one from the file.
    mute = pipeline.mute("db", "agent_error", seconds=60, reason="x")
    assert (mute.kind, mute.value, mute.reason) == ("agent", "db", "x")
    assert mute.matches(agent="db", event="AGENT_ERROR")  # events ignore case
    assert not mute.matches(agent="db", event="agent_ready")


def test_the_rules_load_no_state_file_code() -> None:
    """Without a state file no state-file code runs on an alert's way: the rules
    load the Mute model alone (checked in a fresh interpreter)."""
    import subprocess
    import sys

    code = """
import sys
from notifiers import Notification, Severity
from notifiers.pipeline import AlertPipeline
pipeline = AlertPipeline()
pipeline.mute("worker-*", seconds=60)
for agent in ("worker-1", "db"):
    pipeline.offer(Notification("t", "", Severity.ERROR, agent=agent, event="agent_error"))
pipeline.flush()
print(sorted(m for m in sys.modules if m == "sqlite3" or m.startswith("notifiers.state")))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert (
        result.stdout.split("\n")[-2] == "['notifiers.state', 'notifiers.state._mute']"
    )
