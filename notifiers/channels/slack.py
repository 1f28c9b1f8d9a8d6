"""The Slack channel (``[slack]``): an incoming webhook, posted through apprise.

Built on the apprise base (:mod:`notifiers.channels.apprise`). Rate limit: 1/s per
webhook (:data:`~notifiers.channels.apprise.SLACK_PER_WEBHOOK`), which the apprise
base applies to every Slack webhook URL, also one given in ``[apprise]``. Code blocks (a traceback) keep their
fences, which Slack renders. Extra: ``pyorchestrate[apprise]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, SecretStr, field_validator

from .._sections import Seconds
from ._registry import ChannelSection, register_channel

if TYPE_CHECKING:
    from .apprise import AppriseNotifier

__all__ = ["SlackSettings"]


@register_channel
class SlackSettings(ChannelSection):
    """A Slack incoming webhook (``[slack]``)."""

    section = "slack"
    extra = "apprise"
    requires = ("apprise",)
    package = "apprise"

    webhook_url: SecretStr = Field(
        description="``https://hooks.slack.com/services/T…/B…/…`` or ``slack://…``."
    )
    timeout: Seconds | None = None

    @field_validator("webhook_url")
    @classmethod
    def _check_url(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if not (url.startswith(("https://hooks.slack.com/", "slack://"))):
            raise ValueError(
                "must be a Slack webhook (https://hooks.slack.com/services/…) "
                "or a slack:// URL"
            )
        return value

    def build(self) -> AppriseNotifier:
        """An :class:`~notifiers.channels.apprise.AppriseNotifier` for this webhook."""
        # Imported here so that the built-in sections register in the order
        # notifiers.channels imports them.
        from .apprise import build_apprise

        return build_apprise(self, [self.webhook_url.get_secret_value()])
