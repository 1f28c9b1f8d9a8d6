"""The orchestrator's configuration and run modes."""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from ..agent.flavours import DEFAULT_START_METHOD, StartMethod
from ..config import ConfigModel
from ..control.paths import default_socket_path
from ..control.permissions import resolve_allowed_commands
from ..utilities.output import (
    LOG_BACKUPS,
    LOG_MAX_BYTES,
    TAIL_BYTES,
    TAIL_LINES,
    OutputSettings,
)
from ..utilities.outputfiles import default_logs_dir

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

    logs_dir: Path | Literal["auto"] | None = Field(
        default="auto",
        description=(
            "directory of the process agents' output files: 'auto' = "
            "$XDG_STATE_HOME/pyorchestrate/logs/<orchestrator>; None (or False, 'off') "
            "= no files, lines go to the orchestrator's stdout/stderr after [agent]"
        ),
    )
    log_max_bytes: int = Field(
        default=LOG_MAX_BYTES,
        ge=0,
        strict=True,
        description="rotate an output file when it would grow past this (0 = never)",
    )
    log_backups: int = Field(
        default=LOG_BACKUPS,
        ge=0,
        strict=True,
        description="rotated output files kept per agent and stream (0 = truncate)",
    )
    output_tail_lines: int = Field(
        default=TAIL_LINES,
        gt=0,
        strict=True,
        description="last output lines of each process agent kept in memory",
    )
    output_tail_bytes: int = Field(
        default=TAIL_BYTES,
        gt=0,
        strict=True,
        description="most bytes of those lines kept in memory",
    )
    backend: Literal["local", "ray"] = Field(
        default="local",
        description=(
            "where agents run unless register_agent says: 'local' (a thread or a "
            "process, as the class says) or 'ray' (a Ray actor)"
        ),
    )
    ray_address: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "Ray cluster of the Ray agents: None = start a local one on 127.0.0.1, "
            "owned and stopped with the orchestrator; 'auto', 'host:port' or "
            "'ray://host:10001' = connect, and leave it running"
        ),
    )
    ray_namespace: str | None = Field(
        default=None,
        min_length=1,
        description="Ray namespace of the agents' actors (None: one per orchestrator)",
    )
    ray_num_cpus: int | None = Field(
        default=None,
        gt=0,
        strict=True,
        description="CPUs of the local Ray cluster (None: Ray counts them)",
    )

    @field_validator("logs_dir", mode="before")
    @classmethod
    def _logs_dir_is_a_path(cls, value: Any) -> Any:
        if value is None or value is False or value == "off":
            return None
        if value == "auto":
            return "auto"
        if isinstance(value, str | os.PathLike) and not isinstance(value, bytes):
            text = os.fspath(value)
            if isinstance(text, str) and text.strip() and "\0" not in text:
                return Path(text).expanduser()
        raise ValueError(
            "must be a directory path, 'auto' (the default place) or None (no files), "
            f"got {value!r}"
        )

    def resolve_logs_dir(self, orchestrator: str) -> Path | None:
        """The absolute directory of the output files of the orchestrator called
        ``orchestrator`` (``None`` when off); ``'auto'`` and a relative path are
        resolved now (against ``$XDG_STATE_HOME`` and the working directory)."""
        if self.logs_dir is None:
            return None
        if self.logs_dir == "auto":
            return default_logs_dir(orchestrator)
        return self.logs_dir.absolute()

    def output_settings(self, orchestrator: str) -> OutputSettings:
        """What the output capture of the orchestrator ``orchestrator`` needs."""
        return OutputSettings(
            logs_dir=self.resolve_logs_dir(orchestrator),
            log_max_bytes=self.log_max_bytes,
            log_backups=self.log_backups,
            tail_lines=self.output_tail_lines,
            tail_bytes=self.output_tail_bytes,
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
