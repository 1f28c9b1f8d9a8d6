"""The e-mail channel (``[email]``): SMTP, sent through apprise's ``mailto://``.

Built on the apprise base (:mod:`notifiers.channels.apprise`), which classifies SMTP
replies and logins (a refused login is permanent, a 4xx reply transient) for any
``mailto://`` URL. E-mail has no default rate limit (``rate_limits`` sets one).
Extra: ``pyorchestrate[apprise]``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal, Self
from urllib.parse import quote, urlencode

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator

from .._sections import Number, Seconds
from ..redact import SECRETS
from ._registry import ChannelSection, register_channel

if TYPE_CHECKING:
    from .apprise import AppriseNotifier

__all__ = ["EmailSettings"]

_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+")


@register_channel
class EmailSettings(ChannelSection):
    """E-mail over SMTP (``[email]``), sent through apprise's ``mailto://``."""

    section = "email"
    extra = "apprise"
    requires = ("apprise",)
    package = "apprise"

    host: str = Field(min_length=1, description="The SMTP server.")
    port: Number | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="The SMTP port (default by mode: 25, 465 or 587).",
    )
    username: str | None = Field(default=None, min_length=1)
    password: SecretStr | None = None
    sender: str = Field(
        validation_alias=AliasChoices("sender", "from"),
        description="The From address (``from`` works too).",
    )
    recipients: list[str] = Field(min_length=1, description="The To addresses.")
    mode: Literal["insecure", "ssl", "starttls"] = Field(
        default="starttls",
        description="``insecure`` (plain SMTP), ``ssl`` or ``starttls``.",
    )
    timeout: Seconds | None = None

    @field_validator("sender")
    @classmethod
    def _check_sender(cls, value: str) -> str:
        if not _ADDRESS.fullmatch(value.strip()):
            raise ValueError("must be an e-mail address")
        return value.strip()

    @field_validator("recipients")
    @classmethod
    def _check_recipients(cls, value: list[str]) -> list[str]:
        bad = [i for i, address in enumerate(value) if not _ADDRESS.fullmatch(address)]
        if bad:
            raise ValueError(f"entries {bad} are not e-mail addresses")
        return [address.strip() for address in value]

    @model_validator(mode="after")
    def _password_needs_username(self) -> Self:
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        return self

    def apprise_url(self) -> SecretStr:
        """The ``mailto://`` (insecure) or ``mailtos://`` (ssl, starttls) apprise URL."""
        scheme = "mailto" if self.mode == "insecure" else "mailtos"
        auth = ""
        if self.username is not None:
            auth = quote(self.username, safe="")
            if self.password is not None:
                auth += ":" + quote(self.password.get_secret_value(), safe="")
            auth += "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port is not None else ""
        query = urlencode(
            {
                "smtp": self.host,
                "from": self.sender,
                "to": ",".join(self.recipients),
                "mode": self.mode,
            }
        )
        return SecretStr(f"{scheme}://{auth}{host}{port}/?{query}")

    def build(self) -> AppriseNotifier:
        """An :class:`~notifiers.channels.apprise.AppriseNotifier` for this server."""
        # Imported here so that the built-in sections register in the order
        # notifiers.channels imports them.
        from .apprise import build_apprise

        if self.password is not None:
            SECRETS.add(self.password.get_secret_value())
        return build_apprise(self, [self.apprise_url().get_secret_value()])
