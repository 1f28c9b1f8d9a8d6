"""What a notification is, what a delivery produced, and what a channel implements."""

from __future__ import annotations

import abc
import datetime as _dt
import enum
import itertools
import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pyorchestrate import Severity

from ._sections import ChannelOptions, checked
from .errors import DeliveryError
from .ratelimit import RateLimit, coerce_rate_limits

__all__ = [
    "DeliveryResult",
    "DeliveryStatus",
    "Notification",
    "Notifier",
    "Severity",
    "TextFormat",
]


class TextFormat(enum.StrEnum):
    """How a channel wants its text: escaped accordingly by the templates."""

    PLAIN = "plain"
    HTML = "html"
    MARKDOWN_V2 = "markdownv2"


_ids = itertools.count(1)
_uids = itertools.count(1)
_UID_PREFIX = uuid.uuid4().hex[:16] + "-"  # random per process: unique across them


def _new_uid_prefix() -> None:
    global _UID_PREFIX
    _UID_PREFIX = uuid.uuid4().hex[:16] + "-"


os.register_at_fork(after_in_child=_new_uid_prefix)  # a forked child is another process
_HOST = socket.gethostname()


@dataclass(frozen=True, slots=True)
class Notification:
    """One alert, before it is formatted for a channel.

    ``title`` and ``body`` are plain text; each channel escapes and cuts them for its
    own format and limits.
    """

    title: str
    body: str
    severity: Severity = Severity.INFO
    agent: str | None = None
    event: str | None = None
    timestamp: _dt.datetime = field(
        default_factory=lambda: _dt.datetime.now().astimezone()
    )
    generation: int | None = None
    error: str | None = None
    host: str = _HOST
    id: int = field(default_factory=lambda: next(_ids))
    uid: str = field(
        default_factory=lambda: f"{_UID_PREFIX}{next(_uids):x}", compare=False
    )
    """Unique across processes: the outbox stores a notification once per channel,
    and a replay after a restart keeps it (``id`` is only this process's counter)."""

    @property
    def key(self) -> tuple[str | None, str | None, str | None]:
        """What makes two alerts "the same" (agent, event, error text)."""
        return (self.agent, self.event, self.error)


class DeliveryStatus(enum.StrEnum):
    """What became of one notification on one channel."""

    DELIVERED = "delivered"
    FAILED = "failed"  # every retry failed (transient errors)
    PERMANENT = "permanent"  # a permanent error: not retried
    MAYBE_DELIVERED = "maybe_delivered"  # sent, no answer; not retried
    DROPPED = "dropped"  # the channel's queue was full
    ABANDONED = "abandoned"  # still queued when the dispatcher closed


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The outcome of one (notification, channel): kept in a ring buffer, given to hooks.

    ``error`` is already redacted.
    """

    notification_id: int
    channel: str
    status: DeliveryStatus
    attempts: int = 0
    error_class: str | None = None
    error: str | None = None
    duration: float = 0.0
    agent: str | None = None
    event: str | None = None
    fallback_for: str | None = None
    """Set when this channel got the notification because ``fallback_for`` (the
    channel before it in an escalation chain) failed to deliver it."""

    @property
    def ok(self) -> bool:
        """Whether the notification was delivered."""
        return self.status is DeliveryStatus.DELIVERED


class Notifier(abc.ABC):
    """A channel. Subclasses implement :meth:`send` (async) and classify their errors.

    ``send`` must raise :class:`~notifiers.errors.TransientDeliveryError` (retried),
    :class:`~notifiers.errors.RateLimited`, :class:`~notifiers.errors.MaybeDelivered`
    or :class:`~notifiers.errors.PermanentDeliveryError`; any other exception counts as
    transient. Everything runs on the dispatcher's event loop thread.

    Rate limits: a :class:`~notifiers.ratelimit.RateLimiter` given to the dispatcher
    as its ``gate`` asks :meth:`rate_limits` before each attempt which token buckets
    the send needs. Channels that know their service's limits override it (Telegram,
    Slack); the base class limits nothing unless ``rate_limits`` is given.

    Args:
        name: the channel's name in results and logs (default: the class's
            ``channel``); a non-empty string, as in the settings.
        rate_limits: limits for this channel as one destination, as
            :class:`~notifiers.ratelimit.RateLimit` or text (``"1/s"``,
            ``"20/min"``); ``None`` (default): the channel's own defaults (none
            here); ``()``: no limits. Subclasses apply them per destination.

    Raises:
        NotifierConfigError: a bad name, or a rate limit that cannot be read
            (naming the argument).
    """

    channel: ClassVar[str] = "notifier"
    text_format: ClassVar[TextFormat] = TextFormat.PLAIN
    max_length: ClassVar[int | None] = None

    def __init__(
        self,
        *,
        name: str | None = None,
        rate_limits: RateLimit | str | Iterable[RateLimit | str] | None = None,
    ) -> None:
        options = checked(ChannelOptions, f"invalid {self.channel} channel", name=name)
        self.name: str = options.name or self.channel
        self.custom_rate_limits: tuple[RateLimit, ...] | None = coerce_rate_limits(
            rate_limits
        )  # None: the channel's defaults
        self.skip_events: frozenset[str] = frozenset()
        """Events this channel does not want (e.g. ``agent_recovered`` where
        recovery messages are opted in on other channels only)."""

    def accepts(self, notification: Notification) -> bool:
        """Whether this channel wants ``notification`` (see :attr:`skip_events`)."""
        return notification.event not in self.skip_events

    def bound(self, dispatcher: Any) -> None:
        """Called once by the :class:`~notifiers.dispatcher.Dispatcher` that runs
        this channel, before its loop starts (nothing to do by default)."""

    def attached(self, orchestrator: object, attachment: Any) -> None:
        """Called by :func:`~notifiers.presets.attach` with the orchestrator whose
        alerts this channel carries (nothing to do by default)."""

    async def start(self) -> None:
        """Prepare the channel on the dispatcher's loop (e.g. create a client)."""

    @abc.abstractmethod
    async def send(self, notification: Notification) -> None:
        """Deliver ``notification`` once (no retrying here), or raise a DeliveryError."""

    async def aclose(self) -> None:
        """Release what :meth:`start` took."""

    def rate_limits(
        self, notification: Notification
    ) -> Sequence[tuple[str, RateLimit]]:
        """The buckets one attempt to send ``notification`` takes a token from.

        Pairs of (destination key, limit). A key names the destination as the
        service counts it (the same chat, webhook, …) and must hold no secret: use
        :func:`~notifiers.ratelimit.destination_id` for tokens and URLs. Called on
        the dispatcher's loop before each attempt; keep it cheap.

        Default: the ``rate_limits`` given to the constructor, for the whole channel
        (key ``"<channel>:<name>"``); none if none were given.
        """
        key = f"{self.channel}:{self.name}"
        return [(key, limit) for limit in self.custom_rate_limits or ()]

    def classify(self, exc: BaseException) -> DeliveryError:
        """Map a foreign exception to our error tree (override per channel)."""
        from .errors import TransientDeliveryError
        from .redact import redact

        return TransientDeliveryError(
            redact(f"{type(exc).__name__}: {exc}"), channel=self.name
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
