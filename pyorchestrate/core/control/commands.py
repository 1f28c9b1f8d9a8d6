"""The control commands: one handler per command, in one table.

A handler takes the :class:`~pyorchestrate.core.control.target.ControlTarget` (the
orchestrator) and the request's ``args`` and returns the reply's ``data``; it raises a
:class:`~pyorchestrate.core.errors.ControlError` subclass for a reply with an error
code. ``subscribe`` and ``logs`` are served by the server itself (they stream).
"""

from __future__ import annotations

import enum
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import (
    AgentNotFound,
    CommandFailed,
    Conflict,
    LifecycleError,
    RegistrationError,
    UnknownCommand,
)
from ..utilities.outputfiles import STREAMS, log_path
from .permissions import COMMANDS
from .process_stats import ProcessStats
from .reports import build_agent_status, build_agent_summary, build_orchestrator_status
from .target import ControlTarget

__all__ = ["COMMAND_TABLE", "Audit", "Command", "ProcessStats", "parse_filters"]

Handler = Callable[[ControlTarget, list[Any]], dict[str, Any]]


class Audit(enum.Enum):
    """Whether running a command is recorded as an ``OPERATOR_ACTION`` event."""

    NONE = "none"
    """It only reads (or is an external job's report, like ``ping``)."""
    ACTION = "action"
    """It acts on the orchestrator: recorded with its caller and its result."""
    OUTSIDE = "outside"
    """``record-action``: its handler returns the fields of an action done
    elsewhere (a mute, an acknowledgement), and that is recorded."""


@dataclass(frozen=True, slots=True)
class Command:
    """One command: its handler, how many arguments it takes, what it does, and
    whether it is audited."""

    name: str
    handler: Handler | None
    summary: str
    min_args: int = 0
    max_args: int = 0
    audit: Audit = Audit.NONE


def _agent_arg(target: ControlTarget, args: list[Any]) -> str:
    name = args[0]
    if not isinstance(name, str) or not name:
        raise UnknownCommand("the agent name must be a non-empty string")
    if not target.has_agent(name):
        raise AgentNotFound(f"agent {name!r} is not registered")
    return name


def parse_filters(args: list[Any], allowed: Mapping[str, type]) -> dict[str, Any]:
    """Read a filter object from ``args[0]`` (a dict or a JSON string).

    Raises:
        UnknownCommand: a filter of the wrong type, or an unknown filter.
    """
    if not args or args[0] in (None, ""):
        return {}
    raw = args[0]
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise UnknownCommand("filters must be a JSON object") from None
    if not isinstance(raw, dict):
        raise UnknownCommand("filters must be a JSON object")
    aliases = {"type": "event_name", "event": "event_name"}
    filters: dict[str, Any] = {}
    for raw_key, value in raw.items():
        key = str(raw_key)
        key = aliases.get(key) or key
        expected = allowed.get(key)
        if expected is None:
            known = ", ".join(sorted(allowed))
            raise UnknownCommand(f"unknown filter {key!r}; known filters: {known}")
        if value is None:
            continue
        if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise UnknownCommand(f"filter {key!r} must be an integer")
        if expected is str and not isinstance(value, str):
            raise UnknownCommand(f"filter {key!r} must be a string")
        filters[key] = value
    if filters.get("last", 0) < 0:
        raise UnknownCommand("filter 'last' must be 0 or more")
    return filters


HISTORY_FILTERS: dict[str, type] = {
    "last": int,
    "agent": str,
    "event_name": str,
    "after_seq": int,
}
SUBSCRIBE_FILTERS: dict[str, type] = {"agent": str, "event_name": str, "after_seq": int}


def _ps(target: ControlTarget, args: list[Any]) -> dict[str, Any]:
    # What the table shows, and no more: a whole record (config, dependencies,
    # generation, ...) is `status NAME`'s job.
    agents = [build_agent_summary(agent) for agent in target.agent_snapshots()]
    pool = target.snapshot().pool
    return {
        "agents": agents,
        "running_count": pool.running,
        "max_workers": pool.max_workers,
        "waiting_count": pool.waiting,
    }


def _status(target: ControlTarget, args: list[Any]) -> dict[str, Any]:
    if args:
        name = _agent_arg(target, args)
        status = build_agent_status(target.agent_details(name))
        # A process agent's last output lines ("" if none; None for a thread agent),
        # and the files that hold all of it (None for a thread agent, or logs off).
        status["output_tail"] = tail = target.output_tail(name)
        logs_dir = target.logs_dir
        status["log_files"] = (
            None
            if tail is None or logs_dir is None
            else {stream: str(log_path(logs_dir, name, stream)) for stream in STREAMS}
        )
        return status
    return build_orchestrator_status(target.snapshot())


