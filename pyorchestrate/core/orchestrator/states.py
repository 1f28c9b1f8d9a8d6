"""Agent lifecycle states and the transitions allowed between them.

This module must not import anything but the standard library: it is the one place a
reader checks to know what an agent can go through.

::

    REGISTERED ──start──► QUEUED ──slot & deps──► STARTING ──START msg──► RUNNING
        │                   │                        │                      │
        │                   │ stop / dep failed      │ timeout              │ READY msg
        ▼                   ▼                        ▼                      ▼
    TERMINATED ◄────────────┘        FAILED ◄── (clean) ── QUARANTINED    READY
        ▲                                                  (still alive)    │
        └──────────── exit (process sentinel / thread link closed) ◄── STOPPING ◄── stop

A TERMINATED or FAILED agent can be started again (its generation goes up by one).
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


_S = AgentState

ACTIVE_STATES: frozenset[AgentState] = frozenset(
    {_S.STARTING, _S.RUNNING, _S.READY, _S.STOPPING, _S.QUARANTINED}
)
"""States that hold a worker slot (something is, or may be, executing)."""

LIVE_STATES: frozenset[AgentState] = ACTIVE_STATES | {_S.QUEUED}
"""States in which the orchestrator still has work to do for the agent."""

FINAL_STATES: frozenset[AgentState] = frozenset({_S.TERMINATED, _S.FAILED})
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
    _S.TERMINATED: frozenset({_S.QUEUED, _S.STARTING}),
    _S.FAILED: frozenset({_S.QUEUED, _S.STARTING}),
}
"""Allowed ``from -> {to}`` edges; anything else is a bug and raises."""


def can_transition(current: AgentState, target: AgentState) -> bool:
    """Whether ``current -> target`` is an allowed edge."""
    return target in TRANSITIONS[current]
