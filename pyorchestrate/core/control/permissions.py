"""Which control commands an orchestrator accepts: presets and explicit sets."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["COMMANDS", "PERMISSION_PRESETS", "resolve_allowed_commands"]

COMMANDS: frozenset[str] = frozenset(
    {
        "commands",
        "dependencies",
        "history",
        "history-stats",
        "logs",
        "ping",
        "ps",
        "record-action",
        "reload",
        "reopen-logs",
        "restart",
        "shutdown",
        "start",
        "stats",
        "status",
        "stop",
        "subscribe",
    }
)
"""Every command the control channel knows."""

_READ_ONLY = frozenset(
    {
        "commands",
        "dependencies",
        "history",
        "history-stats",
        "logs",
        "ps",
        "stats",
        "status",
    }
)
"""What only reads (``reopen-logs`` and ``reload`` are an operator's actions: not
here)."""

PERMISSION_PRESETS: dict[str, frozenset[str]] = {
    "production": _READ_ONLY | {"subscribe"},
    "read_only": _READ_ONLY | {"subscribe"},
    "monitoring": (_READ_ONLY - {"dependencies"}) | {"subscribe"},
    "development": COMMANDS,
}
"""Named permission sets (names are case-insensitive).

Not to be confused with ``notifiers.PRESETS``, the alert presets."""

PRESETS = PERMISSION_PRESETS
"""The former name of :data:`PERMISSION_PRESETS` (kept so old imports work)."""


def resolve_allowed_commands(value: str | Iterable[str] | None) -> frozenset[str]:
    """Return the allowed command set for a preset name, an explicit set, or ``None``.

    ``None`` allows everything. An explicit set is kept as given, minus unknown names.

    Raises:
        ValueError: an unknown preset name, or a value of another type.
    """
    if value is None:
        return COMMANDS
    if isinstance(value, str):
        key = value.strip().lower()
        if key not in PERMISSION_PRESETS:
            known = ", ".join(sorted(PERMISSION_PRESETS))
            raise ValueError(f"unknown preset {value!r}; known presets: {known}")
        return PERMISSION_PRESETS[key]
    if isinstance(value, Iterable):
        names = set()
        for item in value:
            if not isinstance(item, str):
                raise ValueError(f"command names must be strings, got {item!r}")
            names.add(item.strip().lower())
        return frozenset(names & COMMANDS)
    raise ValueError(f"must be a preset name, a set of commands or None, not {value!r}")
