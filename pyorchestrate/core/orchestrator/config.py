"""The orchestrator's configuration and run modes."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import Field, field_validator

from ..agent.flavours import DEFAULT_START_METHOD, StartMethod
from ..config import ConfigModel
from ..control.paths import default_socket_path
from ..control.permissions import resolve_allowed_commands

__all__ = ["OrchestratorConfig", "RunMode", "default_socket_path"]


class RunMode(enum.Enum):
    """How long ``join()`` keeps the orchestrator up.

    STOP_ON_EMPTY: until every agent is done (a batch job).
    DAEMON: until ``stop()``, ``shutdown()``, the CLI ``shutdown``, SIGTERM or SIGINT.
    """

    STOP_ON_EMPTY = "stop_on_empty"
    DAEMON = "daemon"


class OrchestratorConfig(ConfigModel):
    """How an orchestrator runs. Every value not given keeps its default.

    Also reachable as ``Orchestrator.Config``. Bad values raise ``ConfigError`` naming
    the field, e.g. ``check_interval: must be greater than 0``. Numbers are strict: a
    bool (``max_workers=True``) or a string is refused, and a float field takes an int.
    An unknown key is refused, with ``did you mean …?`` when it is close to a field.
    """

    check_interval: float = Field(
        default=1.0,
        gt=0,
        strict=True,
        description="longest the router sleeps between checks (s)",
    )
    max_workers: int = Field(
        default=5,
        gt=0,
        strict=True,
        description="agents starting, running or stopping at once",
    )
    agent_start_timeout: float = Field(
        default=30.0,
        gt=0,
        strict=True,
        description="how long a started agent has to report START (s)",
    )
    agent_stop_timeout: float = Field(
        default=10.0,
        gt=0,
        strict=True,
        description="shutdown budget shared by all agents (s)",
    )
    enable_command_interface: bool = Field(
        default=True, description="serve the control commands on a Unix socket"
    )
    command_socket_path: str | None = Field(
        default=None,
        min_length=1,
        description="socket path; None = a private per-user path named after the orchestrator",
    )
    run_mode: RunMode = Field(default=RunMode.STOP_ON_EMPTY)
    allowed_commands: frozenset[str] | None = Field(
        default=None, description="None (all), a preset name, or a set of command names"
    )
    command_timeout: float = Field(
        default=5.0,
        gt=0,
        strict=True,
        description="deadline for answering one command (s)",
    )
    history_max_events: int = Field(default=5000, gt=0, strict=True)
    history_payload_bytes: int = Field(default=256, gt=0, strict=True)
    start_method: StartMethod = Field(
        default=DEFAULT_START_METHOD, description="how process agents are started"
    )
    callback_workers: int = Field(
        default=4, gt=0, strict=True, description="threads that run event callbacks"
    )
    callback_queue_size: int = Field(
        default=10_000,
        gt=0,
        strict=True,
        description="pending callback events per worker",
    )
    termination_grace: float = Field(
        default=2.0,
        gt=0,
        strict=True,
        description="wait after SIGTERM before SIGKILL at shutdown (s)",
    )

    @field_validator("run_mode", mode="before")
    @classmethod
    def _run_mode_is_enum(cls, value: Any) -> Any:
        if isinstance(value, str) and not isinstance(value, RunMode):
            try:
                return RunMode(value.lower())
            except ValueError:
                pass
        if not isinstance(value, RunMode):
            known = ", ".join(m.name for m in RunMode)
            raise ValueError(f"must be a RunMode ({known}), got {value!r}")
        return value

    @field_validator("allowed_commands", mode="before")
    @classmethod
    def _resolve_commands(cls, value: Any) -> Any:
        if value is None:
            return None
        return resolve_allowed_commands(value)
