"""Agents as Ray actors, on a real local Ray cluster (tests/ray/conftest.py).

Every orchestrator here connects to the session's cluster with ``ray_address``; the
cluster is never stopped by a test, only the orchestrator's connection.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest

from pyorchestrate import Orchestrator, OrchestratorEvent
from pyorchestrate.core.agent.ray_backend import RayAgent
from pyorchestrate.core.errors import ConfigError
from pyorchestrate.core.utilities.messaging import MessageChannel, MessageType
from pyorchestrate.testing import EventRecorder, wait_until
from tests.agents import SlowProcess

from .agents import Counter, Failing, LongCycle, Once, Stubborn, Ticker
from .conftest import Cluster

E = OrchestratorEvent


@contextmanager
def running(
    address: str, *, recorder: EventRecorder | None = None, **config: Any
) -> Iterator[Orchestrator]:
    """An orchestrator on the session's cluster, shut down at the end."""
    settings: dict[str, Any] = {
        "enable_command_interface": False,
        "logs_dir": None,
        "ray_address": address,
        **config,
    }
    orch = Orchestrator(Orchestrator.Config(**settings))
    if recorder is not None:
        recorder.attach(orch)
    try:
        yield orch
    finally:
        orch.shutdown()


def payloads(channel: MessageChannel) -> list[dict[str, Any]]:
    return [m.payload for m in channel.drain(0.5) if m.type is MessageType.DATA]


def test_an_agent_class_runs_unchanged_in_an_actor(ray_address: str) -> None:
    """Config, setup, cycle, on_close and send_message of a looping agent, then a
    normal end: the events of any other agent, READY from the actor, in order."""
    rec = EventRecorder()
    channel = MessageChannel()
    with running(ray_address, recorder=rec) as orch:
        orch.register_agent(
            Counter, "count", {"limit": 3}, msg_channel=channel, backend="ray"
        )
        orch.start()
        rec.wait_for(E.AGENT_TERMINATED, "count", timeout=30)
        entry = orch.get_agent("count")
        assert entry.flavour == "ray"
        assert isinstance(entry.agent, RayAgent)
        node = entry.agent.node
    names = [n for n in rec.names("count") if n != "agent_heartbeat"]
    assert names == [
        "agent_registered",
        "agent_started",
        "agent_ready",
        "agent_terminated",
    ]
    data = payloads(channel)
    assert data[0]["setup"] != os.getpid()  # set up in the actor's process
    assert data[1:] == [{"cycle": 1}, {"cycle": 2}, {"cycle": 3}, {"closed": 3}]
    ready = rec.of(E.AGENT_READY, "count")[0]
    assert ready["pid"] == data[0]["setup"]
    assert node == "127.0.0.1" and ready["node"] == "127.0.0.1"
    assert rec.of(E.AGENT_TERMINATED, "count")[0]["termination_status"] == "success"


def test_periodic_and_one_shot_agents_run_on_ray(ray_address: str) -> None:
    rec = EventRecorder()
    ticks = MessageChannel()
    once = MessageChannel()
    with running(ray_address, recorder=rec, backend="ray") as orch:
        orch.register_agent(Ticker, "tick", {"interval": 0.05}, msg_channel=ticks)
        orch.register_agent(Once, "once", msg_channel=once, value=7)
        orch.start()
        rec.wait_for(E.AGENT_TERMINATED, "once", timeout=30)
        assert wait_until(
            lambda: sum("tick" in p for p in payloads(ticks)) >= 1, timeout=10
        )
    assert payloads(once) == [{"did": 7}]


