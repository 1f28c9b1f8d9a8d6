"""Notifier settings from the environment, a TOML file and code; and the channels they build.

The channel sections (``[telegram]``, ``[email]``, …) are those registered in
:mod:`notifiers.channels`: one optional field per section, composed when this module
is imported, each built by its own section's ``build()``.

Every setting has an environment variable: ``PYORCHESTRATE_NOTIFY_`` plus the field path
in upper case, with ``__`` between levels. Lists are written as JSON there::

    PYORCHESTRATE_NOTIFY_TELEGRAM__TOKEN=123456:ABC...
    PYORCHESTRATE_NOTIFY_TELEGRAM__CHAT_ID=-1001234567
    PYORCHESTRATE_NOTIFY_EMAIL__RECIPIENTS='["ops@example.com"]'
    PYORCHESTRATE_NOTIFY_TELEGRAM__RATE_LIMITS='["20/min"]'   # any channel section
    PYORCHESTRATE_NOTIFY_RETRY__MAX_ATTEMPTS=3
    PYORCHESTRATE_NOTIFY_STATE_PATH=/var/lib/myapp/notify.sqlite3   # or "none"

The same settings can come from a TOML file, named by
:meth:`NotifierSettings.from_toml` or by ``PYORCHESTRATE_NOTIFY_CONFIG_FILE``::

    preset = "lifecycle"
    agents = ["web-*", "db"]

    [telegram]
    token = "123456:ABC..."
    chat_id = -1001234567
    rate_limits = ["20/min"]   # optional, in any channel section

Precedence: values given in code > environment > dotenv file > TOML file. A bad
value raises :class:`~notifiers.errors.NotifierConfigError` with one
``field.path: reason`` line per problem and never the value itself (it may be a
secret). Tokens, passwords and webhook URLs are ``SecretStr``: ``repr``, ``str`` and
``model_dump`` show ``'**********'``.
"""

from __future__ import annotations

import contextvars
import importlib
import json
import os
import re
import sqlite3
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from ._presets import PRESETS
from ._sections import Number
from ._settings_errors import (
    CONFIG_FILE_ENV,
    ENV_PREFIX,
    TITLE,
    config_error,
    settings_error,
    unknown_environment,
)
from .base import Severity
from .channels import ChannelSection, sealed_channels
from .channels.apprise import AppriseSettings
from .channels.email import EmailSettings
from .channels.slack import SlackSettings
from .channels.telegram import TelegramSettings
from .channels.webhook import WebhookSettings
from .errors import NotifierConfigError
from .pipeline import PipelineConfig
from .redact import SECRETS
from .retry import RetryPolicy
from .state import default_state_path

if TYPE_CHECKING:
    from .base import Notifier
    from .state import NotifierState

__all__ = [
    "CONFIG_FILE_ENV",
    "ENV_PREFIX",
    "AppriseSettings",
    "ChannelSection",
    "EmailSettings",
    "NotifierSettings",
    "SlackSettings",
    "TelegramSettings",
    "WebhookSettings",
    "build_notifiers",
    "load_settings",
]

_CHANNELS = sealed_channels()
# The settings' own fields never clash with a channel section: register_channel
# refuses these keys (see notifiers.channels._registry), and a test compares them.
_NO_PATH = frozenset({"", "none", "off", "false", "no", "0"})
_toml_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "notifiers_toml_file", default=None
)


def _section_fields() -> dict[str, object]:
    """One optional field per registered channel section, in registration order."""
    return {
        key: Annotated[section | None, Field(default=None)]
        for key, section in _CHANNELS.items()
    }


def _parse_severity(value: object) -> object:
    if value is None or isinstance(value, Severity):
        return value
    if isinstance(value, str | int) and not isinstance(value, bool):
        try:
            return Severity.parse(value)
        except ValueError:
            pass
    names = ", ".join(m.name.lower() for m in Severity)
    raise ValueError(f"must be one of {names}")


