"""MkDocs hook: the settings tables, generated at build time from the models.

A page writes a placeholder on a line of its own; this hook replaces it with one row
per setting, walked recursively from the pydantic models, so no table can go stale:

* ``{{ notifier_env_table }}``: the notifier environment variables
  (:class:`notifiers.settings.NotifierSettings`);
* ``{{ fleet_toml_reference }}``: every key of a fleet file (``pyorchestrate run``):
  ``[orchestrator]``, ``[agents.NAME]`` and what its ``supervision``, ``config`` and
  schedule keys take, and ``[notify]`` (the same NotifierSettings, as TOML keys).
"""

from __future__ import annotations

import enum
import html
import types
import typing
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

PLACEHOLDER = "{{ notifier_env_table }}"
FLEET_PLACEHOLDER = "{{ fleet_toml_reference }}"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field's annotation holds (``X | None`` gives ``[X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    text = repr(annotation).replace("typing.", "")
    for prefix in ("pydantic.types.", "notifiers.base.", "notifiers."):
        text = text.replace(prefix, "")
    return text.replace("NoneType", "None")


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        try:
            value = field.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "(computed)"
        if isinstance(value, BaseModel):
            return "(section)"
        if isinstance(value, PurePath):
            return "(computed at run time)"
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, enum.Enum):
        value = value.name.lower()
    if isinstance(value, frozenset):
        value = sorted(value, key=repr)
    return f"`{value!r}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _code_cell(text: str) -> str:
    """Inline code in a table cell: ``\\|`` would show as is inside backticks."""
    return (
        "<code>"
        + html.escape(" ".join(text.split())).replace("|", "&#124;")
        + "</code>"
    )


def setting_rows(
    model: type[BaseModel], path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], str, str, str]]:
    """``(path, type, default, description)`` for every leaf setting of ``model``
    (a field's alias, where it has one, is its key)."""
    rows: list[tuple[tuple[str, ...], str, str, str]] = []
    for name, field in model.model_fields.items():
        here = (*path, field.alias or name)
        nested = _models_in(field.annotation)
        if nested:
            for sub in nested:
                rows.extend(setting_rows(sub, here))
            continue
        description = field.description or ""
        rows.append((here, _type_name(field.annotation), _default(field), description))
    return rows


def env_rows(
    model: type[BaseModel], prefix: str, path: tuple[str, ...] = ()
) -> list[tuple[str, str, str, str]]:
    """``(variable, type, default, description)`` for every leaf setting of ``model``."""
    return [
        (prefix + "__".join(part.upper() for part in here), type_, default, text)
        for here, type_, default, text in setting_rows(model, path)
    ]


def _table(
    rows: list[tuple[tuple[str, ...], str, str, str]],
    key: Any = lambda here: ".".join(here),
) -> str:
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for here, type_, default, description in rows:
        lines.append(
            f"| `{key(here)}` | {_code_cell(type_)} | {_cell(default)} "
            f"| {_cell(description)} |"
        )
    return "\n".join(lines)


def fleet_reference() -> str:
    """The fleet file's keys, table by table (``docs/reference/fleet.md``)."""
    from notifiers.settings import NotifierSettings
    from pyorchestrate.core.agent.base import AgentConfig
    from pyorchestrate.core.agent.command import CommandConfig
    from pyorchestrate.core.orchestrator.config import OrchestratorConfig
    from pyorchestrate.core.schedule import Schedule
    from pyorchestrate.core.supervision_config import SupervisionConfig
    from pyorchestrate.fleet import AgentTable

    name_row = (
        ("name",),
        "str",
        "the file's name without `.toml`",
        "the orchestrator's name (logs, events, the default socket path)",
    )
    schedule_keys = set(AgentTable.model_fields) - {
        "command", "class_", "config", "depends_on", "supervision", "env", "cwd",
        "backend", "ray_options",
    }  # fmt: skip
    agent_rows = [
        row
        for row in setting_rows(AgentTable)
        if row[0][0] not in schedule_keys and row[0][0] not in ("supervision", "config")
    ]
    own = set(AgentConfig.model_fields) - {"supervision"}
    table_keys = {"command", "env", "cwd"}
    schedule_rows = [
        (("schedule",) if here == ("cron",) else here, type_, default, text)
        for here, type_, default, text in setting_rows(Schedule)
    ]
    sections = [
        "## `[orchestrator]`\n\nEvery field of `Orchestrator.Config`, and `name`.",
        _table([name_row, *setting_rows(OrchestratorConfig)]),
        "## `[agents.NAME]`\n\nOne table per agent: `command` or `class`, and:",
        _table(agent_rows)
        + "\n| `supervision` | table | `{}` | see below |"
        + "\n| `config` | table | `{}` | see below |"
        + "\n| `schedule`, `every`, ... | | | see below |",
        "### `supervision = {...}`\n\nThe fields of `SupervisionConfig`.",
        _table(setting_rows(SupervisionConfig)),
        "### Schedule keys\n\n`schedule` (a cron expression) or `every`, and the "
        "other fields of `pyorchestrate.Schedule`, in the agent's table.",
        _table(schedule_rows),
        "### `config = {...}` of a command\n\nThe fields of `CommandConfig` beside "
        "`command`, `env` and `cwd` (which are keys of the table itself). A Python "
        "agent's `config` takes its class's `Config` fields instead (these too).",
        _table(
            [
                row
                for row in setting_rows(CommandConfig)
                if row[0][0] not in table_keys
                and row[0][0] != "supervision"
                and (row[0][0] in own or row[0][0] in CommandConfig.model_fields)
            ]
        ),
        "## `[notify]`\n\nThe notifier settings: the same keys as the "
        "environment variables, as TOML (`[notify.telegram]` `token = ...`). A key "
        "`KEY_file` reads `KEY` from a file instead.",
        _table(setting_rows(NotifierSettings), lambda here: "notify." + ".".join(here)),
    ]
    return "\n\n".join(sections)


def env_table() -> str:
    from notifiers._settings_errors import ENV_PREFIX
    from notifiers.settings import NotifierSettings

    lines = [
        "| variable | type | default | description |",
        "|---|---|---|---|",
    ]
    for variable, type_, default, description in env_rows(NotifierSettings, ENV_PREFIX):
        lines.append(
            f"| `{variable}` | {_code_cell(type_)} | {_cell(default)} | {_cell(description)} |"
        )
    return "\n".join(lines)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    if PLACEHOLDER in markdown:
        markdown = markdown.replace(PLACEHOLDER, env_table())
    if FLEET_PLACEHOLDER in markdown:
        markdown = markdown.replace(FLEET_PLACEHOLDER, fleet_reference())
    return markdown