def test_an_exception_in_cycle_is_an_error_with_its_traceback_then_a_restart(
    ray_address: str,
) -> None:
    rec = EventRecorder()
    supervision = {"restart": "on-failure", "max_restarts": 1, "backoff_initial": 0.05}
    with running(ray_address, recorder=rec) as orch:
        orch.register_agent(
            Failing, "fail", supervision=supervision, backend="ray", fail_at=2
        )
        orch.start()
        rec.wait_for(E.AGENT_FATAL, "fail", timeout=30)
    errors = rec.of(E.AGENT_ERROR, "fail")
    assert len(errors) == 2
    first = errors[0]
    assert first["reason"] == "exception"
    assert first["error_type"] == "ValueError"
    assert "cycle 2 failed on purpose" in first["error_message"]
    assert "tests/ray/agents.py" in first["traceback"]
    assert (
        'raise ValueError(f"cycle {self.done} failed on purpose")' in first["traceback"]
    )
    names = [n for n in rec.names("fail") if n != "agent_heartbeat"]
    assert names[1:] == [
        "agent_started",
        "agent_ready",
        "agent_error",
        "agent_terminated",
        "agent_restarting",
        "agent_started",
        "agent_ready",
        "agent_error",
        "agent_terminated",
        "agent_fatal",
    ]


def test_a_constructor_that_raises_in_the_actor_is_a_remote_traceback(
    ray_address: str,
) -> None:
    from .agents import BadInit

    rec = EventRecorder()
    with running(ray_address, recorder=rec) as orch:
        orch.register_agent(BadInit, "bad", backend="ray")
        orch.start()
        rec.wait_for(E.AGENT_TERMINATED, "bad", timeout=30)
        assert orch.get_agent("bad").state.value == "FAILED"
    error = rec.of(E.AGENT_ERROR, "bad")[0]
    assert error["reason"] == "exception"
    assert error["error_type"] == "RuntimeError"
    assert "no constructor for you" in error["error_message"]
    assert "tests/ray/agents.py" in error["traceback"]


def test_sigkill_of_the_worker_is_process_lost_then_a_restart(
    ray_address: str, ray_cluster: Cluster
) -> None:
    rec = EventRecorder()
    supervision = {"restart": "always", "backoff_initial": 0.05}
    with running(ray_address, recorder=rec) as orch:
        orch.register_agent(Counter, "victim", supervision=supervision, backend="ray")
        orch.start()
        ready = rec.wait_for(E.AGENT_READY, "victim", timeout=30)
        worker = ready["pid"]
        assert psutil.Process(worker).pid in {p.pid for p in ray_cluster.workers()}
        os.kill(worker, signal.SIGKILL)
        error = rec.wait_for(E.AGENT_ERROR, "victim", timeout=30)
        again = rec.wait_for(E.AGENT_READY, "victim", count=2, timeout=30)
    assert error["reason"] == "process_lost"
    assert error["node"] == "127.0.0.1"
    assert "worker process died" in error["error_message"]
    assert again["generation_id"] == 2
    assert again["pid"] != worker
    names = [n for n in rec.names("victim") if n != "agent_heartbeat"]
    i = names.index("agent_error")
    assert names[i : i + 5] == [
        "agent_error",
        "agent_terminated",
        "agent_restarting",
        "agent_started",
        "agent_ready",
    ]


def test_a_stop_during_a_long_cycle_ends_it_cooperatively(ray_address: str) -> None:
    """stop() reaches the actor while run() is busy (max_concurrency): the agent's
    on_stop wakes its cycle, which finishes; no kill, no error."""
    rec = EventRecorder()
    channel = MessageChannel()
    with running(ray_address, recorder=rec) as orch:
        orch.register_agent(LongCycle, "long", msg_channel=channel, backend="ray")
        orch.start()
        rec.wait_for(E.AGENT_READY, "long", timeout=30)
        seen: list[dict[str, Any]] = []
        assert wait_until(
            lambda: seen.extend(payloads(channel)) or {"long_cycle": "begins"} in seen,
            timeout=10,
        )
        orch.stop_agent("long")
        done = rec.wait_for(E.AGENT_TERMINATED, "long", timeout=20)
    assert done["termination_status"] == "success"
    assert not rec.of(E.AGENT_ERROR, "long")
    assert {"long_cycle": "ends", "woken": True} in seen + payloads(channel)


