"""What every channel's settings section shares: the checks every channel
constructor makes with it, and the field types of the sections.

The sections themselves live with their channels (:mod:`notifiers.channels`): one
pydantic model per channel, strict (unknown keys are errors), validated on
assignment, with secrets as ``SecretStr`` and inputs hidden from error messages.
Validators never repeat the value they reject (it may be a secret).

The constructors validate their arguments with the same models (:func:`checked`):
``TelegramNotifier(token, chat_id, ...)`` through its ``TelegramSettings``,
``AppriseNotifier(urls, ...)`` through its ``AppriseSettings``, and every
:class:`~notifiers.base.Notifier` its ``name`` through :class:`ChannelOptions`, so a
bad value gets the same error whichever way it comes in.
"""

from __future__ import annotations

from typing import Annotated, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from ._settings_errors import config_error
from .errors import NotifierConfigError
from .ratelimit import RateLimit

__all__ = [
    "ChannelOptions",
    "Duration",
    "Number",
    "Seconds",
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


def _duration(value: object) -> object:
    if isinstance(value, str):
        from ._durations import parse_duration

        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            return parse_duration(text)
        except ValueError:
            raise ValueError("must be a duration such as 30s, 10m, 2h or 1d") from None
    return _not_a_bool(value)


Duration = Annotated[float, BeforeValidator(_duration), Field(gt=0)]
"""A duration > 0: seconds, or text such as ``"10m"``, ``"1h30m"``, ``"24h"``."""


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
