"""The channels: one module each, registered with their settings section.

=========================  ==============================================  =========
module                     channel (settings section)                      extra
=========================  ==============================================  =========
:mod:`.telegram`           a Telegram chat through a bot (``[telegram]``)  telegram
:mod:`.email`              e-mail over SMTP (``[email]``)                  apprise
:mod:`.slack`              a Slack incoming webhook (``[slack]``)          apprise
:mod:`.webhook`            a JSON/form/XML HTTP POST (``[webhook]``)       apprise
:mod:`.apprise`            any apprise URLs (``[apprise]``); the apprise   apprise
                           base of the three above
=========================  ==============================================  =========

A channel module holds its :class:`~notifiers.base.Notifier` (or builds one of a
shared base), its settings section (a :class:`ChannelSection` that implements
``build()``), its default rate limits and the extra it needs, and registers the
section with :func:`register_channel`. The settings then have a ``[section]`` table
and ``PYORCHESTRATE_NOTIFY_<SECTION>__*`` variables for it, and
:func:`~notifiers.settings.build_notifiers` builds it: nothing else changes. A
channel module must import its third-party library on first use, not at import:
every registered module is imported when the settings load.

Another distribution adds a channel by declaring its module in the
``notifiers.channels`` entry-point group::

    [project.entry-points."notifiers.channels"]
    pager = "mypkg.pager_channel"
"""

from __future__ import annotations

# The built-in channels, in the order the settings list and build them; each module
# registers its section when imported.
# isort: off
from . import telegram as telegram
from . import email as email
from . import slack as slack
from . import webhook as webhook
from . import apprise as apprise

# isort: on
from ._registry import (
    ENTRY_POINT_GROUP,
    ChannelSection,
    register_channel,
    registered_channels,
    sealed_channels,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ChannelSection",
    "register_channel",
    "registered_channels",
    "sealed_channels",
]
