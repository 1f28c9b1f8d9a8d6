"""The JSON shapes of an orchestrator's status: what ``ps``, ``status`` and
``Orchestrator.report()`` show, built from a target's snapshots.

Pure functions, one per shape; the keys and their order are the wire contract
(``tests/core/control``, ``tests/cli``). Durations are rounded to milliseconds here,
once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from .target import AgentDetails, AgentSnapshot, OrchestratorSnapshot

__all__ = [
    "build_agent_status",
    "build_agent_summary",
    "build_orchestrator_status",
    "build_report",
]


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def build_agent_summary(agent: AgentSnapshot) -> dict[str, Any]:
    """What ``ps`` shows of one agent: name, class and state, whether it is alive,
    started or queued, pid, uptime, restarts, the last exit code or signal, the time
    to its next try, and its last error; a scheduled agent's next run and last
    result. A Ray agent's row adds its ``node``."""
    row = {
        "name": agent.name,
        "agent_name": agent.name,  # the reference protocol's key for ps rows
        "class_name": agent.class_name,
        "lifecycle_state": agent.state,
        "alive": agent.alive,
        "started": agent.started,
        "in_queue": agent.in_queue,
        "pid": agent.pid,
        "uptime": _rounded(agent.uptime),
        "restarts": max(agent.starts - 1, 0),
        "exit_code": agent.exit_code,
        "signal": agent.signal,
        "next_start_in": _rounded(agent.next_start_in),
        "fatal_reason": agent.fatal_reason,
        "last_error": agent.last_error,
        "next_run": agent.next_run,
        "last_result": agent.last_result,
    }
    if agent.flavour == "ray":
        row["node"] = agent.node
    return row


def build_agent_status(details: AgentDetails) -> dict[str, Any]:
    """One agent's whole state: :func:`build_agent_summary` plus its flavour,
    generation, starts, restart policy and attempt, termination status, dependencies
    and config; a Ray agent's actor (``ray``: name, namespace, id, node, resources)."""
    agent = details.agent
    return {
        **build_agent_summary(agent),
        "flavour": agent.flavour,
        "generation_id": details.generation_id,
        "starts": agent.starts,
        "restart_policy": details.restart_policy,
        "restart_attempt": details.restart_attempt,
        "termination_status": details.termination_status,
        "dependencies": list(details.dependencies),
        "config": details.config,
        **({} if details.ray is None else {"ray": details.ray}),
    }


def build_orchestrator_status(orchestrator: OrchestratorSnapshot) -> dict[str, Any]:
    """What ``status`` (without an agent) shows: the orchestrator, its pool and its
    command interface, in this process."""
    pool = orchestrator.pool
    return {
        "name": orchestrator.name,
        "run_mode": orchestrator.run_mode,
        "total_agents": orchestrator.total_agents,
        "running_agents": pool.running,
        "max_workers": pool.max_workers,
        "waiting_agents": pool.waiting,
        "uptime": round(orchestrator.uptime, 3),
        "pid": os.getpid(),
        "command_interface_enabled": orchestrator.command_interface_enabled,
        "command_socket_path": orchestrator.command_socket_path,
        "shutdown_requested": orchestrator.shutdown_requested,
    }


def build_report(
    orchestrator: OrchestratorSnapshot,
    agents: Iterable[AgentDetails],
    *,
    workers: Mapping[str, object],
    history: Mapping[str, object],
    callbacks: Mapping[str, int],
) -> dict[str, Any]:
    """``Orchestrator.report()``: the orchestrator, every agent's
    :func:`build_agent_status`, and the worker pool's, history's and callbacks'
    counters (as each of them reports itself)."""
    return {
        "name": orchestrator.name,
        "run_mode": orchestrator.run_mode,
        "started": orchestrator.started,
        "shutdown_requested": orchestrator.shutdown_requested,
        "uptime": round(orchestrator.uptime, 3),
        "workers": dict(workers),
        "agents": [build_agent_status(agent) for agent in agents],
        "dependencies": orchestrator.dependencies,
        "history": dict(history),
        "callbacks": dict(callbacks),
    }
