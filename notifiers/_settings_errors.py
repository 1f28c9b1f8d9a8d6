"""Turn pydantic and pydantic-settings failures into :class:`NotifierConfigError`.

One ``field.path: reason`` per problem, and never the value (it may be a secret).
Imports only pydantic at run time: the channel constructors and
:class:`~notifiers.retry.RetryPolicy` convert their errors here too.
"""

from __future__ import annotations

import json
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .errors import NotifierConfigError

if TYPE_CHECKING:  # only pydantic itself at run time: channels use this module too
    from pydantic import ValidationError
    from pydantic_settings import BaseSettings, SettingsError

__all__ = [
    "CONFIG_FILE_ENV",
    "ENV_PREFIX",
    "TITLE",
    "config_error",
    "settings_error",
    "unknown_environment",
]

ENV_PREFIX = "PYORCHESTRATE_NOTIFY_"
"""The prefix of every notifier environment variable."""
CONFIG_FILE_ENV = ENV_PREFIX + "CONFIG_FILE"
"""The environment variable that names the TOML settings file."""
TITLE = "invalid notifier settings"

_REASONS = {
    "missing": "required, but not set",
    "extra_forbidden": "unknown setting",
}


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _reason(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    if kind in _REASONS:
        return _REASONS[kind]
    message = str(error.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def config_error(
    exc: ValidationError,
    extra: Sequence[tuple[str, str]] = (),
    *,
    title: str = TITLE,
) -> NotifierConfigError:
    """One ``(path, reason)`` per pydantic error (inputs dropped), then ``extra``.

    Used for the settings and for every channel constructor and model that
    validates with pydantic, so both paths word their errors alike.
    """
    errors: list[tuple[str, str]] = []
    for error in exc.errors(include_input=False, include_url=False):
        path = _path(tuple(error["loc"]))
        inner = (error.get("ctx") or {}).get("error")
        if isinstance(inner, NotifierConfigError):
            # A nested model that reports for itself (e.g. RetryPolicy): its own
            # lines, under this path.
            errors.extend((_join(path, loc), msg) for loc, msg in inner.errors)
        else:
            errors.append((path, _reason(error)))
    return NotifierConfigError(title, [*errors, *extra])


def _join(path: str, loc: str) -> str:
    if not path or not loc:
        return path or loc
    return path + loc if loc.startswith("[") else f"{path}.{loc}"


def unknown_environment(
    settings_cls: type[BaseSettings], prefix: str
) -> list[tuple[str, str]]:
    """Environment variables with our prefix that name no setting (typos)."""
    fields = set(settings_cls.model_fields)
    unknown = []
    for key in os.environ:
        upper = key.upper()
        if not upper.startswith(prefix.upper()) or upper == CONFIG_FILE_ENV:
            continue
        top = upper[len(prefix) :].split("__", 1)[0].lower()
        if top not in fields:
            unknown.append((key, "unknown setting (an environment variable)"))
    return sorted(unknown)


def settings_error(
    exc: SettingsError, settings_cls: type[BaseSettings], extra: list[tuple[str, str]]
) -> NotifierConfigError:
    """pydantic-settings could not decode a JSON value from the environment."""
    match = re.search(r'field "([^"]+)"', str(exc))
    field = match.group(1) if match else ""
    culprits = [
        (path, "is not valid JSON (lists and tables must be JSON in the environment)")
        for path in _undecodable_env(settings_cls, field)
    ]
    if not culprits:
        culprits = [(field, f"cannot be read: {exc}")]
    return NotifierConfigError(TITLE, [*culprits, *extra])


def _undecodable_env(settings_cls: type[BaseSettings], field: str) -> list[str]:
    """Dotted paths under ``field`` whose environment value should be JSON but is not."""
    found = []
    prefix = ENV_PREFIX + field.upper()
    for key, value in os.environ.items():
        upper = key.upper()
        if upper != prefix and not upper.startswith(prefix + "__"):
            continue
        parts = upper[len(ENV_PREFIX) :].lower().split("__")
        if not _is_complex(settings_cls, parts):
            continue
        try:
            json.loads(value)
        except ValueError:
            found.append(".".join(parts))
    return sorted(found)


def _is_complex(model: type[BaseModel], parts: list[str]) -> bool:
    annotation: object = model
    for part in parts:
        fields = _model_fields(annotation)
        if fields is None or part not in fields:
            return False
        annotation = fields[part]
    return _model_fields(annotation) is not None or any(
        typing.get_origin(arg) in (list, dict, set, tuple)
        for arg in _union_args(annotation)
    )


def _union_args(annotation: object) -> tuple[object, ...]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is (
        typing.Union
    ):
        return typing.get_args(annotation)
    return (annotation,)


def _model_fields(annotation: object) -> dict[str, object] | None:
    for arg in _union_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return {name: f.annotation for name, f in arg.model_fields.items()}
    return None