class NotifierSettings(BaseSettings):
    """Everything the notifier layer needs: channels, retries, what to send.

    Each channel section (one per channel registered in :mod:`notifiers.channels`:
    ``telegram``, ``email``, ``slack``, ``webhook``, ``apprise`` and any other) is
    optional; :func:`build_notifiers` builds one channel per section that is set. Construct it directly (environment + TOML file named by
    ``PYORCHESTRATE_NOTIFY_CONFIG_FILE``), with :meth:`from_toml`, or with
    :func:`load_settings`.

    Raises:
        NotifierConfigError: a value is missing, malformed or unknown (names the
            field path, never the value).
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
        validate_default=True,
        hide_input_in_errors=True,
    )

    # The channel sections, composed from the registry (no list of channels here).
    __annotations__.update(_section_fields())
    if TYPE_CHECKING:  # for type checkers: a section by its key (or None)

        def __getattr__(self, section: str) -> ChannelSection | None: ...

    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    queue_size: Number = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="Pending notifications per channel.",
    )
    preset: str = Field(
        default="errors_only", description="Which events to send (see presets)."
    )
    agents: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*"],
        description="Agent-name globs; from the environment, comma-separated.",
    )
    min_severity: Severity | None = Field(
        default=None, description="Send only notifications at least this severe."
    )
    state_path: Path | None = Field(
        default_factory=default_state_path,
        description="The state file: durable outbox, mutes, channel status "
        "(default $XDG_STATE_HOME/pyorchestrate/notify.sqlite3); "
        "'none' or empty: keep nothing on disk.",
    )
    rules: PipelineConfig = Field(
        default_factory=PipelineConfig,
        description="Alert rules: dedup, grouping, flapping/FATAL quiet, recovery, "
        "quiet hours, mutes (see notifiers.pipeline).",
    )
    rate_limiting: bool = Field(
        default=True,
        description="Limit each destination to its channel's rate (Telegram: per "
        "chat a burst of 5, then 1/s; per group a burst of 5, then 15/min, never "
        "over 20 a minute; Slack 1/s per webhook).",
    )
    outbox_size: Number = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        description="Alerts the outbox keeps at most; beyond it the oldest are "
        "evicted (dead, then failed, then pending) and counted.",
    )

    def __init__(self, **values: Any) -> None:
        unknown = unknown_environment(
            type(self), str(values.get("_env_prefix") or ENV_PREFIX)
        )
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise config_error(exc, unknown) from exc
        except SettingsError as exc:
            raise settings_error(exc, type(self), unknown) from exc
        if unknown:
            raise NotifierConfigError(TITLE, unknown)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str], **overrides: Any) -> Self:
        """Settings from the TOML file at ``path`` (environment and ``overrides`` win).

        Raises:
            NotifierConfigError: the file is missing or not TOML, or a value is bad.
        """
        token = _toml_file.set(Path(path))
        try:
            return cls(**overrides)
        finally:
            _toml_file.reset(token)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Add the TOML file, last: init > env > dotenv > secrets dir > TOML."""
        sources = (init_settings, env_settings, dotenv_settings, file_secret_settings)
        named = _toml_file.get()
        if named is None and os.environ.get(CONFIG_FILE_ENV):
            named = Path(os.environ[CONFIG_FILE_ENV])
        if named is None:
            return sources
        path = named.expanduser()
        if not path.is_file():
            raise NotifierConfigError(
                TITLE, [("config_file", f"no such file: {str(path)!r}")]
            )
        try:
            toml = TomlConfigSettingsSource(settings_cls, toml_file=path)
        except tomllib.TOMLDecodeError as exc:
            raise NotifierConfigError(
                TITLE, [("config_file", f"{str(path)!r} is not valid TOML: {exc}")]
            ) from None
        except OSError as exc:
            raise NotifierConfigError(
                TITLE,
                [("config_file", f"cannot read {str(path)!r}: {exc.strerror}")],
            ) from None
        return (*sources, toml)

    @field_validator("preset")
    @classmethod
    def _check_preset(cls, value: str) -> str:
        if value not in PRESETS:
            raise ValueError(f"unknown preset; use one of {', '.join(sorted(PRESETS))}")
        return value

    @field_validator("agents", mode="before")
    @classmethod
    def _split_agents(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    return json.loads(text)
                except ValueError:
                    raise ValueError(
                        "must be comma-separated globs or a JSON list"
                    ) from None
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("agents")
    @classmethod
    def _check_agents(cls, value: list[str]) -> list[str]:
        if not value or not all(value):
            raise ValueError("must name at least one agent glob (use '*' for all)")
        return value

    _check_min_severity = field_validator("min_severity", mode="before")(
        _parse_severity
    )

    @field_validator("state_path", mode="before")
    @classmethod
    def _state_path_off(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in _NO_PATH:
            return None
        return value

    @field_validator("state_path")
    @classmethod
    def _expand_state_path(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    def open_state(self) -> NotifierState | None:
        """The :class:`~notifiers.state.NotifierState` at ``state_path`` (``None``
        if it is off), bounded by ``outbox_size``; the caller closes it.

        Raises:
            NotifierConfigError: the file cannot be created or opened.
        """
        if self.state_path is None:
            return None
        from .state import NotifierState

        try:
            return NotifierState(self.state_path, max_outbox=self.outbox_size)
        except (OSError, sqlite3.Error) as exc:
            raise NotifierConfigError(
                TITLE,
                [("state_path", f"cannot open {str(self.state_path)!r}: {exc}")],
            ) from None

    def configured(self) -> list[str]:
        """The channel sections that are set, in build order."""
        return [key for key in _CHANNELS if getattr(self, key) is not None]

    def register_secrets(self) -> None:
        """Mask this configuration's secrets (tokens, passwords, URLs, and the parts
        of a URL that hold one: what follows the scheme and the path) in everything
        notifiers shows or logs, without building the channels. For readers of a
        state file (``notify status``, the dashboard): the stored texts were masked
        by the process that wrote them; this is a second net."""
        for name in self.configured():
            for _field, value in getattr(self, name):
                values = value if isinstance(value, list | tuple) else [value]
                for item in values:
                    if isinstance(item, SecretStr):
                        _register_secret(item.get_secret_value())

    def section(self, key: str) -> ChannelSection | None:
        """The channel section ``key`` (``None``: not set).

        Raises:
            KeyError: no channel section of that key is registered.
        """
        if key not in _CHANNELS:
            raise KeyError(key)
        value: ChannelSection | None = getattr(self, key)
        return value


def load_settings(
    config_file: str | os.PathLike[str] | None = None, **overrides: Any
) -> NotifierSettings:
    """Read the settings: ``overrides`` > environment > TOML file.

    Args:
        config_file: the TOML file (default: ``PYORCHESTRATE_NOTIFY_CONFIG_FILE``, if
            set; otherwise none).
        overrides: field values, e.g. ``telegram={"token": ..., "chat_id": ...}``.

    Raises:
        NotifierConfigError: one ``field.path: reason`` line per problem; the values
            themselves are never shown.
    """
    if config_file is not None:
        return NotifierSettings.from_toml(config_file, **overrides)
    return NotifierSettings(**overrides)


def build_notifiers(settings: NotifierSettings) -> list[Notifier]:
    """One channel for each section set in ``settings`` (nothing is sent).

    The channel modules are imported here, so only the extras actually used must be
    installed.

    Raises:
        NotifierConfigError: no section is set; an extra is missing; a channel
            rejects its settings; two channels share a name.
    """
    if not settings.configured():
        *others, last = _CHANNELS
        listed = f"{', '.join(others)} or {last}" if others else last
        raise NotifierConfigError(
            "no notification channel is configured",
            [
                (
                    "",
                    f"set at least one of {listed}, "
                    f"e.g. {ENV_PREFIX}TELEGRAM__TOKEN and {ENV_PREFIX}TELEGRAM__CHAT_ID, "
                    "or a [telegram] table in the TOML file",
                )
            ],
        )
    built: list[Notifier] = []
    names: dict[str, str] = {}
    for section in settings.configured():
        config = settings.section(section)
        assert config is not None
        notifier = _build_one(section, config)
        if notifier.name in names:
            raise NotifierConfigError(
                TITLE,
                [
                    (
                        f"{section}.name",
                        f"the channel name {notifier.name!r} is already used by "
                        f"[{names[notifier.name]}]",
                    )
                ],
            )
        names[notifier.name] = section
        built.append(notifier)
    return built


# ---------------------------------------------------------------- building


def _build_one(key: str, section: ChannelSection) -> Notifier:
    try:
        for module in type(section).requires:
            importlib.import_module(module)
        notifier = section.build()
        if getattr(section, "commands", False):  # [telegram] commands = true
            from .chatops import for_settings

            for_settings(section, notifier)
        return notifier
    except ImportError as exc:
        raise _missing_extra(key, section, exc) from exc
    except NotifierConfigError as exc:
        reasons = [f"{loc}: {msg}" if loc else msg for loc, msg in exc.errors]
        raise NotifierConfigError(
            TITLE, [(key, "; ".join(reasons) or exc.title)]
        ) from exc


# Needed by every channel (the retry policy), installed by each channel's extra.
_SHARED_REQUIREMENTS = ("tenacity",)


def _missing_extra(key: str, section: ChannelSection, exc: ImportError) -> Exception:
    channel = type(section)
    missing = (exc.name or "").split(".")[0]
    if not missing or missing not in (*channel.requires, *_SHARED_REQUIREMENTS):
        return exc  # an import bug inside a channel module: do not disguise it
    package = channel.package or missing
    how = f"pip install 'pyorchestrate[{channel.extra}]'" if channel.extra else ""
    reason = f"needs {package}" + (f": {how}" if how else "")
    return NotifierConfigError(f"cannot build the {key} channel", [(key, reason)])


def _register_secret(secret: str) -> None:
    SECRETS.add(secret)
    if "://" not in secret:
        return
    rest = secret.split("://", 1)[1]
    if re.search(r"[/?#@]", rest):  # a bare host:port is no secret
        SECRETS.add(rest)
    try:
        path = urlsplit(secret).path.rstrip("/")
    except ValueError:
        return
    if len(path) > 1:  # with its "/": "/hook" must not mask "webhook"
        SECRETS.add(path)
