"""The audit trail: actions over the socket and through ``run_command`` become
OPERATOR_ACTION events (who, from where, what, the result); reads do not."""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any

import pytest

from pyorchestrate import Orchestrator, OrchestratorEvent
from pyorchestrate.core.control.client import ControlClient
from pyorchestrate.core.errors import (
    AgentNotFound,
    CommandFailed,
    CommandForbidden,
    UnknownCommand,
)
from pyorchestrate.core.events import Severity, severity_of
from pyorchestrate.testing import wait_until
from tests.agents import agent

from .conftest import Serve, Served

pytestmark = pytest.mark.timeout(60)


def _actions(served: Served) -> list[dict[str, Any]]:
    return [
        record.to_dict()
        for record in served.orchestrator.events(
            event_name=OrchestratorEvent.OPERATOR_ACTION.value
        )
    ]


def _served(serve: Serve, **config: Any) -> Served:
    served = serve(agents=[(agent("forever", "thread"), "worker")], **config)
    served.wait_state("worker", "RUNNING", "READY")
    return served


def test_an_action_over_the_socket_is_recorded_with_its_sender_and_actor(
    serve: Serve,
) -> None:
    served = _served(serve)
    with ControlClient(served.path, sender="web", meta={"actor": "alice"}) as client:
        client.call("ps")
        client.call("status", "worker")
        reply = client.call("restart", "worker")
    served.wait_state("worker", "RUNNING", "READY")
    actions = _actions(served)
    assert len(actions) == 1, actions  # ps and status only read
    record = actions[0]
    assert record["agent"] == "worker"
    assert record["severity"] == "INFO"
    data = record["data"]
    assert data["action"] == "restart"
    assert data["source"] == "web"
    assert data["actor"] == "alice"
    assert data["ok"] == "True"
    assert data["result"] == reply["message"]


def test_a_refused_action_is_recorded_as_failed_and_still_answered(
    serve: Serve,
) -> None:
    served = _served(serve)
    with ControlClient(served.path, sender="cli") as client:
        payload = client.request("start", "worker", meta={"actor": "bob"})
    assert payload["status"] == "error" and payload["code"] == 409
    (record,) = _actions(served)
    assert record["severity"] == "WARNING"
    assert record["data"]["ok"] == "False"
    assert record["data"]["actor"] == "bob"
    assert record["data"]["result"] == payload["error"]


def test_an_unknown_agent_is_not_an_action(serve: Serve) -> None:
    served = _served(serve)
    with ControlClient(served.path, sender="cli") as client:
        payload = client.request("restart", "nobody")
    assert payload["code"] == 404
    actions = _actions(served)
    assert [a["data"]["ok"] for a in actions] == ["False"]
    assert actions[0]["agent"] is None and actions[0]["data"]["target"] == "nobody"


def test_record_action_keeps_an_outside_action_and_its_meta(serve: Serve) -> None:
    served = _served(serve)
    with ControlClient(served.path, sender="telegram") as client:
        client.call(
            "record-action",
            {
                "action": "mute",
                "agent": "worker-*",
                "result": "muted for 1 h",
                "actor": "@alice",
                "chat": 4242,
                "nested": {"dropped": True},
                "Bad Key": 1,
            },
        )
        bad = client.request("record-action", {"agent": "worker"})
        wrong = client.request("record-action", {"action": "ack", "ok": "yes"})
    assert bad["code"] == 400 and "'action'" in bad["error"]
    assert wrong["code"] == 400 and "'ok'" in wrong["error"]
    (record,) = _actions(served)
    assert record["agent"] is None  # a glob, not an agent: kept as target
    assert record["data"] == {
        "action": "mute",
        "source": "telegram",
        "actor": "@alice",
        "ok": "True",
        "result": "muted for 1 h",
        "target": "worker-*",
        "chat": "4242",
    }


def test_read_only_presets_do_not_allow_record_action(serve: Serve) -> None:
    served = _served(serve, allowed_commands="read_only")
    with ControlClient(served.path, sender="web") as client:
        payload = client.request("record-action", {"action": "mute"})
    assert payload["code"] == 403
    assert _actions(served) == []


