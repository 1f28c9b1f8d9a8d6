"""The Telegram channel: one long-lived ``telegram.Bot`` on the dispatcher's event loop.

This module is the whole channel: :class:`TelegramNotifier`, its ``[telegram]``
settings section (:class:`TelegramSettings`), its rate limits (``TELEGRAM_*``) and
its extra (``pyorchestrate[telegram]``: python-telegram-bot, imported on first use,
so the settings load without it).

The Bot (and its httpx connection pool) is built once, in :meth:`TelegramNotifier.start`,
on the loop that will use it, and shut down in :meth:`TelegramNotifier.aclose`; it is
never rebuilt per message nor shared across loops. ``base_url`` points it at a local
fake (see :class:`notifiers.testing.FakeTelegramServer`) or a self-hosted Bot API.

How python-telegram-bot's errors are classified (``BadRequest`` and ``TimedOut``
subclass ``NetworkError``, so the specific ones are checked first)::

    RetryAfter                          → RateLimited(retry_after)
    ChatMigrated                        → Transient, after switching to the new chat id
    BadRequest, Forbidden, InvalidToken,
    EndPointNotFound, Conflict          → Permanent
    TimedOut (read/write timeout)       → MaybeDelivered (the request went out)
    TimedOut (connect/pool timeout)     → Transient (nothing was sent)
    NetworkError (5xx, refused, …)      → Transient
    anything else                       → Transient

Rate limits (with a :class:`~notifiers.ratelimit.RateLimiter` as the dispatcher's
gate; the constants below), after Telegram's Bot FAQ: per chat a burst of 5, then 1 message/s; for a
group, supergroup or channel (a negative chat id or an ``@name``) also a burst of 5,
then 15/min, so never more than 20 in a minute; and 30/s per bot, shared by every
channel of the same bot token. Waiting happens on the dispatcher's loop, per channel.

Every message is redacted: the token and ``bot<token>`` are registered in
:data:`notifiers.redact.SECRETS`, and httpx's request log lines are filtered.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import functools
import json
import logging
import re
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import Field, SecretStr, field_validator

from .._sections import Duration, Number, Seconds, checked, http_url
from ..base import Notification, Notifier, TextFormat
from ..errors import (
    DeliveryError,
    MaybeDelivered,
    NotifierConfigError,
    PermanentDeliveryError,
    RateLimited,
    TransientDeliveryError,
)
from ..ratelimit import RateLimit, coerce_rate_limits, destination_id
from ..redact import SECRETS, install_log_redaction, redact
from ..templates import format_text
from ._registry import ChannelSection, register_channel

if TYPE_CHECKING:
    import telegram
    from telegram.error import RetryAfter
    from telegram.request import HTTPXRequest


__all__ = [
    "TELEGRAM_BURST",
    "TELEGRAM_PER_BOT",
    "TELEGRAM_PER_CHAT",
    "TELEGRAM_PER_GROUP",
    "ChatActions",
    "SecretLike",
    "TelegramNotifier",
    "TelegramSettings",
]

logger = logging.getLogger("notifiers.telegram")  # its name before the move: kept

_READ_TIMEOUT = 10.0
_CONNECT_TIMEOUT = 5.0
_BOT_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")
_CHAT_ID = re.compile(r"-?\d+")
_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,}")

# Telegram's limits, from its Bot FAQ, "My bot is hitting limits, how do I avoid
# this?" (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
# "When sending messages inside a particular chat, avoid sending more than one
# message per second. We may allow short bursts that go over this limit, but
# eventually you'll begin receiving 429 errors." -- "If you're sending bulk
# notifications to multiple users, the API will not allow more than 30 messages per
# second or so." -- "your bot will not be able to send more than 20 messages per
# minute to the same group." The FAQ gives no burst size: 5 is a short burst, and a
# 429 that still comes is honoured (its retry-after holds the chat for every channel).
TELEGRAM_BURST = 5
"""Messages sent to one Telegram chat at once before its rate applies."""
TELEGRAM_PER_CHAT = RateLimit.per_second(1, burst=TELEGRAM_BURST)
"""Telegram: bursts of 5 messages to one chat, then one per second."""
TELEGRAM_PER_GROUP = RateLimit.per_minute(20 - TELEGRAM_BURST, burst=TELEGRAM_BURST)
"""Telegram: at most 20 messages per minute to one group, supergroup or channel:
bursts of 5, then 15 per minute (a full bucket and a minute's refill make 20)."""
TELEGRAM_PER_BOT = RateLimit.per_second(30)
"""Telegram: about 30 messages per second per bot, all chats together."""


class SecretLike(Protocol):
    """Anything with ``get_secret_value()``, such as pydantic's ``SecretStr``."""

    def get_secret_value(self) -> str: ...


class ChatActions(Protocol):
    """What the channel needs of :class:`notifiers.chatops.ChatOps` (buttons on its
    alerts, commands polled by its Bot); a protocol, so that channels never import
    the dispatcher or the state file that chat-ops uses."""

    def bind_dispatcher(self, dispatcher: Any, channel: str) -> None: ...

    def bind(self, orchestrator: object, rules: Any = None) -> None: ...

    def launch(
        self,
        bot: telegram.Bot,
        classify: Callable[[BaseException], BaseException] | None = None,
    ) -> None: ...

    async def stop(self) -> None: ...

    def reserve(self, text_limit: int) -> int: ...

    def prepare(
        self, notification: Notification, chat: object
    ) -> tuple[int, Any] | None: ...

    def sent(
        self,
        alert: int,
        notification: Notification,
        chat: object,
        message: Any,
        text: str,
    ) -> None: ...


@register_channel
class TelegramSettings(ChannelSection):
    """A Telegram chat, through a bot (``[telegram]``)."""

    section = "telegram"
    extra = "telegram"
    requires = ("telegram",)
    package = "python-telegram-bot"

    token: SecretStr = Field(description="The bot token from @BotFather.")
    chat_id: int | str = Field(
        description="A numeric chat id, or ``@channelname`` for a public channel."
    )
    base_url: str | None = Field(
        default=None, description="Another Bot API server (e.g. a local fake)."
    )
    read_timeout: Seconds | None = Field(
        default=None, description="Seconds to wait for Telegram's answer."
    )
    connect_timeout: Seconds | None = Field(
        default=None, description="Seconds to wait for a connection."
    )
    disable_notification: bool = Field(
        default=False, description="Deliver silently (no sound on the phones)."
    )
    message_thread_id: Number | None = Field(
        default=None, description="A forum topic of the chat."
    )
    allowed_users: list[int] = Field(
        default_factory=list,
        description="Chat-ops: user ids that may use commands and buttons (in a "
        "private chat with the bot, or in an allowed chat).",
    )
    allowed_chats: list[int] = Field(
        default_factory=list,
        description="Chat-ops: chat ids (groups too) whose members may use commands "
        "and buttons; a group not listed gets no reply.",
    )
    permissions: dict[str, Literal["read_only", "operator"]] = Field(
        default_factory=dict,
        description="Chat-ops: the preset of each listed user or chat id (the id as "
        "the key); read_only (the default) may use /ps /status /history /help and "
        "Log; operator may also restart, stop, start, mute and ack.",
    )
    commands: bool = Field(
        default=False,
        description="Chat-ops: buttons on alerts and chat commands, polled by the "
        "same bot; needs allowed_users or allowed_chats.",
    )
    ack_timeout: Duration | None = Field(
        default=None,
        description="Chat-ops: an alert at ERROR or worse not acknowledged within "
        "this time (e.g. '10m') goes on to escalate_to.",
    )
    escalate_to: list[str] | None = Field(
        default=None,
        description="Chat-ops: the channel (or chain of channels) an alert goes to "
        "when nobody acknowledged it within ack_timeout.",
    )
    action_ttl: Duration = Field(
        default=86_400.0,
        description="Chat-ops: how long an alert's buttons stay valid (default 24h).",
    )

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value().strip()
        if not _BOT_TOKEN.fullmatch(token):
            raise ValueError("does not look like a bot token (<digits>:<letters>)")
        return SecretStr(token)

    @field_validator("chat_id", mode="before")
    @classmethod
    def _check_chat_id(cls, value: object) -> int | str:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            text = value.strip()
            if _CHAT_ID.fullmatch(text):
                return int(text)
            if _USERNAME.fullmatch(text):
                return text
        raise ValueError("must be an integer chat id or an @channel username")

    _check_base_url = field_validator("base_url")(http_url)

    def chatops_problems(self) -> list[tuple[str, str]]:
        """What the chat-ops settings lack together (each field alone is checked
        as it is read): checked when the channel is built."""
        problems: list[tuple[str, str]] = []
        listed = {str(i) for i in (*self.allowed_users, *self.allowed_chats)}
        strangers = sorted(k for k in self.permissions if k not in listed)
        if strangers:
            problems.append(
                (
                    "permissions",
                    f"{len(strangers)} id(s) not in allowed_users or allowed_chats "
                    "(list them there first)",
                )
            )
        if self.commands and not listed:
            problems.append(
                (
                    "commands",
                    "needs allowed_users or allowed_chats (commands are denied to "
                    "everyone else)",
                )
            )
        if self.ack_timeout is not None and not self.commands:
            problems.append(
                (
                    "ack_timeout",
                    "needs commands = true (an ack comes from a button or /ack)",
                )
            )
        if self.ack_timeout is not None and not (self.escalate_to or self.fallback):
            problems.append(
                ("ack_timeout", "needs escalate_to (where an unacked alert goes)")
            )
        return problems

    @field_validator("permissions")
    @classmethod
    def _strip_permission_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return {k.strip(): v for k, v in value.items()}

    @field_validator("escalate_to", mode="before")
    @classmethod
    def _one_or_more(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("escalate_to")
    @classmethod
    def _check_escalate_to(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or not all(v.strip() for v in value)):
            raise ValueError("must name at least one channel")
        return None if value is None else [v.strip() for v in value]

    def build(self) -> TelegramNotifier:
        """A :class:`TelegramNotifier` for this chat.

        Raises:
            NotifierConfigError: chat-ops settings that do not fit together (e.g.
                ``commands = true`` with nobody allowed), naming the field.
        """
        problems = self.chatops_problems()
        if problems:
            raise NotifierConfigError("invalid Telegram settings", problems)
        token = self.token.get_secret_value()
        SECRETS.add(token)
        options: dict[str, Any] = {
            "base_url": self.base_url,
            "name": self.channel_name,
            "disable_notification": self.disable_notification,
            "message_thread_id": self.message_thread_id,
        }
        for timeout in ("read_timeout", "connect_timeout"):
            if getattr(self, timeout) is not None:
                options[timeout] = getattr(self, timeout)
        if self.rate_limits is not None:
            options["rate_limits"] = list(self.rate_limits)
        # commands = true: the settings add chat-ops (notifiers.chatops.for_settings)
        return TelegramNotifier(token, self.chat_id, **options)


def _reveal(token: object) -> object:
    """A ``SecretLike``'s text; anything else as it is, for the model to judge."""
    if isinstance(token, str | SecretStr):
        return token
    reveal = getattr(token, "get_secret_value", None)
    return reveal() if callable(reveal) else token


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Building an SSL context costs ~15 ms, and a Bot has two HTTPXRequests: share one.
    return ssl.create_default_context()


def _flood_wait(code: int, payload: bytes) -> float | None:
    """``parameters.retry_after`` of a non-2xx reply (unless it is a chat migration)."""
    if 200 <= code <= 299:
        return None
    try:
        data = json.loads(payload.decode("utf-8", "replace"))
    except ValueError:
        return None
    parameters = data.get("parameters") if isinstance(data, dict) else None
    if not isinstance(parameters, dict) or parameters.get("migrate_to_chat_id"):
        return None
    retry_after = parameters.get("retry_after")
    if isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
        return float(retry_after) if retry_after > 0 else None
    return None


@dataclass(frozen=True)
class _PTB:
    """What this channel uses of python-telegram-bot (see :func:`_ptb`)."""

    request: type[HTTPXRequest]
    permanent: tuple[type[Exception], ...]
    unsent_timeouts: tuple[type[Exception], ...]


@functools.cache
def _ptb() -> _PTB:
    """python-telegram-bot, imported on first use (the settings load without it).

    Raises:
        ImportError: it is not installed (``pip install 'pyorchestrate[telegram]'``).
    """
    import httpx
    from telegram.error import (
        BadRequest,
        Conflict,
        EndPointNotFound,
        Forbidden,
        InvalidToken,
        RetryAfter,
        TelegramError,
    )
    from telegram.request import HTTPXRequest

    class _FloodWait(RetryAfter):
        """A ``RetryAfter`` built without PTB's deprecation warning.

        ``RetryAfter.__init__`` reads its own deprecated ``retry_after`` property, so
        constructing one emits ``PTBDeprecationWarning``; under ``-W error`` that
        warning replaces the RetryAfter and the server's wait is lost.
        """

        __slots__ = ()

        def __init__(self, seconds: float) -> None:
            self._retry_after = _dt.timedelta(seconds=seconds)
            TelegramError.__init__(
                self, f"Flood control exceeded. Retry in {seconds:g} seconds"
            )

    class _Request(HTTPXRequest):
        """PTB's httpx request, raising ``_FloodWait`` for flood-control replies."""

        async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
            code, payload = await super().do_request(*args, **kwargs)
            seconds = _flood_wait(code, payload)
            if seconds is not None:
                raise _FloodWait(seconds)
            return code, payload

    return _PTB(
        request=_Request,
        permanent=(BadRequest, Forbidden, InvalidToken, EndPointNotFound, Conflict),
        unsent_timeouts=(httpx.ConnectTimeout, httpx.PoolTimeout),
    )


def _is_group(chat_id: int | str) -> bool:
    """Whether Telegram counts ``chat_id`` as a group, supergroup or channel."""
    if isinstance(chat_id, int):
        return chat_id < 0
    text = str(chat_id).strip()
    return text.startswith(("@", "-"))


def _seconds(exc: RetryAfter) -> float:
    value = getattr(exc, "_retry_after", None)
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    return 1.0  # unknown shape (a future PTB): wait a little rather than fail


class TelegramNotifier(Notifier):
    """Sends notifications to one Telegram chat with python-telegram-bot.

    Args:
        token: the bot token (a string or a ``SecretStr``); it never appears in a repr,
            a log line, an error or a result.
        chat_id: the chat (numeric id, also as text, or ``"@channel"``); follows a
            group's migration to a supergroup.
        base_url: the Bot API URL the token is appended to (default Telegram's); a
            local fake in tests.
        name: the channel's name (default ``"telegram"``).
        read_timeout: seconds to wait for Telegram's answer (``None``: 10); past it
            the message may have arrived, so it counts as "maybe delivered".
        connect_timeout: seconds to connect (``None``: 5).
        disable_notification: send silently.
        message_thread_id: the forum topic to post in.
        rate_limits: the limits of this chat, replacing Telegram's (``None``, the
            default: a burst of 5, then 1/s, and if the chat is a group or
            channel also a burst of 5, then 15/min: never over 20 a minute); a
            :class:`~notifiers.ratelimit.RateLimit` or text such as ``"20/min"``,
            or several; ``()``: none. They hold when the dispatcher's gate is a
            :class:`~notifiers.ratelimit.RateLimiter`.
        bot_rate_limit: the limit of the bot, across all its chats and every
            channel using the same token (default 30/s); ``None``: none. With
            ``rate_limits=()`` too, this channel is not rate limited at all.

    Raises:
        NotifierConfigError: an argument the ``[telegram]`` settings would refuse
            (checked by :class:`TelegramSettings`: a token
            shaped ``<digits>:<letters>``, an integer chat id or ``@username``, an
            http(s) ``base_url``, timeouts > 0, …), or a bad rate limit. It names
            the argument, never the token.
    """

    channel = "telegram"
    text_format = TextFormat.HTML
    max_length = 4096

    def __init__(
        self,
        token: str | SecretLike,
        chat_id: int | str,
        *,
        base_url: str | None = None,
        name: str | None = None,
        read_timeout: float | None = 10.0,
        connect_timeout: float | None = 5.0,
        disable_notification: bool = False,
        message_thread_id: int | None = None,
        rate_limits: RateLimit | str | Iterable[RateLimit | str] | None = None,
        bot_rate_limit: RateLimit | str | None = TELEGRAM_PER_BOT,
        chatops: ChatActions | None = None,
    ) -> None:
        # The [telegram] section's own model checks the arguments: the same errors
        # as from the settings (naming the argument, never the token).
        options = checked(
            TelegramSettings,
            "invalid Telegram settings",
            token=_reveal(token),
            chat_id=chat_id,
            base_url=base_url,
            name=name,
            read_timeout=read_timeout,
            connect_timeout=connect_timeout,
            disable_notification=disable_notification,
            message_thread_id=message_thread_id,
        )
        super().__init__(name=options.name, rate_limits=rate_limits)
        _ptb()  # python-telegram-bot must be there: fail here, not at the first send
        secret = options.token.get_secret_value()
        SECRETS.add(secret, f"bot{secret}")
        self._token = secret
        self._bot_key = f"telegram:bot:{destination_id('telegram', secret)}"
        bot_limits = coerce_rate_limits(bot_rate_limit, field_name="bot_rate_limit")
        self.bot_rate_limit = bot_limits[0] if bot_limits else None
        self.chat_id: int | str = options.chat_id
        self.base_url = options.base_url
        self.read_timeout = options.read_timeout or _READ_TIMEOUT
        self.connect_timeout = options.connect_timeout or _CONNECT_TIMEOUT
        self.disable_notification = options.disable_notification
        self.message_thread_id = options.message_thread_id
        self._bot: telegram.Bot | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._requests: tuple[HTTPXRequest, ...] = ()
        self.chatops = chatops

    def bound(self, dispatcher: Any) -> None:
        """Chat-ops keeps its alerts and timers in the dispatcher's state file."""
        if self.chatops is not None:
            self.chatops.bind_dispatcher(dispatcher, self.name)

    def attached(self, orchestrator: object, attachment: Any) -> None:
        """Chat commands and buttons act on ``orchestrator``."""
        if self.chatops is not None:
            self.chatops.bind(orchestrator, attachment)

    @property
    def bot(self) -> telegram.Bot | None:
        """The Bot built by :meth:`start` (``None`` before it and after :meth:`aclose`)."""
        return self._bot

    async def start(self) -> None:
        """Build the one Bot on the running loop; no network I/O (no getMe)."""
        if self._bot is not None:
            return
        import telegram

        # Bot() logs its URL (with the token) at DEBUG: filter first.
        install_log_redaction()
        request = _ptb().request
        request_kwargs: dict[str, Any] = {
            "read_timeout": self.read_timeout,
            "connect_timeout": self.connect_timeout,
            "httpx_kwargs": {"verify": _ssl_context()},
        }
        self._requests = (
            request(**request_kwargs),
            request(connection_pool_size=1, **request_kwargs),
        )
        kwargs: dict[str, Any] = {
            "request": self._requests[0],
            "get_updates_request": self._requests[1],
        }
        if self.base_url is not None:
            kwargs["base_url"] = self.base_url
        self._bot = telegram.Bot(self._token, **kwargs)
        self._loop = asyncio.get_running_loop()
        if self.chatops is not None:
            self.chatops.launch(self._bot, self.classify)

    async def send(self, notification: Notification) -> None:
        """Send ``notification`` once as HTML, cut to 4096 characters."""
        if self._bot is None:
            await self.start()
        bot = self._bot
        assert bot is not None
        if self._loop is not asyncio.get_running_loop():
            raise PermanentDeliveryError(
                "the Telegram bot belongs to another event loop", channel=self.name
            )
        chatops = self.chatops
        limit = self.max_length if chatops is None else chatops.reserve(self.max_length)
        text = format_text(notification, self.text_format, limit)
        buttons = None
        if chatops is not None:
            try:
                buttons = chatops.prepare(notification, self.chat_id)
            except Exception as exc:  # the alert matters more than its buttons
                logger.error(
                    "channel %r: alert sent without buttons: %s", self.name, redact(exc)
                )
        try:
            message = await bot.send_message(
                self.chat_id,
                text,
                parse_mode="HTML",
                disable_notification=self.disable_notification,
                message_thread_id=self.message_thread_id,
                read_timeout=self.read_timeout,
                connect_timeout=self.connect_timeout,
                reply_markup=buttons[1] if buttons else None,
            )
        except Exception as exc:
            from telegram.error import ChatMigrated

            if isinstance(exc, ChatMigrated):
                logger.warning(
                    "channel %r: chat %s migrated to %s; update the chat id in the settings",
                    self.name,
                    self.chat_id,
                    exc.new_chat_id,
                    extra={"channel": self.name},
                )
                self.chat_id = exc.new_chat_id
            raise self.classify(exc) from None
        if chatops is not None and buttons is not None:
            try:
                chatops.sent(buttons[0], notification, self.chat_id, message, text)
            except Exception as exc:  # delivered all the same: never sent twice
                logger.error(
                    "channel %r: could not keep the alert's buttons: %s",
                    self.name,
                    redact(exc),
                )

    def rate_limits(
        self, notification: Notification
    ) -> Sequence[tuple[str, RateLimit]]:
        """Per chat a burst of 5, then 1/s (+ a burst of 5, then 15/min, for a group
        or channel), per bot 30/s (see the constructor to change them); follows a
        migrated chat to its new id."""
        chat = f"{self._bot_key}:chat:{str(self.chat_id).strip()}"
        limits = self.custom_rate_limits
        if limits is None:
            limits = (TELEGRAM_PER_CHAT,)
            if _is_group(self.chat_id):
                limits += (TELEGRAM_PER_GROUP,)
        pairs = [(chat, limit) for limit in limits]
        if self.bot_rate_limit is not None:
            pairs.append((self._bot_key, self.bot_rate_limit))
        return pairs

    async def aclose(self) -> None:
        """Shut the Bot down (closes its connections); idempotent."""
        if self.chatops is not None:  # also when start never ran: it frees its state
            await self.chatops.stop()
        bot, self._bot, self._loop = self._bot, None, None
        requests, self._requests = self._requests, ()
        if bot is not None:
            await bot.shutdown()
        # Bot.shutdown() does nothing unless initialize() ran (it calls getMe, which
        # start() avoids), so close the connection pools we made ourselves.
        await asyncio.gather(*(request.shutdown() for request in requests))

    def classify(self, exc: BaseException) -> DeliveryError:
        """Map a python-telegram-bot exception to the notifier error tree (redacted)."""
        if isinstance(exc, DeliveryError):
            return exc
        from telegram.error import ChatMigrated, RetryAfter, TimedOut

        ptb = _ptb()
        kind = "RetryAfter" if isinstance(exc, RetryAfter) else type(exc).__name__
        message = redact(f"{kind}: {exc}")
        if isinstance(exc, RetryAfter):
            return RateLimited(message, retry_after=_seconds(exc), channel=self.name)
        if isinstance(exc, ChatMigrated):
            return TransientDeliveryError(
                redact(f"ChatMigrated: the chat moved to {exc.new_chat_id}"),
                channel=self.name,
            )
        if isinstance(exc, ptb.permanent):
            return PermanentDeliveryError(message, channel=self.name)
        if isinstance(exc, TimedOut):
            cause = exc.__cause__
            if isinstance(cause, ptb.unsent_timeouts):
                return TransientDeliveryError(
                    redact(f"TimedOut ({type(cause).__name__}): {exc}"),
                    channel=self.name,
                )
            # A read or write timeout, or one of unknown origin: it may have arrived.
            detail = type(cause).__name__ if cause is not None else "unknown"
            return MaybeDelivered(
                redact(f"TimedOut ({detail}): {exc}"), channel=self.name
            )
        # NetworkError (5xx, refused, reset) and anything unknown: worth a retry.
        return TransientDeliveryError(message, channel=self.name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} chat_id={self.chat_id!r}>"
