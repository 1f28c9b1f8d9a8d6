"""Running one control command for a caller, and the audit trail of the actions.

The socket server and :meth:`Orchestrator.run_command` (the web page, a chat bot, any
in-process caller) run commands here, so both check the same things in the same order
(known command, allowed, argument count) and record the same audit events: every
action (``start``, ``stop``, ``restart``, ``shutdown``, ``reload``, ``reopen-logs``),
done or refused by its handler, becomes an ``OPERATOR_ACTION`` event in the history
with who asked (``actor``), from where (``source``) and the result. ``record-action``
records an action done outside the orchestrator (a mute, an acknowledgement).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import CommandFailed, CommandForbidden, ControlError, UnknownCommand
from .commands import COMMAND_TABLE, Audit, Command
from .target import ControlTarget

__all__ = ["Caller", "check_command", "execute"]

logger = logging.getLogger("pyorchestrate.control")

MAX_META_KEYS = 8
MAX_TEXT = 200
"""Audit fields a caller gives are cut to this many characters."""

_KEY = re.compile(r"[a-z][a-z0-9_]{0,31}\Z")
_RESERVED = frozenset({"action", "source", "actor", "ok", "result", "target"})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who runs a command: ``source`` (``cli``, ``web``, ``telegram``, ``api``),
    ``actor`` (a person or a token's name, if known) and other facts to keep with
    the audit event (``chat``: the chat an action came from)."""

    source: str = "api"
    actor: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls, source: object, actor: object = None, meta: Mapping[str, Any] | None = None
    ) -> Caller:
        """A caller from what a request says, trimmed to what the history keeps:
        short texts, a few scalar meta fields with plain names (others are
        dropped)."""
        extra = dict(meta or {})
        if actor is None:
            actor = extra.pop("actor", None)
        else:
            extra.pop("actor", None)
        return cls(
            source=_text(source) or "client",
            actor=_text(actor) or None,
            meta=_clean_meta(extra),
        )


def _text(value: object) -> str:
    if value is None:
        return ""
    return str(value).strip()[:MAX_TEXT]


def _clean_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in meta.items():
        if len(kept) >= MAX_META_KEYS:
            break
        if not isinstance(key, str) or not _KEY.match(key) or key in _RESERVED:
            continue
        if isinstance(value, bool | int | float) or value is None:
            kept[key] = value
        elif isinstance(value, str):
            kept[key] = value[:MAX_TEXT]
    return kept


def check_command(name: str, args: Sequence[Any], allowed: frozenset[str]) -> Command:
    """The command ``name`` if it is known, allowed and given a fitting number of
    arguments.

    Raises:
        UnknownCommand: no such command, or the wrong number of arguments (400).
        CommandForbidden: not in ``allowed`` (403).
    """
    command = COMMAND_TABLE.get(name)
    if command is None:
        known = ", ".join(sorted(COMMAND_TABLE))
        raise UnknownCommand(f"Unknown command {name!r}; commands: {known}")
    if name not in allowed:
        listed = ", ".join(sorted(allowed)) or "none"
        raise CommandForbidden(
            f"Command {name!r} is not allowed. Allowed commands: {listed}",
            data={"allowed_commands": sorted(allowed)},
        )
    if not command.min_args <= len(args) <= command.max_args:
        usage = f"{command.name} takes {command.min_args}"
        if command.max_args != command.min_args:
            usage += f" to {command.max_args}"
        raise UnknownCommand(f"{usage} argument(s), got {len(args)}")
    return command


def execute(
    target: ControlTarget, command: Command, args: list[Any], caller: Caller
) -> dict[str, Any]:
    """Run ``command`` (already checked) on ``target`` and return the reply's data;
    record it when it is an action. Blocks while the command runs.

    Raises:
        ControlError: the command's error (recorded first, for an action); an
            unexpected exception becomes a ``CommandFailed`` naming it (500), logged
            with its traceback.
    """
    if command.handler is None:
        raise UnknownCommand(f"{command.name!r} streams: use the socket")
    agent = args[0] if command.audit is Audit.ACTION and args else None
    try:
        data = command.handler(target, args)
    except ControlError as error:
        failure: ControlError = error
    except Exception as exc:
        logger.exception("command %r failed", command.name)
        failure = CommandFailed(f"{type(exc).__name__}: {exc}")
        failure.__cause__ = exc
    else:
        if command.audit is Audit.OUTSIDE:
            _record(target, caller, **data)
            return {"message": f"recorded {data['action']!r}"}
        if command.audit is Audit.ACTION:
            result = str(data.get("message") or "ok")
            _record(target, caller, action=command.name, agent=agent, result=result)
        return data
    if command.audit is Audit.ACTION:
        _record(
            target,
            caller,
            action=command.name,
            agent=agent,
            ok=False,
            result=str(failure),
        )
    raise failure


def _record(
    target: ControlTarget,
    caller: Caller,
    *,
    action: str,
    agent: object = None,
    actor: object = None,
    ok: bool = True,
    result: str = "ok",
    meta: Mapping[str, Any] | None = None,
) -> None:
    target.record_action(
        action,
        agent=None if agent is None else _text(agent),
        source=caller.source,
        actor=_text(actor) or caller.actor,
        ok=ok,
        result=_text(result),
        meta={**caller.meta, **_clean_meta(meta or {})},
    )
