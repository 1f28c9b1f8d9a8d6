"""Where command sockets live: private per-user paths (standard library only)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "MAX_SOCKET_PATH",
    "default_socket_dir",
    "default_socket_path",
    "private_sockets",
]

MAX_SOCKET_PATH = 107
"""The longest path (in bytes) an AF_UNIX socket can have on Linux."""


def default_socket_dir() -> Path:
    """The private directory for this user's sockets.

    ``$XDG_RUNTIME_DIR/pyorchestrate`` when that is set, else
    ``<tmp>/pyorchestrate-<uid>``; created 0700 when a server starts, never before.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "pyorchestrate"
    import tempfile  # only here: the CLI's start-up does not need it otherwise

    return Path(tempfile.gettempdir()) / f"pyorchestrate-{os.getuid()}"


def default_socket_path(name: str = "Orchestrator") -> str:
    """The default socket of an orchestrator called ``name``: ``<dir>/<name>.sock``."""
    safe = (
        "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "orchestrator"
    )
    return str(default_socket_dir() / f"{safe}.sock")


def private_sockets() -> list[Path]:
    """Every ``*.sock`` in :func:`default_socket_dir`, sorted (none if it is absent).

    Live or stale alike: whether something answers is for the caller to find out.
    """
    directory = default_socket_dir()
    try:
        return sorted(directory.glob("*.sock"))
    except OSError:
        return []