def test_an_agent_that_ignores_its_stop_is_killed_after_kill_timeout(
    ray_address: str,
) -> None:
    rec = EventRecorder()
    supervision = {"stop_timeout": 0.3, "kill_timeout": 0.3}
    with running(ray_address, recorder=rec) as orch:
        orch.register_agent(Stubborn, "mule", supervision=supervision, backend="ray")
        orch.start()
        rec.wait_for(E.AGENT_READY, "mule", timeout=30)
        orch.stop_agent("mule")
        rec.wait_for(E.AGENT_TERMINATED, "mule", timeout=20)
        assert orch.lifecycle.ray.named_actors() == []
    error = rec.of(E.AGENT_ERROR, "mule")[0]
    assert error["reason"] == "killed"
    assert "ray.kill" in error["error_message"]


def test_shutdown_leaves_no_named_actor_and_no_worker(
    ray_address: str, ray_cluster: Cluster
) -> None:
    rec = EventRecorder()
    with running(ray_address, recorder=rec) as orch:
        orch.register_agent(Counter, "a", backend="ray")
        orch.register_agent(LongCycle, "b", backend="ray")
        orch.start()
        rec.wait_for(E.AGENT_READY, "a", timeout=30)
        rec.wait_for(E.AGENT_READY, "b", timeout=30)
        backend = orch.lifecycle.ray
        assert backend.named_actors() == ["a:1", "b:1"]
        pids = {e["pid"] for e in rec.of(E.AGENT_READY)}
    assert not backend.connected  # the connection went with the orchestrator
    assert wait_until(
        lambda: not pids & {p.pid for p in ray_cluster.workers()}, timeout=10
    )
    import ray

    ray.init(address=ray_address, configure_logging=False)
    try:
        named = ray.util.list_named_actors(all_namespaces=True)
    finally:
        ray.shutdown()
    assert [a for a in named if a["namespace"] == backend.namespace] == []


def test_a_process_agent_waits_for_a_ray_agent_to_be_ready(ray_address: str) -> None:
    rec = EventRecorder()
    with running(ray_address, recorder=rec) as orch:
        orch.register_agent(LongCycle, "base", backend="ray")
        orch.register_agent(SlowProcess, "top", duration=0.1)
        orch.add_dependency("top", "base")
        orch.start()
        assert orch.get_agent("top").state.value == "QUEUED"
        rec.wait_for(E.AGENT_TERMINATED, "top", timeout=30)
        base_ready = rec.of(E.AGENT_READY, "base")[0]
        top_started = rec.of(E.AGENT_STARTED, "top")[0]
    assert base_ready["seq"] < top_started["seq"]


def test_bad_ray_settings_name_the_field(ray_address: str) -> None:
    with running(ray_address) as orch:
        with pytest.raises(ConfigError, match=r"ray_options\.num_cpus"):
            orch.register_agent(
                Counter, "x", backend="ray", ray_options={"num_cpus": -1}
            )
        with pytest.raises(ConfigError, match=r"ray_options\.num_cpu\b.*num_cpus"):
            orch.register_agent(Counter, "x", backend="ray", ray_options={"num_cpu": 1})
        with pytest.raises(ConfigError, match=r"ray_options\.lifetime.*not supported"):
            orch.register_agent(
                Counter, "x", backend="ray", ray_options={"lifetime": "detached"}
            )
        with pytest.raises(ConfigError, match=r"backend"):
            orch.register_agent(Counter, "x", backend="raay")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=r"ray_options.*backend='ray'"):
            orch.register_agent(Counter, "x", ray_options={"num_cpus": 1})
        assert "x" not in orch.agents
    with pytest.raises(ConfigError, match="ray_address"):
        Orchestrator.Config(ray_address="")


