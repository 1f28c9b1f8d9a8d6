"""Agent names.

An agent's name is how everything addresses it: the API, the command channel (a JSON
string) and the CLI (a shell argument). So a name is a non-empty ``str`` of printable
characters (spaces inside are fine) with no whitespace at either end: no control
characters, no line or paragraph separators, nothing invisible (``str.isprintable``).
:func:`check_agent_name` enforces this at registration and when an agent is built.
"""

from __future__ import annotations

from .errors import RegistrationError

__all__ = ["check_agent_name", "check_agent_name_type"]


def check_agent_name_type(name: object, field: str = "name") -> str:
    """Return ``name`` if it is a ``str``; raise ``TypeError`` naming ``field`` if not."""
    if not isinstance(name, str):
        raise TypeError(
            f"{field}: an agent name must be a string, not {type(name).__name__} "
            f"({name!r})"
        )
    return name


def check_agent_name(name: object, field: str = "name") -> str:
    """Return ``name`` if it can name an agent (see the module docstring).

    Raises:
        TypeError: ``name`` is not a ``str``.
        RegistrationError: it is empty, starts or ends with whitespace, or holds a
            character that is not printable (a ``ValueError``); the message names
            ``field``.
    """
    name = check_agent_name_type(name, field)
    if not name:
        raise RegistrationError(
            f"{field}: an agent name must not be empty (None means: the class name)"
        )
    if name != name.strip():
        raise RegistrationError(
            f"{field}: agent name {name!r} must not start or end with whitespace"
        )
    if not name.isprintable():
        bad = next(ch for ch in name if not ch.isprintable())
        raise RegistrationError(
            f"{field}: agent name {name!r} holds U+{ord(bad):04X}, a control or "
            "invisible character; use printable characters"
        )
    return name