def _dependencies(target: ControlTarget, args: list[Any]) -> dict[str, Any]:
    return {"dependencies": target.snapshot().dependencies}


def _start(target: ControlTarget, args: list[Any]) -> dict[str, Any]:
    name = _agent_arg(target, args)
    try:
        result = target.start_agent(name)
    except LifecycleError as exc:
        raise Conflict(str(exc)) from None
    except RegistrationError as exc:
        raise Conflict(str(exc)) from None
    return {
        "message": f"agent {name!r}: {result.status.value}",
        "status": result.status.value,
        "reason": result.reason,
    }


def _stop(target: ControlTarget, args: list[Any]) -> dict[str, Any]:
    name = _agent_arg(target, args)
    return {"message": target.stop_agent(name)}


def _restart(target: ControlTarget, args: list[Any]) -> dict[str, Any]:
    name = _agent_arg(target, args)
    try:
        message = target.restart_agent(name)
    except (LifecycleError, RegistrationError) as exc:
        raise Conflict(str(exc)) from None
    return {"message": message}


def _ping(target: ControlTarget, args: list[Any]) -> dict[str, Any]:
    """``ping AGENT [failed [message]]``: an external job reports a run."""
    name = _agent_arg(target, args)
    failed = args[1] if len(args) > 1 else False
    message = args[2] if len(args) > 2 else ""
    if not isinstance(failed, bool):
        raise UnknownCommand("ping: 'failed' must be true or false")
    if not isinstance(message, str):
        raise UnknownCommand("ping: 'message' must be a string")
    try:
        reply = target.ping(name, failed=failed, message=message)
    except LifecycleError as exc:
        raise Conflict(str(exc)) from None
    return {"message": reply, "failed": failed}


def _commands(target: ControlTarget, args: list[Any]) -> dict[str, Any]:
    allowed = target.allowed_commands
    return {
        "allowed_commands": sorted(allowed),
        "total_available_commands": len(COMMANDS),
        "restrictions_active": allowed != COMMANDS,
        "restricted_commands": sorted(COMMANDS - allowed),
        "descriptions": {name: COMMAND_TABLE[name].summary for name in sorted(allowed)},
    }


def _stats(target: ControlTarget, args: list[Any]) -> dict[str, Any]:
    reader = target.process_stats
    agents = []
    for agent in target.agent_snapshots():
        summary = build_agent_summary(agent)
        row = {
            key: summary[key]
            for key in ("name", "alive", "lifecycle_state", "started", "in_queue")
        }
        row["pid"] = agent.pid if agent.alive else None
        row["uptime"] = summary["uptime"] if agent.uptime is not None else "N/A"
        row["flavour"] = agent.flavour
        if agent.alive and agent.flavour == "process":
            row.update(reader.read(agent.pid))
        else:
            row.update(reader.read(None))
        agents.append(row)
    orchestrator = target.snapshot()
    return {
        "timestamp": time.time(),
        "orchestrator": {
            "running_agents": orchestrator.pool.running,
            "max_workers": orchestrator.pool.max_workers,
            "waiting_agents": orchestrator.pool.waiting,
            "pid": os.getpid(),
            "uptime": round(orchestrator.uptime, 3),
            **reader.read(os.getpid()),
        },
        "agents": agents,
    }


def _history(target: ControlTarget, args: list[Any]) -> dict[str, Any]:
    filters = parse_filters(args, HISTORY_FILTERS)
    records = target.history.last(
        filters.get("last", 100),
        agent=filters.get("agent"),
        event_name=filters.get("event_name"),
        after_seq=filters.get("after_seq"),
    )
    return {
        "events": [r.to_dict() for r in records],
        "count": len(records),
        "filters": filters,
        "capacity_info": target.history.capacity_info(),
    }


def _history_stats(target: ControlTarget, args: list[Any]) -> dict[str, Any]:
    filters = parse_filters(args, {"agent": str})
    agent = filters.get("agent")
    return {
        "statistics": target.history.stats(agent),
        "capacity_info": target.history.capacity_info(),
        "agent_filter": agent,
        "timestamp": time.time(),
    }


