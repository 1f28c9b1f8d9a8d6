"""Act on an alert where it is read: Telegram buttons and commands, acknowledgement,
and escalation when nobody answers.

Turned on by ``[telegram] commands = true`` (or ``TelegramNotifier(...,
chatops=ChatOps(...))``). See ``docs/chatops.md`` for the settings and the security
model: deny by default (allowlists of user and chat ids, each ``read_only`` or
``operator``), button data signed with a per-installation secret and valid for
``action_ttl``, every action recorded in the orchestrator's history.
"""

from __future__ import annotations

from ._access import BUTTONS, COMMANDS, Access, Permission
from ._chatops import (
    ChatOps,
    SupportsCommands,
    SupportsMute,
    for_settings,
    parse_permissions,
)
from ._tokens import ACTIONS, CallbackSigner, InvalidToken, SignedAction

__all__ = [
    "ACTIONS",
    "BUTTONS",
    "COMMANDS",
    "Access",
    "CallbackSigner",
    "ChatOps",
    "InvalidToken",
    "Permission",
    "SignedAction",
    "SupportsCommands",
    "SupportsMute",
    "for_settings",
    "parse_permissions",
]
