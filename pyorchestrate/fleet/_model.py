"""The tables of a fleet file, as pydantic models (the TOML reference is built from
them: :func:`pyorchestrate.fleet.reference`).

``[orchestrator]`` takes ``name`` and every field of
:class:`~pyorchestrate.core.orchestrator.config.OrchestratorConfig`; ``[notify]`` takes
what :class:`notifiers.settings.NotifierSettings` takes (validated by the notifiers
package, looked up only when the table is there).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

__all__ = ["SCHEDULE_KEYS", "AgentTable", "Duration", "table_keys"]

Duration = StrictStr | StrictInt | StrictFloat
"""Seconds as a number, or a string such as ``"90s"``, ``"15m"``, ``"1h30m"``."""

SCHEDULE_KEYS = (
    "schedule",
    "every",
    "timezone",
    "jitter",
    "max_runtime",
    "warn_after",
    "overlap",
    "catch_up",
    "grace",
)
"""The keys of an agent's table that make up its schedule."""


class AgentTable(BaseModel):
    """One ``[agents.NAME]`` table: a command (``command``) or a Python agent class
    (``class``), and how to run it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    command: list[StrictStr] | StrictStr | None = Field(
        default=None,
        description="the program and its arguments: a list, or a string split like "
        "a shell would (give `command` or `class`)",
    )
    class_: StrictStr | None = Field(
        default=None,
        alias="class",
        description="a Python agent class, `package.module:Class` (give `command` or "
        "`class`); imported with the fleet file's directory on `sys.path`",
    )
    config: dict[StrictStr, Any] = Field(
        default_factory=dict,
        description="the agent's config: the fields of its class's `Config` (for a "
        "command, `CommandConfig`'s: `shell`, `ready_after`, `stop_signal`, ...)",
    )
    depends_on: list[StrictStr] = Field(
        default_factory=list,
        description="agents that must have started before this one",
    )
    supervision: dict[StrictStr, Any] = Field(
        default_factory=dict,
        description="restart policy, backoff, watchdog, deadlines: the fields of "
        "`SupervisionConfig` (`restart`, `max_restarts`, `stop_timeout`, ...)",
    )
    env: dict[StrictStr, StrictStr] = Field(
        default_factory=dict,
        description="a command's environment variables, over the orchestrator's "
        "(values whose name holds TOKEN, SECRET, PASSWORD or KEY are masked)",
    )
    cwd: StrictStr | None = Field(
        default=None, description="a command's working directory"
    )
    backend: Literal["local", "ray"] | None = Field(
        default=None,
        description="where a Python agent runs: `local` (a thread or a process, as "
        "its class says) or `ray` (a Ray actor); default: the `[orchestrator]` "
        "`backend`",
    )
    ray_options: dict[StrictStr, Any] = Field(
        default_factory=dict,
        description="a Ray agent's actor: `num_cpus`, `num_gpus`, `memory`, "
        "`resources`, `runtime_env` (see docs/ray.md)",
    )
    schedule: StrictStr | None = Field(
        default=None, description="a cron expression, e.g. `0 3 * * *`"
    )
    every: Duration | None = Field(
        default=None, description="run every so often instead, e.g. `15m`"
    )
    timezone: StrictStr | None = Field(
        default=None,
        description="the IANA time zone the cron expression is read in "
        "(default: the machine's)",
    )
    jitter: Duration | None = Field(
        default=None, description="start each run up to this much later, at random"
    )
    max_runtime: Duration | None = Field(
        default=None,
        description="a run still going after this is stopped (AGENT_ERROR "
        "`reason=max_runtime`)",
    )
    warn_after: Duration | None = Field(
        default=None, description="a run still going after this raises AGENT_LATE"
    )
    overlap: Literal["skip", "queue", "replace"] | None = Field(
        default=None, description="a run due while the last one still runs"
    )
    catch_up: Literal["none", "last"] | None = Field(
        default=None, description="runs missed while the orchestrator was down"
    )
    grace: Duration | None = Field(
        default=None,
        description="a run not started this long after it was due raises AGENT_MISSED",
    )

    @property
    def has_schedule(self) -> bool:
        """Whether the table sets ``schedule`` or ``every``."""
        return self.schedule is not None or self.every is not None

    def schedule_table(self) -> dict[str, Any]:
        """The schedule keys that are set."""
        return {
            key: getattr(self, key)
            for key in SCHEDULE_KEYS
            if getattr(self, key) is not None
        }


def table_keys(model: type[BaseModel]) -> list[str]:
    """The keys a table of ``model`` takes (aliases where a field has one)."""
    return [info.alias or name for name, info in model.model_fields.items()]
