"""The ``[notify]`` table: validated and attached by the notifiers package, which is
looked up through the ``pyorchestrate.notify`` entry points only when a fleet file has
the table (the core never imports ``notifiers``: tests/test_architecture.py)."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["NOTIFY_GROUP", "Detachable", "attach_notify", "validate_notify"]

NOTIFY_GROUP = "pyorchestrate.notify"
"""Entry points: ``settings`` (a class built from the table's keys, raising a
``ValueError`` with ``.errors`` ``[(path, reason)]``) and ``attach`` (``(orchestrator,
settings) -> an object with detach()``)."""

_INSTALL = "pip install 'pyorchestrate[notify]'"


class Detachable(Protocol):
    """What attaching alerts returns: ``detach()`` ends them (drains and closes)."""

    def detach(self, timeout: float = ...) -> Any: ...


def _load(name: str) -> Any:
    from importlib.metadata import entry_points

    found = [e for e in entry_points(group=NOTIFY_GROUP) if e.name == name]
    if not found:
        raise LookupError(
            f"no {NOTIFY_GROUP!r} entry point {name!r}: is the notifiers package "
            f"installed? ({_INSTALL})"
        )
    try:
        return found[0].load()
    except ImportError as exc:
        raise LookupError(
            f"the notifiers package cannot be loaded ({type(exc).__name__}: {exc}); "
            f"{_INSTALL}"
        ) from None


def validate_notify(
    table: Mapping[str, Any],
) -> tuple[object | None, list[tuple[str, str]]]:
    """``(settings, [])`` for a good table, ``(None, [(path, reason), ...])`` else.

    The table's values are the settings' own (they win over the
    ``PYORCHESTRATE_NOTIFY_*`` environment, which fills what the table leaves out).
    """
    try:
        settings_class = _load("settings")
    except LookupError as exc:
        return None, [("notify", str(exc))]
    try:
        return settings_class(**dict(table)), []
    except ValueError as exc:
        errors = getattr(exc, "errors", None)
        if isinstance(errors, list) and errors:
            return None, [
                (
                    f"notify.{loc}" if loc else "notify",
                    _with_hint(settings_class, str(loc), str(reason)),
                )
                for loc, reason in errors
            ]
        return None, [("notify", f"{type(exc).__name__}: {exc}")]


def _with_hint(model: object, loc: str, reason: str) -> str:
    """``reason``, with ``did you mean 'x'?`` for an unknown key close to a known
    one of its table (the notifier settings' own errors do not suggest)."""
    if not reason.startswith("unknown setting") or "did you mean" in reason:
        return reason
    *parents, key = loc.split(".")
    for part in parents:
        fields = getattr(model, "model_fields", {})
        info = fields.get(part)
        if info is None:
            return reason
        model = _model_in(info.annotation)
    known = list(getattr(model, "model_fields", {}))
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.7)
    return f"unknown key, did you mean {close[0]!r}?" if close else reason


def _model_in(annotation: object) -> object:
    """The pydantic model of a section typed ``Model`` or ``Model | None``."""
    if hasattr(annotation, "model_fields"):
        return annotation
    for arg in typing.get_args(annotation):
        if hasattr(arg, "model_fields"):
            return arg
    return None


def attach_notify(orchestrator: object, settings: object) -> Detachable:
    """Attach the alerts ``settings`` (from :func:`validate_notify`) describe.

    Raises:
        LookupError: the notifiers package is gone since the validation.
        ValueError: the notifiers refused the settings (names the field).
    """
    attach = _load("attach")
    attachment: Detachable = attach(orchestrator, settings)
    return attachment
