"""The webhook channel (``[webhook]``): a JSON (or form, XML) POST per notification.

Built on the apprise base (:mod:`notifiers.channels.apprise`): an HTTP 4xx reply
(but 408, 425, 429) is permanent, anything else transient; the URL's path is
registered as a secret. No default rate limit (``rate_limits`` sets one). Extra:
``pyorchestrate[apprise]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import SecretStr, field_validator

from .._sections import Seconds
from ._registry import ChannelSection, register_channel

if TYPE_CHECKING:
    from .apprise import AppriseNotifier

__all__ = ["WebhookSettings"]

_WEBHOOK_SCHEMES = {
    "http": "json",
    "https": "jsons",
    **{s: s for s in ("json", "jsons", "form", "forms", "xml", "xmls")},
}


@register_channel
class WebhookSettings(ChannelSection):
    """A generic HTTP webhook (``[webhook]``): a JSON POST for each notification.

    ``http(s)://`` URLs become apprise's ``json(s)://``; ``form(s)://`` and
    ``xml(s)://`` are passed on as they are.
    """

    section = "webhook"
    extra = "apprise"
    requires = ("apprise",)
    package = "apprise"

    url: SecretStr
    timeout: Seconds | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: SecretStr) -> SecretStr:
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in _WEBHOOK_SCHEMES or not parts.netloc:
            raise ValueError(
                "must be an http(s)://, json(s)://, form(s):// or xml(s):// URL "
                "with a host"
            )
        return value

    def apprise_url(self) -> SecretStr:
        """The URL in apprise's form (``https://`` → ``jsons://``)."""
        url = self.url.get_secret_value()
        scheme, rest = url.split("://", 1)
        return SecretStr(f"{_WEBHOOK_SCHEMES[scheme]}://{rest}")

    def build(self) -> AppriseNotifier:
        """An :class:`~notifiers.channels.apprise.AppriseNotifier` for this URL."""
        # Imported here so that the built-in sections register in the order
        # notifiers.channels imports them.
        from .apprise import build_apprise

        return build_apprise(self, [self.apprise_url().get_secret_value()])
