"""Who may do what from a chat: deny by default, two permission presets."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["COMMANDS", "Access", "Permission"]


class Permission(enum.StrEnum):
    """A permission preset: ``read_only`` looks, ``operator`` also acts."""

    READ_ONLY = "read_only"
    OPERATOR = "operator"


COMMANDS: dict[str, tuple[Permission, str]] = {
    "ps": (Permission.READ_ONLY, "every agent: state, pid, uptime, restarts"),
    "status": (Permission.READ_ONLY, "/status NAME: one agent (no NAME: the whole)"),
    "history": (Permission.READ_ONLY, "/history [N]: the last N events (10)"),
    "help": (Permission.READ_ONLY, "what you may do here"),
    "restart": (Permission.OPERATOR, "/restart NAME"),
    "stop": (Permission.OPERATOR, "/stop NAME"),
    "start": (Permission.OPERATOR, "/start NAME"),
    "mute": (Permission.OPERATOR, "/mute NAME 1h: hold its alerts back"),
    "unmute": (Permission.OPERATOR, "/unmute NAME"),
    "ack": (
        Permission.OPERATOR,
        "/ack: acknowledge the last alert (or the one replied to)",
    ),
}
"""Each chat command: the preset it needs and its one-line help."""

BUTTONS: dict[str, Permission] = {
    "restart": Permission.OPERATOR,
    "mute": Permission.OPERATOR,
    "ack": Permission.OPERATOR,
    "log": Permission.READ_ONLY,
}
"""Each button's action and the preset it needs."""


@dataclass(frozen=True)
class Access:
    """The allowlists: user ids and chat ids, each with its preset.

    A message is allowed when its chat is listed, or when it comes from a listed
    user in a private chat (the chat is the user); anything else (a stranger, a
    group the bot was added to without being listed) is not. The permission is the
    higher of the chat's and the user's presets.
    """

    users: Mapping[int, Permission] = field(default_factory=dict)
    chats: Mapping[int, Permission] = field(default_factory=dict)

    def permission(
        self, user: int | None, chat: int | None, *, private: bool
    ) -> Permission | None:
        """The preset that applies, or ``None``: ignore the message."""
        found: list[Permission] = []
        if chat is not None and chat in self.chats:
            found.append(self.chats[chat])
        in_chat = chat in self.chats or (private and chat == user)
        if user is not None and user in self.users and in_chat:
            found.append(self.users[user])
        if not found:
            return None
        return Permission.OPERATOR if Permission.OPERATOR in found else found[0]

    @staticmethod
    def allows(permission: Permission, needed: Permission) -> bool:
        """Whether ``permission`` covers what needs ``needed``."""
        return permission is Permission.OPERATOR or needed is Permission.READ_ONLY
