"""Agent lifecycle states and the transitions allowed between them.

This module must not import anything but the standard library: it is the one place a
reader checks to know what an agent can go through.

::

    REGISTERED ──start──► QUEUED ──slot & READY deps──► STARTING ──START──► RUNNING
        │                   ▲  │                           │                 │ READY
        │                   │  │ stop / dep failed         │ timeout         ▼
        │                   │  ▼                           ▼               READY
        │                   │ TERMINATED ◄── exit ── STOPPING / QUARANTINED  │
        │                   │    │  ▲                      ▲                 │
        ▼                   │    │  └── exit ──────────────┴───── stop ──────┘
    TERMINATED              │    │ restart policy
                            │    ▼
                          BACKOFF ──flapping / max_restarts──► FATAL

An agent that ends on its own goes TERMINATED (or FAILED if it never reported START);
its restart policy then sends it to BACKOFF (waiting ``delay`` seconds, then QUEUED
again) or to FATAL (no more automatic restarts). An operator stop in BACKOFF ends it
TERMINATED. A TERMINATED, FAILED or FATAL agent can be started again by the operator
(its generation goes up by one).
"""

from __future__ import annotations

import enum

__all__ = [
    "ACTIVE_STATES",
    "FINAL_STATES",
    "LIVE_STATES",
    "TRANSITIONS",
    "AgentState",
    "can_transition",
]


class AgentState(enum.StrEnum):
    """Where an agent is in its life, as the orchestrator sees it."""

    REGISTERED = "REGISTERED"
    QUEUED = "QUEUED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    READY = "READY"
    STOPPING = "STOPPING"
    QUARANTINED = "QUARANTINED"
    TERMINATED = "TERMINATED"
    FAILED = "FAILED"
    BACKOFF = "BACKOFF"
    FATAL = "FATAL"


_S = AgentState

ACTIVE_STATES: frozenset[AgentState] = frozenset(
    {_S.STARTING, _S.RUNNING, _S.READY, _S.STOPPING, _S.QUARANTINED}
)
"""States that hold a worker slot (something is, or may be, executing)."""

LIVE_STATES: frozenset[AgentState] = ACTIVE_STATES | {_S.QUEUED, _S.BACKOFF}
"""States in which the orchestrator still has work to do for the agent."""

FINAL_STATES: frozenset[AgentState] = frozenset({_S.TERMINATED, _S.FAILED, _S.FATAL})
"""States an agent ends in; it can be started again from them."""

TRANSITIONS: dict[AgentState, frozenset[AgentState]] = {
    _S.REGISTERED: frozenset({_S.QUEUED, _S.STARTING, _S.TERMINATED}),
    _S.QUEUED: frozenset({_S.STARTING, _S.TERMINATED, _S.FAILED}),
    # STARTING -> FAILED: died or timed out before its START message.
    _S.STARTING: frozenset(
        {_S.RUNNING, _S.STOPPING, _S.QUARANTINED, _S.TERMINATED, _S.FAILED}
    ),
    _S.RUNNING: frozenset({_S.READY, _S.STOPPING, _S.QUARANTINED, _S.TERMINATED}),
    _S.READY: frozenset({_S.STOPPING, _S.QUARANTINED, _S.TERMINATED}),
    # STOPPING -> FAILED: asked to stop while starting, ended before START.
    _S.STOPPING: frozenset({_S.QUARANTINED, _S.TERMINATED, _S.FAILED}),
    _S.QUARANTINED: frozenset({_S.STOPPING, _S.TERMINATED, _S.FAILED}),
    # -> BACKOFF / FATAL: the restart policy's decision right after an end.
    _S.TERMINATED: frozenset({_S.QUEUED, _S.STARTING, _S.BACKOFF, _S.FATAL}),
    _S.FAILED: frozenset({_S.QUEUED, _S.STARTING, _S.BACKOFF, _S.FATAL}),
    _S.BACKOFF: frozenset({_S.QUEUED, _S.TERMINATED}),
    _S.FATAL: frozenset({_S.QUEUED, _S.STARTING}),
}
"""Allowed ``from -> {to}`` edges; anything else is a bug and raises."""


def can_transition(current: AgentState, target: AgentState) -> bool:
    """Whether ``current -> target`` is an allowed edge."""
    return target in TRANSITIONS[current]
