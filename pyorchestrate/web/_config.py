"""``WebConfig``: what the dashboard serves, where, and to whom.

A dashboard on a non-loopback address must have a token (``--token`` or
``PYORCHESTRATE_WEB_TOKEN``): the pages show every agent's errors and the actions
change what runs. Actions (start, stop, restart; mute and unmute on the Alerts page)
need a token and the ``operator`` preset; the default ``read_only`` preset shows no
button and refuses every action. Each action is recorded in the orchestrator's
history with the source ``web`` and the actor ``<actor>@<client address>``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from ..core.config import ConfigModel

__all__ = ["WEB_PERMISSION_PRESETS", "WebConfig", "is_loopback"]

WEB_PERMISSION_PRESETS: dict[str, frozenset[str]] = {
    "read_only": frozenset(),
    "operator": frozenset({"start", "stop", "restart", "mute", "unmute"}),
}
"""The actions each preset allows through the dashboard (always with the token)."""

_ACTOR = re.compile(r"[A-Za-z0-9@._+-]{1,64}\Z")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class WebConfig(ConfigModel):
    """The dashboard's settings (the ``pyorchestrate web`` flags).

    Raises:
        ConfigError: a bad value, or a non-loopback ``host`` (or the ``operator``
            preset) without a ``token``; the message names the field.
    """

    host: str = "127.0.0.1"
    """Address to listen on; anything but loopback needs a ``token``."""
    port: int = Field(default=8000, ge=0, le=65535)
    """TCP port (0: any free port, see ``WebServer.url``)."""
    socket_path: str | None = None
    """The orchestrator's command socket (default: as the CLI finds it)."""
    name: str | None = None
    """The orchestrator of this name in the private socket directory."""
    token: SecretStr | None = None
    """Bearer token for the actions (and, off loopback, for every route)."""
    permissions: Literal["read_only", "operator"] = "read_only"
    """``operator`` shows start/stop/restart and mute/unmute buttons (token
    required)."""
    timeout: float = Field(default=5.0, gt=0)
    """Seconds to wait for the orchestrator's reply to one command."""
    sse_queue_size: int = Field(default=256, gt=0, le=100_000)
    """Messages buffered per live page; a client that falls this far behind is
    dropped (its browser reconnects and starts afresh)."""
    refresh_interval: float = Field(default=2.0, gt=0)
    """Seconds between agent-table refreshes pushed to live pages (uptimes move
    without events); an event triggers one at once."""
    reconnect_interval: float = Field(default=1.0, gt=0)
    """Seconds between attempts to reach an orchestrator that does not answer."""
    history_limit: int = Field(default=200, gt=0, le=100_000)
    """Events the events page and the agent page show at most."""
    actor: str = "token"
    """Who the token's holder is in the history: actions are recorded as
    ``<actor>@<client address>`` (letters, digits, ``@._+-``)."""
    notify_state: str | None = None
    """The notifier state file the Alerts page and the ``notify_*`` metrics read
    (and mutes are written to)."""
    notify_config: str | None = None
    """The notifier settings file (its ``state_path`` and channels), as
    ``pyorchestrate notify --config`` reads it."""

    @field_validator("actor")
    @classmethod
    def _plain_actor(cls, value: str) -> str:
        if not _ACTOR.match(value):
            raise ValueError(
                "1 to 64 letters, digits or @._+- (a name for the history)"
            )
        return value

    @model_validator(mode="after")
    def _token_where_needed(self) -> Self:
        if self.token is not None and not self.token.get_secret_value().strip():
            raise ValueError("token: must not be empty")
        if self.token is None and not is_loopback(self.host):
            raise ValueError(
                f"host: {self.host!r} is not a loopback address; serving the dashboard "
                "beyond this machine needs a token (--token or PYORCHESTRATE_WEB_TOKEN)"
            )
        if self.token is None and self.permissions != "read_only":
            raise ValueError(
                f"permissions: {self.permissions!r} allows actions, which need a token "
                "(--token or PYORCHESTRATE_WEB_TOKEN)"
            )
        return self

    @property
    def allowed_actions(self) -> frozenset[str]:
        """The actions this dashboard offers (none without a token)."""
        if self.token is None:
            return frozenset()
        return WEB_PERMISSION_PRESETS[self.permissions]