def test_run_command_checks_like_the_socket_and_records_the_caller(
    serve: Serve,
) -> None:
    served = _served(serve, allowed_commands=["ps", "restart", "status"])
    orchestrator = served.orchestrator
    seen: list[dict[str, Any]] = []
    done = threading.Event()

    def on_action(**kwargs: Any) -> None:
        seen.append(kwargs)
        done.set()

    orchestrator.register_event(OrchestratorEvent.OPERATOR_ACTION, on_action)
    rows = orchestrator.run_command("ps")["agents"]
    assert [row["name"] for row in rows] == ["worker"]
    with pytest.raises(CommandForbidden):
        orchestrator.run_command("stop", "worker", source="telegram")
    with pytest.raises(CommandForbidden):  # the caller's own, narrower set
        orchestrator.run_command("restart", "worker", allowed={"ps"})
    with pytest.raises(UnknownCommand):
        orchestrator.run_command("restart")
    with pytest.raises(UnknownCommand):
        orchestrator.run_command("launch", "worker")
    with pytest.raises(AgentNotFound):
        orchestrator.run_command("status", "nobody")
    data = orchestrator.run_command(
        " Restart ", "worker", source="telegram", actor="@alice", meta={"chat": 7}
    )
    assert "worker" in data["message"]
    assert done.wait(5)
    assert seen[0]["action"] == "restart"
    assert seen[0]["source"] == "telegram"
    assert seen[0]["actor"] == "@alice"
    assert seen[0]["ok"] is True
    assert seen[0]["agent_name"] == "worker"
    assert seen[0]["record"].data["chat"] == "7"
    assert [a["data"]["action"] for a in _actions(served)] == ["restart"]


def test_run_command_turns_an_unexpected_error_into_command_failed(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = _served(serve)
    orchestrator = served.orchestrator

    def broken(name: str) -> str:
        raise OSError("disk on fire")

    monkeypatch.setattr(orchestrator, "stop_agent", broken)
    with pytest.raises(CommandFailed, match="OSError: disk on fire"):
        orchestrator.run_command("stop", "worker")
    with ControlClient(served.path, sender="cli") as client:  # the socket: the same
        payload = client.request("stop", "worker")
    assert payload["code"] == 500 and payload["error"] == "OSError: disk on fire"
    failed = [a["data"] for a in _actions(served)]  # a crashed action is recorded too
    assert [(d["action"], d["ok"], d["result"]) for d in failed] == [
        ("stop", "False", "OSError: disk on fire"),
        ("stop", "False", "OSError: disk on fire"),
    ]


def test_run_command_refuses_the_streaming_commands() -> None:
    orchestrator = Orchestrator("audit-streams")
    try:
        with pytest.raises(UnknownCommand, match="streams"):
            orchestrator.run_command("subscribe")
    finally:
        orchestrator.shutdown()


def test_severity_of_an_action_follows_its_outcome() -> None:
    event = OrchestratorEvent.OPERATOR_ACTION
    assert severity_of(event, {"ok": True}) is Severity.INFO
    assert severity_of(event, {"ok": False}) is Severity.WARNING


def test_the_cli_names_its_user_and_history_shows_the_action(
    serve: Serve,
) -> None:
    served = _served(serve)
    cli = [sys.executable, "-m", "pyorchestrate"]
    where = ["--socket", served.path]
    env_user = {"USER": "carol", "LOGNAME": "carol", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [*cli, "restart", "worker", *where],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env_user,
    )
    assert done.returncode == 0, done.stderr
    assert wait_until(lambda: len(_actions(served)) == 1, 5)
    assert _actions(served)[0]["data"]["actor"] == "carol"
    shown = subprocess.run(
        [*cli, "history", "--event", "operator_action", *where],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**env_user, "COLUMNS": "200"},
    )
    assert shown.returncode == 0, shown.stderr
    assert "restart by carol (cli)" in shown.stdout
