"""A notification as JSON and back, as the outbox stores it."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
import types
import typing
import uuid
from collections.abc import Mapping
from typing import Any

from ..base import Notification

__all__ = ["notification_from_json", "notification_to_json", "notification_uid"]


def _encode(value: object) -> object:
    if isinstance(value, _dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, enum.Enum):
        return _encode(value.value)
    if isinstance(value, tuple | list | frozenset | set):
        return [_encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


_PLAIN = frozenset({str, int, float, bool, type(None)})
_FIELDS = tuple(f.name for f in dataclasses.fields(Notification))
_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def notification_to_json(notification: Notification) -> str:
    """Every field of ``notification`` as JSON (the process-local ``id`` included,
    for reference; :func:`notification_from_json` gives a new one)."""
    data = {}
    for name in _FIELDS:
        value = getattr(notification, name)
        data[name] = value if type(value) in _PLAIN else _encode(value)
    return _DUMPS(data)


_hints_cache: dict[str, Any] | None = None


def _hints() -> dict[str, Any]:
    global _hints_cache
    if _hints_cache is None:
        try:
            _hints_cache = typing.get_type_hints(Notification)
        except Exception:  # an annotation that only resolves under TYPE_CHECKING
            _hints_cache = {}
    return _hints_cache


def _decode(value: object, hint: object) -> object:
    if isinstance(value, dict) and set(value) == {"$datetime"}:
        return _dt.datetime.fromisoformat(str(value["$datetime"]))
    if value is None or hint is None:
        return value
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    candidates = typing.get_args(hint) if union else (hint,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
            try:
                return candidate(value)
            except ValueError:
                continue
        origin = typing.get_origin(candidate)
        if origin in (tuple, frozenset) and isinstance(value, list):
            return origin(value)
    return value


def notification_from_json(payload: str) -> Notification:
    """Rebuild a notification from :func:`notification_to_json`.

    Fields this version does not know are ignored, missing ones take their defaults,
    and ``id`` is a new process-local one.
    """
    data = json.loads(payload)
    hints = _hints()
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(Notification):
        if f.name == "id" or f.name not in data or not f.init:
            continue
        kwargs[f.name] = _decode(data[f.name], hints.get(f.name))
    return Notification(**kwargs)


def notification_uid(notification: Notification) -> str:
    """The notification's own ``uid`` if it has one, else a new random one."""
    uid = getattr(notification, "uid", None)
    return str(uid) if uid else uuid.uuid4().hex
