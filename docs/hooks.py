"""MkDocs hook: the notifier environment-variable table, generated at build time.

A page writes ``{{ notifier_env_table }}`` on a line of its own; this hook replaces it
with one row per setting, walked recursively from
:class:`notifiers.settings.NotifierSettings`, so the table cannot go stale.
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


def env_rows(
    model: type[BaseModel], prefix: str, path: tuple[str, ...] = ()
) -> list[tuple[str, str, str, str]]:
    """``(variable, type, default, description)`` for every leaf setting of ``model``."""
    rows: list[tuple[str, str, str, str]] = []
    for name, field in model.model_fields.items():
        here = (*path, name)
        nested = _models_in(field.annotation)
        if nested:
            for sub in nested:
                rows.extend(env_rows(sub, prefix, here))
            continue
        variable = prefix + "__".join(part.upper() for part in here)
        description = field.description or ""
        rows.append(
            (variable, _type_name(field.annotation), _default(field), description)
        )
    return rows


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
    return markdown