def test_ray_address_auto_finds_the_cluster_from_ray_address_env(
    ray_address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_ADDRESS", ray_address)
    rec = EventRecorder()
    with running("auto", recorder=rec) as orch:
        orch.register_agent(Once, "once", backend="ray")
        orch.start()
        rec.wait_for(E.AGENT_TERMINATED, "once", timeout=30)
        assert not orch.lifecycle.ray.owned_cluster


def test_nothing_ray_started_listens_beyond_loopback(
    ray_address: str, ray_cluster: Cluster
) -> None:
    with running(ray_address) as orch:
        orch.register_agent(LongCycle, "l", backend="ray")
        rec = EventRecorder().attach(orch)
        orch.start()
        rec.wait_for(E.AGENT_READY, "l", timeout=30)
        pids = {p.pid for p in ray_cluster.processes()} | {os.getpid()}
        listening = [
            (c.laddr.ip, c.laddr.port, c.pid)
            for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.pid in pids
        ]
    assert listening  # the check saw Ray's sockets
    loopback = ("127.", "::1", "::ffff:127.")
    assert [x for x in listening if not x[0].startswith(loopback)] == []


def test_an_owned_local_cluster_starts_and_stops_with_the_orchestrator(
    tmp_path: Path,
) -> None:
    """No ray_address: the orchestrator starts a cluster of its own on 127.0.0.1
    and ends it at shutdown (in a child process: one Ray connection per process)."""
    script = tmp_path / "owned.py"
    script.write_text(
        textwrap.dedent(
            """
            import psutil
            from pyorchestrate import Orchestrator, OrchestratorEvent
            from pyorchestrate.testing import EventRecorder
            from tests.ray.agents import Once

            orch = Orchestrator(Orchestrator.Config(
                enable_command_interface=False, logs_dir=None, ray_num_cpus=1))
            rec = EventRecorder().attach(orch)
            orch.register_agent(Once, "once", backend="ray", value=5)
            orch.start()
            rec.wait_for(OrchestratorEvent.AGENT_TERMINATED, "once", timeout=60)
            me = psutil.Process()
            during = len(me.children(recursive=True))
            owned = orch.lifecycle.ray.owned_cluster
            orch.shutdown()
            left = [p.name() for p in psutil.wait_procs(
                me.children(recursive=True), timeout=10)[1]]
            print("RESULT", owned, during, left)
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        cwd=tmp_path,
    )
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT")]
    assert line, done.stdout + done.stderr
    _, owned, during, left = line[0].split(" ", 3)
    assert owned == "True"
    assert int(during) >= 3  # gcs, raylet, the worker...
    assert left == "[]"


def test_a_node_death_is_node_lost_and_its_alert_says_so() -> None:
    """Ray's own ActorDiedError, as its GCS words a node's death, and a worker's."""
    from ray.core.generated.common_pb2 import ActorDiedErrorContext
    from ray.exceptions import ActorDiedError

    from notifiers.templates import render
    from pyorchestrate.core.agent.ray_backend import describe_death

    def died(message: str) -> ActorDiedError:
        return ActorDiedError(
            ActorDiedErrorContext(
                error_message=message,
                actor_id=b"\x01" * 16,
                class_name="AgentHost",
                node_ip_address="10.0.0.7",
                pid=4242,
            )
        )

    reason, text = describe_death(
        died("The actor died because its node has died. Node Id: 3f2a")
    )
    assert reason == "node_lost"
    assert text.startswith("its Ray node died")
    worker = died("The actor is dead because its worker process has died.")
    assert describe_death(worker)[0] == "process_lost"

    note = render(
        {
            "event": E.AGENT_ERROR,
            "agent_name": "edge",
            "error_message": text,
            "reason": reason,
            "node": "10.0.0.7",
            "pid": 4242,
            "generation_id": 3,
        }
    )
    assert "its Ray node died" in note.body
    assert "reason: node_lost, on Ray node 10.0.0.7, start #3" in note.body


def test_ps_and_status_show_where_ray_agents_run(
    ray_address: str, short_tmp: Path
) -> None:
    from pyorchestrate.core.control.client import ControlClient
    from tests.agents import ForeverThread
    from tests.cli._support import invoke_cli

    socket = short_tmp / "o.sock"
    rec = EventRecorder()
    with running(
        ray_address,
        recorder=rec,
        enable_command_interface=True,
        command_socket_path=str(socket),
    ) as orch:
        orch.register_agent(
            LongCycle, "remote", backend="ray", ray_options={"num_cpus": 1}
        )
        orch.register_agent(ForeverThread, "local")
        orch.start()
        ready = rec.wait_for(E.AGENT_READY, "remote", timeout=30)
        rec.wait_for(E.AGENT_READY, "local", timeout=10)
        with ControlClient(socket) as client:
            rows = {row["name"]: row for row in client.ps()["agents"]}
            status = client.status("remote")
        table = invoke_cli("ps", "--socket", str(socket)).stdout
        shown = invoke_cli("status", "remote", "--socket", str(socket)).stdout
    assert rows["remote"]["node"] == "127.0.0.1"
    assert rows["remote"]["pid"] == ready["pid"]
    assert "node" not in rows["local"]
    assert status["flavour"] == "ray"
    actor = status["ray"]
    assert actor["actor_name"] == "remote:1"
    assert actor["namespace"] == orch.lifecycle.ray.namespace
    assert len(actor["actor_id"]) == 32
    assert actor["node"] == "127.0.0.1" and len(actor["node_id"]) == 56
    assert actor["pid"] == ready["pid"]
    assert actor["resources"] == {"CPU": 1.0}
    header = table.splitlines()[1].split()
    assert header[:4] == ["NAME", "STATE", "PID", "NODE"]
    line = next(x for x in table.splitlines() if x.split()[:1] == ["remote"])
    assert line.split()[1:4] == ["READY", str(ready["pid"]), "127.0.0.1"]
    assert actor["actor_id"] in shown


def test_an_actor_no_node_can_host_times_out_and_is_killed(ray_address: str) -> None:
    """Resources no node has: the actor never starts; the start deadline stops it
    (its stop() waits in vain), ray.kill ends it, and no second error is reported."""
    rec = EventRecorder()
    with running(ray_address, recorder=rec, agent_start_timeout=1.0) as orch:
        orch.register_agent(
            Counter,
            "nowhere",
            backend="ray",
            ray_options={"resources": {"no_such_node": 1}},
            supervision={"kill_timeout": 0.5},
        )
        orch.start()
        rec.wait_for(E.AGENT_TERMINATED, "nowhere", timeout=20)
        entry = orch.get_agent("nowhere")
        assert entry.state.value == "FAILED"
        assert orch.lifecycle.ray.named_actors() == []
    errors = rec.of(E.AGENT_ERROR, "nowhere")
    assert [e["reason"] for e in errors] == ["start_timeout"]
    assert not rec.of(E.AGENT_STARTED, "nowhere")


def test_a_fleet_file_runs_agents_on_ray(ray_address: str, tmp_path: Path) -> None:
    from pyorchestrate.fleet import FleetError, FleetRunner, load_fleet

    path = tmp_path / "fleet.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [orchestrator]
            name = "rayfleet"
            backend = "ray"
            ray_address = "{ray_address}"
            enable_command_interface = false
            logs_dir = "off"

            [agents.remote]
            class = "tests.ray.agents:Once"
            ray_options = {{ num_cpus = 1 }}

            [agents.here]
            class = "tests.agents:SlowThread"
            backend = "local"
            depends_on = ["remote"]
            """
        )
    )
    runner = FleetRunner(load_fleet(path))
    rec = EventRecorder().attach(runner.orchestrator)
    assert runner.run() == 0
    assert rec.of(E.AGENT_READY, "remote")[0]["node"] == "127.0.0.1"
    assert runner.orchestrator.get_agent("remote").flavour == "ray"
    assert runner.orchestrator.get_agent("here").flavour == "thread"

    path.write_text(
        textwrap.dedent(
            """
            [agents.remote]
            class = "tests.ray.agents:Once"
            backend = "ray"
            ray_options = { num_cpus = -1, lifetime = "detached" }

            [agents.cmd]
            command = "true"
            backend = "ray"
            """
        )
    )
    with pytest.raises(FleetError) as caught:
        load_fleet(path)
    where = sorted(p for p, _ in caught.value.errors)
    assert where == [
        "agents.cmd.backend",
        "agents.remote.ray_options.lifetime",
        "agents.remote.ray_options.num_cpus",
    ]


def test_an_address_where_no_cluster_answers_fails_the_agent_fast() -> None:
    """ray.init would retry for minutes: the start says so at once, and each Ray
    agent fails with the reason, not a hang."""
    from .conftest import free_port

    rec = EventRecorder()
    with running(f"127.0.0.1:{free_port()}", recorder=rec) as orch:
        orch.register_agent(Once, "lost", backend="ray")
        orch.start()
        error = rec.wait_for(E.AGENT_ERROR, "lost", timeout=30)
        rec.wait_for(E.AGENT_TERMINATED, "lost", timeout=10)
        assert not orch.lifecycle.ray.connected
    assert error["reason"] == "start_failed"
    assert "no Ray cluster answers there" in error["error_message"]


def test_two_orchestrators_share_the_process_connection(ray_address: str) -> None:
    """One Ray connection per process: the first orchestrator makes it, and it stays
    while the second still runs Ray agents; the last one to shut down ends it."""
    import ray

    first_rec, second_rec = EventRecorder(), EventRecorder()
    with running(ray_address, recorder=second_rec) as second:
        with running(ray_address, recorder=first_rec) as first:
            first.register_agent(Once, "one", backend="ray")
            first.start()  # connects: the connection is the first's
            first_rec.wait_for(E.AGENT_TERMINATED, "one", timeout=30)
            second.register_agent(LongCycle, "two", backend="ray")
            second.start()
            second_rec.wait_for(E.AGENT_READY, "two", timeout=30)
            assert first.lifecycle.ray.owned and not second.lifecycle.ray.owned
        assert ray.is_initialized()  # the first is gone; the second goes on
        second.stop_agent("two")
        done = second_rec.wait_for(E.AGENT_TERMINATED, "two", timeout=20)
    assert done["termination_status"] == "success"
    assert not second_rec.of(E.AGENT_ERROR)
    assert not ray.is_initialized()


def test_heartbeats_feed_the_watchdog_and_a_hung_actor_is_killed(
    ray_address: str,
) -> None:
    rec = EventRecorder()
    watchdog = {"heartbeat_timeout": 1.0, "kill_timeout": 0.3, "stop_timeout": 0.3}
    with running(ray_address, recorder=rec) as orch:
        orch.register_agent(Counter, "beating", supervision=watchdog, backend="ray")
        orch.register_agent(Stubborn, "hung", supervision=watchdog, backend="ray")
        orch.start()
        rec.wait_for(E.AGENT_TERMINATED, "hung", timeout=30)
        assert orch.get_agent("beating").state.value == "READY"
        beats = len(rec.of(E.AGENT_HEARTBEAT, "beating"))
        assert beats >= 1  # its loop beats (every third of the timeout), in batches
        assert orch.lifecycle.ray.named_actors() == ["beating:1"]
    errors = rec.of(E.AGENT_ERROR, "hung")
    assert [e["reason"] for e in errors] == ["watchdog"]
    assert not rec.of(E.AGENT_ERROR, "beating")