def _shutdown(target: ControlTarget, args: list[Any]) -> dict[str, Any]:
    target.request_shutdown()
    return {"message": "Orchestrator shutdown initiated"}


def _reopen_logs(target: ControlTarget, args: list[Any]) -> dict[str, Any]:
    outcome = target.reopen_logs()
    data: dict[str, Any] = {
        "reopened": [str(path) for path in outcome.reopened],
        "failed": [
            {"path": str(path), "error": error} for path, error in outcome.failed
        ],
    }
    if outcome.failed:
        first_path, first_error = outcome.failed[0]
        raise CommandFailed(
            f"{len(outcome.failed)} log file(s) could not be reopened "
            f"(first: {first_path}: {first_error}); reopened {len(outcome.reopened)}",
            data=data,
        )
    data["message"] = f"reopened {len(outcome.reopened)} log file(s)"
    return data


def _reload(target: ControlTarget, args: list[Any]) -> dict[str, Any]:
    return target.reload()


_OUTSIDE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "action": str,
    "agent": (str, type(None)),
    "actor": (str, type(None)),
    "ok": bool,
    "result": str,
}


def _record_action(target: ControlTarget, args: list[Any]) -> dict[str, Any]:
    """``record-action {action, agent, actor, ok, result, <meta>}``: the fields of
    an action done outside the orchestrator, checked (``execute`` records them; an
    ``actor`` given here is the person the sender acted for)."""
    given = args[0]
    if isinstance(given, str):
        try:
            given = json.loads(given)
        except json.JSONDecodeError:
            raise UnknownCommand("record-action takes a JSON object") from None
    if not isinstance(given, dict):
        raise UnknownCommand("record-action takes a JSON object")
    fields: dict[str, Any] = {"agent": None, "actor": None, "ok": True, "result": "ok"}
    meta: dict[str, Any] = {}
    for key, value in given.items():
        kind = _OUTSIDE_FIELDS.get(key)
        if kind is None:
            meta[key] = value
        elif not isinstance(value, kind):
            raise UnknownCommand(f"record-action: {key!r} has the wrong type")
        else:
            fields[key] = value
    action = fields.get("action")
    if not isinstance(action, str) or not action.strip():
        raise UnknownCommand("record-action: 'action' must be a non-empty string")
    fields["action"] = action.strip()
    fields["meta"] = meta
    return fields


_TABLE = [
    Command("ps", _ps, "every agent: state, pid, uptime, restarts, last error"),
    Command("status", _status, "the orchestrator, or one agent (status AGENT)", 0, 1),
    Command("dependencies", _dependencies, "which agents wait for which"),
    Command("start", _start, "start (or queue) an agent", 1, 1, Audit.ACTION),
    Command(
        "stop",
        _stop,
        "ask an agent to stop (or take it off the queue)",
        1,
        1,
        Audit.ACTION,
    ),
    Command(
        "restart", _restart, "stop an agent and start it again", 1, 1, Audit.ACTION
    ),
    Command(
        "ping",
        _ping,
        "an external job reports a run (ping AGENT [failed [message]])",
        1,
        3,
    ),
    Command("commands", _commands, "the commands this orchestrator allows"),
    Command("stats", _stats, "cpu, memory, threads and uptime per agent"),
    Command(
        "history",
        _history,
        "past events (filters: last, agent, event_name, after_seq)",
        0,
        1,
    ),
    Command(
        "history-stats", _history_stats, "event counts by type (filter: agent)", 0, 1
    ),
    Command(
        "shutdown",
        _shutdown,
        "stop every agent and the orchestrator",
        audit=Audit.ACTION,
    ),
    Command("subscribe", None, "stream new events on this connection", 0, 1),
    Command(
        "logs",
        None,
        "an agent's output (logs AGENT [{lines, follow, streams, since}])",
        1,
        2,
    ),
    Command(
        "reopen-logs",
        _reopen_logs,
        "reopen the log files (after logrotate moved them)",
        audit=Audit.ACTION,
    ),
    Command(
        "reload",
        _reload,
        "re-read the fleet file (pyorchestrate run FILE)",
        audit=Audit.ACTION,
    ),
    Command(
        "record-action",
        _record_action,
        "record an action done elsewhere, e.g. a mute "
        "(record-action {action, agent, ok, result})",
        1,
        1,
        Audit.OUTSIDE,
    ),
]

COMMAND_TABLE: dict[str, Command] = {command.name: command for command in _TABLE}
"""Every command by name."""
assert set(COMMAND_TABLE) == COMMANDS
