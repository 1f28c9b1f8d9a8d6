"""The command channel (Unix socket server and client come with issue 4)."""

from __future__ import annotations

from .permissions import COMMANDS, PRESETS, resolve_allowed_commands

__all__ = ["COMMANDS", "PRESETS", "resolve_allowed_commands"]
