"""Finding and opening the state file, and masking the configured secrets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import EXIT_FAILED, OFF, STATE_PATH_ENV, fail, load_settings_or_exit

if TYPE_CHECKING:
    from ..state import NotifierState

__all__: list[str] = [
    "process_running",
    "state_file",
]


def state_file(state_path: Path | None, config: Path | None) -> Path:
    """``--state-path`` (or its variable), else the settings' ``state_path``; exit 2
    if the state is off or the settings are wrong."""
    if state_path is None:
        settings = load_settings_or_exit(config)
        settings.register_secrets()
        if settings.state_path is None:
            raise fail(
                "the state file is off in the settings (state_path = none): nothing "
                "is kept on disk; name a file with --state-path"
            )
        return Path(settings.state_path)
    if str(state_path).strip().lower() in OFF:
        raise fail(
            f"the state file is off ({STATE_PATH_ENV} or --state-path is "
            f"{str(state_path)!r}); name a file with --state-path"
        )
    return state_path.expanduser()


@contextmanager
def opened_state(path: Path, *, create: bool = False) -> Iterator[NotifierState]:
    """The state at ``path``. A missing file is exit 1 (unless ``create``: it is
    never created just to be read); one that cannot be opened is exit 2."""
    import sqlite3

    from ..redact import redact
    from ..state import NotifierState

    if not create and not path.exists():
        raise fail(
            f"no state file at {str(path)!r}: nothing has been recorded there yet (a "
            "dispatcher with this state_path creates it when it starts); name "
            "another with --state-path or --config",
            EXIT_FAILED,
        )
    try:
        state = NotifierState(path)
    except (OSError, sqlite3.Error) as exc:
        raise fail(f"cannot open the state file {str(path)!r}: {redact(exc)}") from None
    try:
        yield state
    except sqlite3.Error as exc:
        raise fail(
            f"the state file {str(path)!r} failed: {redact(exc)}", EXIT_FAILED
        ) from None
    finally:
        state.close()


def process_running(host: Any, pid: Any) -> bool | None:
    """Whether ``pid`` runs (``None``: another host, or cannot tell)."""
    import socket

    if host != socket.gethostname() or not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user
    except OSError:
        return None
    return True
