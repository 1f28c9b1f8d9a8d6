"""The channel sections of :class:`~notifiers.settings.NotifierSettings`, and the
checks every channel constructor shares with them.

One pydantic model per channel: strict (unknown keys are errors), validated on
assignment, with secrets as ``SecretStr`` and inputs hidden from error messages.
Validators never repeat the value they reject (it may be a secret).

The constructors validate their arguments with the same models (:func:`checked`):
``TelegramNotifier(token, chat_id, ...)`` through :class:`TelegramSettings`,
``AppriseNotifier(urls, ...)`` through :class:`AppriseSettings`, and every
:class:`~notifiers.base.Notifier` its ``name`` through :class:`ChannelOptions`, so a
bad value gets the same error whichever way it comes in.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ._settings_errors import config_error
from .errors import NotifierConfigError
from .ratelimit import RateLimit

__all__ = [
    "AppriseSettings",
    "ChannelOptions",
    "EmailSettings",
    "Number",
    "Seconds",
    "SlackSettings",
    "TelegramSettings",
    "WebhookSettings",
    "checked",
    "http_url",
]

_M = TypeVar("_M", bound=BaseModel)


def checked(model: type[_M], title: str, **values: object) -> _M:
    """``values`` validated by ``model``, the checks the settings make.

    Raises:
        NotifierConfigError: titled ``title``, one ``field: reason`` per problem,
            never the value.
    """
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise config_error(exc, title=title) from None


def _not_a_bool(value: object) -> object:
    # pydantic takes True for 1 and 1.0; a flag is never meant as a count or a time.
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value


Number = Annotated[int, BeforeValidator(_not_a_bool)]
"""An integer (also from text such as ``"3"``), never a bool."""
Seconds = Annotated[float, BeforeValidator(_not_a_bool), Field(gt=0)]
"""A duration > 0 in seconds (also from text such as ``"2.5"``), never a bool."""


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _check_rate_limits(value: list[str] | None) -> list[str] | None:
    """Each entry read by :meth:`RateLimit.parse`, as the channels will read it."""
    if value is None:
        return None
    problems: list[str] = []
    for index, text in enumerate(value):
        try:
            RateLimit.parse(text)
        except NotifierConfigError as exc:
            problems.extend(f"entry {index}: {msg}" for _, msg in exc.errors)
    if problems:
        raise ValueError("; ".join(problems))
    return [text.strip() for text in value]


class ChannelOptions(BaseModel):
    """What every channel takes, in its constructor and in its settings section."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, hide_input_in_errors=True
    )

    name: str | None = Field(
        default=None,
        min_length=1,
        description="The channel's name in results and logs (default: the section's).",
    )
    rate_limits: list[str] | None = Field(
        default=None,
        description="Limits of this channel's destinations, replacing its defaults: "
        'e.g. ["20/min"] or ["1/s", "60/min burst 10"]; [] for none.',
    )

    _rate_limits_list = field_validator("rate_limits", mode="before")(_one_or_many)
    _rate_limits_parse = field_validator("rate_limits")(_check_rate_limits)


class _Section(ChannelOptions):
    """Base of the channel sections: strict, validated on assignment, inputs hidden."""

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


_BOT_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")
_CHAT_ID = re.compile(r"-?\d+")
_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,}")
_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+")


def http_url(value: str | None) -> str | None:
    """``None``, or an ``http://`` or ``https://`` URL with a host."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("must be an http:// or https:// URL with a host")
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. a malformed IPv6 host or port
        ok = False
    if not ok:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


class TelegramSettings(_Section):
    """A Telegram chat, through a bot (``[telegram]``)."""

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


class EmailSettings(_Section):
    """E-mail over SMTP (``[email]``), sent through apprise's ``mailto://``."""

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


class SlackSettings(_Section):
    """A Slack incoming webhook (``[slack]``)."""

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


_WEBHOOK_SCHEMES = {
    "http": "json",
    "https": "jsons",
    **{s: s for s in ("json", "jsons", "form", "forms", "xml", "xmls")},
}


class WebhookSettings(_Section):
    """A generic HTTP webhook (``[webhook]``): a JSON POST for each notification.

    ``http(s)://`` URLs become apprise's ``json(s)://``; ``form(s)://`` and
    ``xml(s)://`` are passed on as they are.
    """

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


class AppriseSettings(_Section):
    """Any apprise URLs (``[apprise]``), e.g. ``discord://…`` or ``ntfy://…``."""

    urls: list[SecretStr] = Field(
        min_length=1, description="Tag one as ``ops=scheme://…`` to select it by tag."
    )
    tags: list[str] = Field(
        default_factory=list,
        description="Notify only the URLs tagged with one of these (default: all).",
    )
    timeout: Seconds | None = None
