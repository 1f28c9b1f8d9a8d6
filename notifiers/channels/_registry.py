"""The channel registry: each channel's settings section, and what builds it.

A channel is one module. It defines a :class:`ChannelSection` subclass, its settings
section, which declares its metadata as class attributes (``section``: the key of
``[section]`` and of ``PYORCHESTRATE_NOTIFY_<SECTION>__*``; ``extra`` and
``requires``: what ``pip install`` brings in) and implements one method,
:meth:`ChannelSection.build`; and it calls :func:`register_channel` on it.
:class:`~notifiers.settings.NotifierSettings` has one optional field per registered
section, in registration order, and :func:`~notifiers.settings.build_notifiers`
builds one channel per section that is set: no list of channels anywhere else.

The built-in channels register when :mod:`notifiers.channels` is imported; another
distribution's channel module registers through the ``notifiers.channels`` entry-point
group (loaded once, when the settings first need the sections). Registration ends
there: the settings model is composed once, so a section registered after it could
never be read, and :func:`register_channel` refuses it.
"""

from __future__ import annotations

import abc
import importlib.metadata
import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar, TypeVar

from pydantic import Field

from .._sections import ChannelOptions

if TYPE_CHECKING:
    from ..base import Notifier

__all__ = [
    "ENTRY_POINT_GROUP",
    "ChannelSection",
    "register_channel",
    "registered_channels",
    "sealed_channels",
]

logger = logging.getLogger("notifiers.channels")

ENTRY_POINT_GROUP = "notifiers.channels"
"""The entry-point group through which another distribution adds a channel module."""

_RESERVED = frozenset(
    {
        "agents",
        "min_severity",
        "outbox_size",
        "preset",
        "queue_size",
        "rate_limiting",
        "retry",
        "rules",
        "state_path",
        "config_file",
    }
)
_CHANNELS: dict[str, type[ChannelSection]] = {}
_sealed = False


class ChannelSection(ChannelOptions, abc.ABC):
    """Base of every channel's settings section: strict, validated on assignment,
    inputs hidden from errors.

    Class attributes (the channel's metadata):
        section: the section's key (``"telegram"``: ``[telegram]`` in TOML,
            ``PYORCHESTRATE_NOTIFY_TELEGRAM__*`` in the environment).
        extra: the pyorchestrate extra that installs what the channel needs.
        requires: the top-level modules that extra provides; checked before
            :meth:`build`, so a missing one is a clear error naming the extra.
        package: the distribution to name in that error.
    """

    section: ClassVar[str] = ""
    extra: ClassVar[str | None] = None
    requires: ClassVar[tuple[str, ...]] = ()
    package: ClassVar[str | None] = None

    recovery: bool | None = Field(
        default=None,
        description="Send 'recovered after 42 s' messages on this channel (true turns "
        "the rule on for it alone); None: as rules.recovery says.",
    )
    fallback: str | None = Field(
        default=None,
        min_length=1,
        description="The channel (by name) that gets an alert this one failed to "
        "deliver after its retries; it then gets only what is handed to it.",
    )

    @property
    def channel_name(self) -> str:
        """The channel's name: ``name``, or else the section's key."""
        return self.name or self.section

    @abc.abstractmethod
    def build(self) -> Notifier:
        """The channel these settings describe (nothing is sent).

        Register the secrets it holds with :data:`notifiers.redact.SECRETS` first.

        Raises:
            NotifierConfigError: the channel rejects its settings.
        """


_S = TypeVar("_S", bound=type[ChannelSection])


def register_channel(section: _S) -> _S:
    """Register a channel's settings section (usable as a class decorator).

    Registering the same class again does nothing (a module imported twice).

    Raises:
        TypeError: not a :class:`ChannelSection` subclass.
        ValueError: its ``section`` key is not a lower-case identifier, is one of the
            settings' own fields, or is taken by another class.
        RuntimeError: the settings model was already composed.
    """
    if not (isinstance(section, type) and issubclass(section, ChannelSection)):
        raise TypeError(f"{section!r} is not a ChannelSection subclass")
    key = section.section
    if not (key.isidentifier() and key == key.lower() and not key.startswith("_")):
        raise ValueError(
            f"{section.__qualname__}.section must be a lower-case identifier, "
            f"not {key!r}"
        )
    if key in _RESERVED:
        raise ValueError(f"{section.__qualname__}.section {key!r} is a settings field")
    known = _CHANNELS.get(key)
    if known is section:
        return section
    if known is not None:
        raise ValueError(
            f"the channel section {key!r} is already registered by "
            f"{known.__module__}.{known.__qualname__}"
        )
    if _sealed:
        raise RuntimeError(
            f"cannot register the channel section {key!r}: the settings were already "
            "composed; import its module before notifiers.settings, or declare it in "
            f"the {ENTRY_POINT_GROUP!r} entry-point group"
        )
    _CHANNELS[key] = section
    return section


def registered_channels() -> Mapping[str, type[ChannelSection]]:
    """The registered sections by key, in registration order (read-only)."""
    return MappingProxyType(_CHANNELS)


def sealed_channels() -> Mapping[str, type[ChannelSection]]:
    """Load the entry-point channels (once), end registration, and return them all.

    A channel module that fails to load is logged at ERROR and left out: the other
    channels still work.
    """
    global _sealed
    if not _sealed:
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                entry.load()
            except Exception:
                logger.exception(
                    "cannot load the channel module of entry point %r (%s)",
                    entry.name,
                    entry.value,
                )
        _sealed = True
    return registered_channels()
