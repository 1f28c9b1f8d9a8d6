"""``${VAR}`` and ``${VAR:-default}`` in a fleet file's strings, and ``*_file`` secrets.

Both run on the parsed TOML, before validation, and remember every value they bring
in that may be a secret, so that no error message and no table shows it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.agent.command import SECRET_ENV_KEY

__all__ = ["SECRET_FILE_SUFFIX", "Interpolator"]

SECRET_FILE_SUFFIX = "_file"
"""In ``[notify]``, ``token_file = "/run/secrets/tg"`` sets ``token`` to that file's
text (one trailing newline dropped), the way Docker secrets and Alertmanager do it."""

_REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}"
    r"|(?P<bad>\{[^}]*\}?))"
)


class Interpolator:
    """Substitutes the environment into a parsed file; collects errors and secrets.

    Args:
        environ: the variables ``${VAR}`` reads.
        base: the directory relative ``*_file`` paths are read from.
    """

    def __init__(self, environ: Mapping[str, str], base: Path) -> None:
        self._environ = environ
        self._base = base
        self.errors: list[tuple[str, str]] = []
        self.secrets: set[str] = set()

    def expand(self, value: Any, path: str) -> Any:
        """``value`` with every string's ``${...}`` replaced, recursively."""
        if isinstance(value, str):
            return self._expand_text(value, path)
        if isinstance(value, list):
            return [self.expand(item, f"{path}[{i}]") for i, item in enumerate(value)]
        if isinstance(value, dict):
            return {
                key: self.expand(item, _join(path, key)) for key, item in value.items()
            }
        return value

    def _expand_text(self, text: str, path: str) -> str:
        secret_key = _is_secret_key(path)

        def replace(match: re.Match[str]) -> str:
            if match["escaped"]:
                return "$"
            name = match["name"]
            if name is None:
                self.errors.append(
                    (path, f"{match[0]!r} is not ${{VAR}} or ${{VAR:-default}}")
                )
                return ""
            value = self._environ.get(name)
            if value is None:
                if match["default"] is None:
                    self.errors.append(
                        (path, f"environment variable {name} is not set (no default)")
                    )
                    return ""
                value = match["default"]
            if SECRET_ENV_KEY.search(name):
                self.remember(value)
            return value

        expanded = _REFERENCE.sub(replace, text)
        if secret_key:  # token = "..." written in the file itself is a secret too
            self.remember(expanded)
        return expanded

    def read_secret_files(self, table: Any, path: str) -> Any:
        """``table`` with each ``KEY_file = PATH`` turned into ``KEY = <file text>``,
        recursively (tables only)."""
        if not isinstance(table, dict):
            return table
        out: dict[str, Any] = {}
        for key, value in table.items():
            where = _join(path, key)
            if isinstance(value, dict):
                out[key] = self.read_secret_files(value, where)
                continue
            if not (key.endswith(SECRET_FILE_SUFFIX) and len(key) > 5):
                out[key] = value
                continue
            target = key[: -len(SECRET_FILE_SUFFIX)]
            if target in table:
                self.errors.append((where, f"give {target!r} or {key!r}, not both"))
                continue
            if not isinstance(value, str) or not value:
                self.errors.append((where, "must be the path of a file"))
                continue
            file = Path(value).expanduser()
            if not file.is_absolute():
                file = self._base / file
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or type(exc).__name__
                self.errors.append((where, f"cannot read {str(file)!r}: {reason}"))
                continue
            secret = text.removesuffix("\n").removesuffix("\r")
            self.remember(secret)
            out[target] = secret
        return out

    def remember(self, secret: str) -> None:
        """Never show ``secret`` (a value shorter than 4 characters is not masked:
        it would mask every ``1`` in a message, and guessing it is trivial anyway)."""
        if len(secret) >= 4:
            self.secrets.add(secret)


def _is_secret_key(path: str) -> bool:
    """Whether the key a value is written under (the last part of ``path``, list
    indexes aside) looks secret: ``token``, ``API_KEY``, ``password``, ..."""
    key = path.rsplit(".", 1)[-1].split("[", 1)[0]
    if key.endswith(SECRET_FILE_SUFFIX):  # a path to the secret, not the secret
        return False
    return bool(SECRET_ENV_KEY.search(key))


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)
