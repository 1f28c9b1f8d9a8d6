"""The apprise channel: any apprise URLs (``[apprise]``), and the base of the
e-mail, Slack and webhook channels.

This module is the ``[apprise]`` channel (:class:`AppriseSettings`, its extra
``pyorchestrate[apprise]``: apprise, imported on first use, so the settings load
without it) and the apprise base the other apprise-based channels share
(:mod:`~notifiers.channels.email`, :mod:`~notifiers.channels.slack`,
:mod:`~notifiers.channels.webhook` each build an :class:`AppriseNotifier` from their
section). What is shared is what an apprise URL needs whichever section names it:
the per-service classification (HTTP replies, SMTP logins), the per-URL rate limits
(a ``slack://`` URL in ``[apprise]`` gets Slack's), the secrets' registration.

:class:`AppriseNotifier` sends each notification to one or more apprise URLs
(``mailto://``, ``slack://``, ``json://``, …) and reads apprise's per-service
``AppriseResult`` to classify what went wrong. We own retrying, so apprise's own
retry, throttle and thread pool are all turned off:

* ``retry`` is forced to 0 on every service (a ``?retry=`` in the URL is ignored);
* each service's throttle (``request_rate_per_sec``: 5.5 s between e-mails, 1.2 s
  between Slack posts on the same plugin object) is set to 0;
* no apprise deadline is used (``service_timeout=0``, no ``timeout=`` to ``notify``):
  with one, apprise runs every call in a process-wide, never shut down, non-daemon
  ``ThreadPoolExecutor``. Instead each service's socket timeouts are capped at our
  ``timeout``, the blocking ``notify()`` runs in this channel's own small executor,
  and an outer guard stops waiting after ``2 * timeout + 1`` seconds.

Apprise logs the reason for a failure (HTTP status, socket error, SMTP reply) only
at DEBUG. Each service therefore logs to a private logger kept at DEBUG (whose
records are forwarded to the ``apprise`` logger only at the level that logger
allows), so the reason is always in the per-service result.

Rate limits (with a :class:`~notifiers.ratelimit.RateLimiter` as the dispatcher's
gate; the constants below) apply per URL: Slack webhooks 1/s, apprise's ``tgram://`` a burst of 5 then
1/s (Telegram's per-chat limit only: not a group's 20/min, which ``rate_limits=``
can add), ntfy bursts of 60 then 1 per 5 s; other services (e-mail, ``json://`` and
the other webhooks, …) have none by default. ``rate_limits=`` replaces them.

Secrets (passwords, tokens, webhook paths, whole URLs) are registered in
:data:`notifiers.redact.SECRETS` before apprise sees the URL, and the ``urllib3``
logger, which prints every request path at DEBUG, is redacted too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import re
import sys
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr

from .._sections import Seconds, checked, http_url
from ..base import Notification, Notifier, Severity, TextFormat
from ..errors import (
    DeliveryError,
    MaybeDelivered,
    NotifierConfigError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from ..ratelimit import RateLimit, destination_id
from ..redact import LEAKY_LOGGERS, SECRETS, install_log_redaction, redact
from ..templates import plain_text
from ._registry import ChannelSection, register_channel
from .telegram import TELEGRAM_PER_CHAT

if TYPE_CHECKING:
    from apprise import Apprise, AppriseAsset, NotifyFormat, NotifyType
    from apprise.manager_plugins import NotificationManager
    from apprise.plugins.base import NotifyBase
    from apprise.plugins.slack import NotifySlack
    from apprise.result import AppriseResult, NotifyResult

__all__ = [
    "NTFY_PER_URL",
    "SLACK_PER_WEBHOOK",
    "AppriseNotifier",
    "AppriseSettings",
    "build_apprise",
]

logger = logging.getLogger("notifiers.apprise")  # its name before the move: kept

_APPRISE_LOGGER = logging.getLogger("apprise")
_PLUGIN_LOGGER_NAME = "notifiers.apprise.services"
# Loggers that print what we register as secret (urllib3 logs each request line,
# path included, at DEBUG; apprise logs the Slack webhook URL at DEBUG).
_REDACTED_LOGGERS = (*LEAKY_LOGGERS, "urllib3", "requests", _PLUGIN_LOGGER_NAME)
# Schemes whose URL path is the secret part of a webhook.
_WEBHOOK_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})
# "ops, dev=mailto://…" (apprise's text-config syntax) tags one URL.
_TAGGED = re.compile(
    r"^\s*(?P<tags>[\w\s,.\-]+?)\s*=\s*(?P<url>[A-Za-z][\w+.\-]*://.*)$"
)
_HTTP_STATUS = re.compile(r"\berror=(\d{3})\b")
_SMTP_REPLY = re.compile(r"\((\d{3}), b?['\"]")
_READ_TIMEOUT = re.compile(r"read timed out", re.IGNORECASE)
_TIMEOUT = re.compile(r"timed? ?out", re.IGNORECASE)
# The steps apprise's SMTP controller logs, in order, before it sends (see
# _route_smtp_log), and the warning with which the e-mail plugin reports that one
# of them failed: the last step before that warning is where it broke off.
_SMTP_STEPS = (
    "Connecting to remote SMTP server",
    "Securing connection with",
    "Applying user credentials",
)
_SMTP_LOGIN_STEP = _SMTP_STEPS[-1]
_SMTP_STEP_FAILED = "Connection error while submitting email"
# smtplib: the server lacks what the URL asks for (STARTTLS, AUTH): a setting to fix.
_SMTP_UNSUPPORTED = re.compile(r"extension not supported by server", re.IGNORECASE)
# 4xx that are worth retrying: request timeout, too early, too many requests.
_TRANSIENT_4XX = frozenset({408, 425, 429})
_PROGRESS_SIZE = 256
_DEFAULT_TIMEOUT = 10.0

SLACK_PER_WEBHOOK = RateLimit.per_second(1)
"""Slack incoming webhooks: about one message per second each."""
NTFY_PER_URL = RateLimit(0.2, 60)
"""ntfy (ntfy.sh's and the server's default): bursts of 60, then one per 5 s."""


@register_channel
class AppriseSettings(ChannelSection):
    """Any apprise URLs (``[apprise]``), e.g. ``discord://…`` or ``ntfy://…``."""

    section = "apprise"
    extra = "apprise"
    requires = ("apprise",)
    package = "apprise"

    urls: list[SecretStr] = Field(
        min_length=1, description="Tag one as ``ops=scheme://…`` to select it by tag."
    )
    tags: list[str] = Field(
        default_factory=list,
        description="Notify only the URLs tagged with one of these (default: all).",
    )
    timeout: Seconds | None = None

    def build(self) -> AppriseNotifier:
        """An :class:`AppriseNotifier` for these URLs (and tags)."""
        return build_apprise(
            self, [url.get_secret_value() for url in self.urls], list(self.tags) or None
        )


def build_apprise(
    section: ChannelSection, urls: list[str], tags: list[str] | None = None
) -> AppriseNotifier:
    """The :class:`AppriseNotifier` of an apprise-based ``section``, sending to
    ``urls`` (registered as secrets first), with the section's name, ``timeout``
    and ``rate_limits``."""
    SECRETS.add(*urls)
    options: dict[str, Any] = {"name": section.channel_name}
    if tags is not None:
        options["tags"] = tags
    timeout = getattr(section, "timeout", None)
    if timeout is not None:
        options["timeout"] = timeout
    if section.rate_limits is not None:
        options["rate_limits"] = list(section.rate_limits)
    return AppriseNotifier(urls, **options)


@dataclass(frozen=True)
class _Library:
    """What this channel uses of apprise (see :func:`_apprise`)."""

    apprise: type[Apprise]
    asset: type[AppriseAsset]
    text: NotifyFormat
    info: NotifyType
    notify_types: dict[Severity, NotifyType]
    plugins: NotificationManager
    slack: type[NotifySlack]
    timeout_status: object
    default_limits: tuple[tuple[type[NotifyBase], str, tuple[RateLimit, ...]], ...]
    """Default limits per URL, by plugin class (checked in order)."""


@functools.cache
def _apprise() -> _Library:
    """apprise, imported on first use (the settings load without it).

    Raises:
        ImportError: it is not installed (``pip install 'pyorchestrate[apprise]'``).
    """
    from apprise import Apprise, AppriseAsset, NotifyFormat, NotifyType
    from apprise.manager_plugins import NotificationManager
    from apprise.plugins.ntfy import NotifyNtfy
    from apprise.plugins.slack import NotifySlack
    from apprise.plugins.telegram import NotifyTelegram
    from apprise.result import AppriseResultStatus

    plugins = NotificationManager()  # type: ignore[no-untyped-call]  # its scheme registry
    with warnings.catch_warnings():
        # apprise imports its ~150 plugin modules lazily, on the first URL; some pull
        # in deprecated stdlib modules (the e-mail plugin imports ``imghdr``), which
        # fails under ``-W error``. Load them here, once, with deprecation warnings
        # ignored.
        warnings.simplefilter("ignore", DeprecationWarning)
        _ = "mailto" in plugins
    return _Library(
        apprise=Apprise,
        asset=AppriseAsset,
        text=NotifyFormat.TEXT,
        info=NotifyType.INFO,
        notify_types={
            Severity.DEBUG: NotifyType.INFO,
            Severity.INFO: NotifyType.INFO,
            Severity.WARNING: NotifyType.WARNING,
            Severity.ERROR: NotifyType.FAILURE,
            Severity.CRITICAL: NotifyType.FAILURE,
        },
        plugins=plugins,
        slack=NotifySlack,
        timeout_status=AppriseResultStatus.TIMEOUT,
        default_limits=(
            (NotifySlack, "slack", (SLACK_PER_WEBHOOK,)),
            (NotifyTelegram, "tgram", (TELEGRAM_PER_CHAT,)),
            (NotifyNtfy, "ntfy", (NTFY_PER_URL,)),
        ),
    )


class _ForwardToApprise(logging.Handler):
    """Hands a service's records to the ``apprise`` logger, at the level it allows."""

    def emit(self, record: logging.LogRecord) -> None:
        if _APPRISE_LOGGER.isEnabledFor(record.levelno):
            copy = logging.makeLogRecord(record.__dict__)
            copy.name = _APPRISE_LOGGER.name
            _APPRISE_LOGGER.handle(copy)


def _plugin_logger() -> logging.Logger:
    """The private DEBUG logger every service logs to (set up once)."""
    log = logging.getLogger(_PLUGIN_LOGGER_NAME)
    if not any(isinstance(h, _ForwardToApprise) for h in log.handlers):
        log.setLevel(logging.DEBUG)
        log.propagate = False
        log.addHandler(_ForwardToApprise())
        _route_smtp_log(log)
    return log


def _route_smtp_log(log: logging.Logger) -> None:
    """Have apprise's SMTP controller log to ``log`` too, not to ``apprise`` only.

    The e-mail plugin logs a failure as "Connection error while submitting email"
    plus the socket error, whatever the step; the step (connect, STARTTLS, login)
    and the reply to a refused ``sendmail`` are logged by its SMTP controller, on
    the shared ``apprise`` logger, which apprise does not capture per service.
    Routed to the services' private logger they are in each result, so a login
    that fails (535, or no answer at all) is told from a server that is down.
    Other users of apprise see the same records as before: the private logger
    hands them to ``apprise`` at the levels it allows.
    """
    module = sys.modules.get("apprise.plugins.email.smtp")
    if module is not None and getattr(module, "logger", None) is _APPRISE_LOGGER:
        setattr(module, "logger", log)  # noqa: B010  (a module's global)


def _scheme(url: str) -> str:
    """The scheme of ``url`` (lower case), or ``""`` if it has none."""
    head, sep, _ = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][\w+.\-]*", head):
        return ""
    return head.lower()


def _split_tags(entry: str) -> tuple[list[str], str]:
    """``"ops, dev=json://…"`` → ``(["ops", "dev"], "json://…")``."""
    match = _TAGGED.match(entry)
    if match is None:
        return [], entry.strip()
    tags = [t.strip() for t in match["tags"].split(",") if t.strip()]
    return tags, match["url"].strip()


def _register_url(url: str) -> None:
    """Register a raw URL's secret parts, before apprise parses (and logs) it."""
    rest = url.split("://", 1)[1] if "://" in url else url
    # A bare "host:port" is no secret (and masking it would hide every address).
    host_port = re.split(r"[/?#]", rest, maxsplit=1)[0]
    public = "" if "@" in host_port else host_port
    candidates = (url, rest, rest.split("?", 1)[0].rstrip("/"))
    SECRETS.add(*(c for c in candidates if c != public))
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # e.g. a bad IPv6 host: the whole URL is registered already
        return
    if password:
        SECRETS.add(password, unquote(password))


def _register_plugin(plugin: NotifyBase, scheme: str) -> None:
    """Register what apprise itself marks private, plus a webhook's path."""
    specs = {**plugin.template_tokens, **plugin.template_args}
    for key, spec in specs.items():
        if not isinstance(spec, dict) or not spec.get("private"):
            continue
        value = getattr(plugin, spec.get("map_to", key), None)
        values = value if isinstance(value, list | tuple | set) else [value]
        SECRETS.add(*(v for v in values if isinstance(v, str)))
    SECRETS.add(getattr(plugin, "password", None))
    tokens = [getattr(plugin, f"token_{c}", None) for c in "abc"]
    if all(isinstance(t, str) for t in tokens):
        SECRETS.add("/".join(t for t in tokens if isinstance(t, str)))
    if scheme in _WEBHOOK_SCHEMES:
        # With its leading "/" only: "/hook" must not mask the word "webhook".
        path = (getattr(plugin, "fullpath", "") or "").rstrip("/")
        SECRETS.add(path if path.startswith("/") else "/" + path)
    try:
        SECRETS.add(plugin.url(privacy=False))  # type: ignore[no-untyped-call]
    except Exception:  # a plugin that cannot print itself: nothing more to hide
        logger.debug("could not render a %s:// URL to register it", scheme)


def _limit_key(plugin: NotifyBase, scheme: str) -> tuple[str, tuple[RateLimit, ...]]:
    """The URL's rate-limit key (no secret in it) and its default limits."""
    label = scheme
    limits: tuple[RateLimit, ...] = ()
    for cls, name, defaults in _apprise().default_limits:
        if isinstance(plugin, cls):
            label, limits = name, defaults
            break
    try:  # apprise's identity of the URL: credentials and host, not the options
        identity = plugin.url_id()  # type: ignore[no-untyped-call]
    except Exception:
        identity = None
    if not identity:
        try:
            identity = plugin.url(privacy=False)  # type: ignore[no-untyped-call]
        except Exception:
            identity = id(plugin)
    return f"{label}:{destination_id('apprise', identity)}", limits


@dataclass(eq=False)
class _Service:
    plugin: NotifyBase
    scheme: str
    name: str
    limit_key: str = ""
    default_limits: tuple[RateLimit, ...] = ()


@dataclass
class _Progress:
    """What earlier attempts of one notification achieved, per service index."""

    delivered: set[int] = field(default_factory=set)
    permanent: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Outcome:
    index: int
    error: DeliveryError | None  # None: delivered


class AppriseNotifier(Notifier):
    """A channel that sends through apprise to one or more URLs.

    Args:
        urls: apprise URLs (``mailto://``, ``slack://A/B/C``, ``json://host/path``,
            …). A URL may carry tags in apprise's config syntax:
            ``"ops, dev=json://…"``.
        name: the channel's name (e.g. ``"email"``, ``"slack"``).
        tags: the channel's tags. A URL without tags of its own carries them; a
            URL with its own tags is notified only if one of them is among these
            (apprise's matching). Default: every URL is notified.
        timeout: seconds (``None``: 10); caps each service's connect and read
            timeouts (and SMTP's socket timeout). The send is abandoned after
            ``2 * timeout + 1`` seconds per service whatever happens.
        slack_webhook_base: replaces Slack's hard-coded
            ``https://hooks.slack.com/services`` (tests point it at loopback).
        rate_limits: limits per URL, replacing the defaults (``None``: Slack
            webhooks 1/s, ``tgram://`` a burst of 5 then 1/s, ntfy bursts of 60
            then 1 per 5 s, others none); a :class:`~notifiers.ratelimit.RateLimit`
            or text such as ``"1/s"``, or several; ``()``: none. They hold when the
            dispatcher's gate is a :class:`~notifiers.ratelimit.RateLimiter`; a
            send waits for the URLs it still has to reach.

    Raises:
        NotifierConfigError: an argument the ``[apprise]`` settings would refuse
            (checked by :class:`AppriseSettings`: at least one
            URL, text tags, a timeout > 0, a non-empty name), a URL apprise does
            not accept (the message names its scheme, never the URL), tags that
            match no URL, a ``slack_webhook_base`` that is no http(s) URL, a bad
            rate limit.

    Failures are classified per service: HTTP 4xx (except 408, 425, 429) and SMTP
    5xx replies are permanent; so is an SMTP login that is refused (535), left
    unanswered until the timeout (a server that delays or drops a failed login),
    or impossible (no STARTTLS or AUTH offered), while a 4xx login reply (454) is
    transient; a read timeout (the request went out, no answer) is "maybe
    delivered"; everything else (5xx, 429, refused connections, connect timeouts)
    is transient. A retry only re-sends to the services that have not yet
    succeeded, so one failing URL never duplicates the others.
    """

    channel = "apprise"
    text_format = TextFormat.PLAIN

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        name: str | None = None,
        tags: str | Sequence[str] | None = None,
        timeout: float | None = 10.0,
        slack_webhook_base: str | None = None,
        rate_limits: RateLimit | str | Iterable[RateLimit | str] | None = None,
    ) -> None:
        install_log_redaction(_REDACTED_LOGGERS)
        # The [apprise] section's model checks the arguments, as for the settings.
        given: dict[str, object] = {
            "urls": [urls] if isinstance(urls, str) else urls,
            "name": name,
            "timeout": timeout,
        }
        if tags is not None:
            given["tags"] = [tags] if isinstance(tags, str) else tags
        title = "invalid apprise settings"
        if isinstance(name, str) and name:
            title = f"channel {name!r}: {title}"
        options = checked(AppriseSettings, title, **given)
        super().__init__(name=options.name, rate_limits=rate_limits)
        lib = _apprise()
        entries = [url.get_secret_value() for url in options.urls]
        problems: list[tuple[str, str]] = []
        self.timeout = options.timeout or _DEFAULT_TIMEOUT
        self._asset = lib.asset(
            async_mode=False, service_timeout=0, storage_mode="memory"
        )
        self._tags: list[str] | None = None if tags is None else list(options.tags)
        plugin_logger = _plugin_logger()
        self._services: list[_Service] = []
        for index, entry in enumerate(entries):
            url_tags, url = _split_tags(entry)
            _register_url(url)
            scheme = _scheme(url)
            if not scheme:
                problems.append((f"urls[{index}]", "not an apprise URL (no scheme)"))
                continue
            own_tags = url_tags or self._tags or []
            plugin = lib.apprise.instantiate(url, asset=self._asset, tag=own_tags)
            if plugin is None:
                reason = "invalid" if scheme in lib.plugins else "unsupported"
                problems.append(
                    (f"urls[{index}]", f"{reason} apprise URL (scheme {scheme!r})")
                )
                continue
            _register_plugin(plugin, scheme)
            self._tune(plugin, plugin_logger)
            key, defaults = _limit_key(plugin, scheme)
            self._services.append(
                _Service(
                    plugin, scheme, str(plugin.service_name or scheme), key, defaults
                )
            )
        if slack_webhook_base is not None:
            try:
                http_url(slack_webhook_base)
            except (TypeError, ValueError) as exc:
                problems.append(("slack_webhook_base", str(exc)))
                slack_webhook_base = None
        if slack_webhook_base is not None:
            slack = [s.plugin for s in self._services]
            hooks = [p for p in slack if isinstance(p, lib.slack)]
            if not hooks and not problems:
                problems.append(
                    ("slack_webhook_base", "given, but no URL is a Slack webhook")
                )
            for plugin in hooks:
                plugin.webhook_url = slack_webhook_base.rstrip("/")
        self._selected = self._select()
        if self._services and not self._selected and not problems:
            problems.append(
                (
                    "tags",
                    f"{self._tags} match none of the URLs "
                    "(tag a URL as 'tag=scheme://…')",
                )
            )
        if problems:
            raise NotifierConfigError(
                f"channel {self.name!r}: invalid apprise settings", problems
            )
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._progress: OrderedDict[int, _Progress] = OrderedDict()

    # ------------------------------------------------------------ set-up
    def _tune(self, plugin: NotifyBase, plugin_logger: logging.Logger) -> None:
        """Turn off apprise's retry and throttle; cap its socket timeouts."""
        plugin.retry = 0
        plugin.request_rate_per_sec = 0
        plugin.socket_connect_timeout = min(
            float(plugin.socket_connect_timeout), self.timeout
        )
        plugin.socket_read_timeout = min(
            float(plugin.socket_read_timeout), self.timeout
        )
        plugin.logger = plugin_logger

    def _select(self) -> list[int]:
        """Indexes of the services the tag filter selects (apprise's matching)."""
        if self._tags is None:
            return list(range(len(self._services)))
        probe = _apprise().apprise(asset=self._asset)
        for service in self._services:
            probe.add(service.plugin)
        chosen = {id(p) for p in probe.find(tag=self._tags, match_always=False)}
        return [i for i, s in enumerate(self._services) if id(s.plugin) in chosen]

    async def start(self) -> None:
        """Create the channel's executor (two threads named after the channel)."""
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=2, thread_name_prefix=f"notifiers-apprise-{self.name}"
            )

    async def aclose(self) -> None:
        """Shut the executor down without waiting for a call stuck on a socket."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------ sending
    def rate_limits(
        self, notification: Notification
    ) -> Sequence[tuple[str, RateLimit]]:
        """The limits of each URL this attempt still sends to (see ``rate_limits=``)."""
        progress = self._progress.get(notification.id)
        pairs: list[tuple[str, RateLimit]] = []
        for index in self._selected:
            if progress is not None and (
                index in progress.delivered or index in progress.permanent
            ):
                continue  # a retry skips the URLs already done
            service = self._services[index]
            limits = self.custom_rate_limits
            if limits is None:
                limits = service.default_limits
            pairs.extend((service.limit_key, limit) for limit in limits)
        return pairs

    async def send(self, notification: Notification) -> None:
        """Send once to every selected service that has not yet succeeded."""
        if self._executor is None:
            await self.start()
        assert self._executor is not None
        progress = self._progress.pop(notification.id, None) or _Progress()
        pending = [
            i
            for i in self._selected
            if i not in progress.delivered and i not in progress.permanent
        ]
        loop = asyncio.get_running_loop()
        guard = (2 * self.timeout + 1) * max(1, len(pending))
        try:
            outcomes = await asyncio.wait_for(
                loop.run_in_executor(
                    self._executor, self._notify_all, pending, notification
                ),
                guard,
            )
        except TimeoutError:
            self._remember(notification.id, progress)
            raise MaybeDelivered(
                redact(f"no answer from apprise within {guard:.1f} s"),
                channel=self.name,
            ) from None
        failures: list[DeliveryError] = []
        for outcome in outcomes:
            if outcome.error is None:
                progress.delivered.add(outcome.index)
            elif isinstance(outcome.error, PermanentDeliveryError):
                progress.permanent[outcome.index] = outcome.error.message
            else:
                failures.append(outcome.error)
        if failures:
            self._remember(notification.id, progress)
            raise self._combine(failures, progress)
        if progress.permanent:
            messages = "; ".join(progress.permanent.values())
            raise PermanentDeliveryError(
                redact(self._partial(progress) + messages), channel=self.name
            )

    def _remember(self, notification_id: int, progress: _Progress) -> None:
        self._progress[notification_id] = progress
        while len(self._progress) > _PROGRESS_SIZE:
            self._progress.popitem(last=False)

    def _partial(self, progress: _Progress) -> str:
        if not progress.delivered:
            return ""
        return f"(delivered to {len(progress.delivered)} of {len(self._selected)}) "

    def _combine(
        self, failures: list[DeliveryError], progress: _Progress
    ) -> DeliveryError:
        """One error for the dispatcher: the most retryable kind wins."""
        plain = [e for e in failures if not isinstance(e, MaybeDelivered)]
        chosen = plain or failures
        text = self._partial(progress) + "; ".join(e.message for e in chosen)
        if plain:
            first = plain[0]
            if len(plain) == 1 and not progress.delivered:
                return first
            return TransientDeliveryError(redact(text), channel=self.name)
        return MaybeDelivered(redact(text), channel=self.name)

    def _notify_all(
        self, indexes: list[int], notification: Notification
    ) -> list[_Outcome]:
        """On an executor thread: notify each service in turn (blocking)."""
        title = redact(notification.title)
        body = redact(notification.body) or title
        # Code blocks (a traceback): Slack renders the fences as a code block,
        # everything else (e-mail, webhooks) gets plain text without them.
        plain = plain_text(body)
        lib = _apprise()
        notify_type = lib.notify_types.get(notification.severity, lib.info)
        outcomes = []
        for index in indexes:
            service = self._services[index]
            apobj = lib.apprise(asset=self._asset)
            apobj.add(service.plugin)
            try:
                result = apobj.notify(
                    body=body if isinstance(service.plugin, lib.slack) else plain,
                    title=title,
                    notify_type=notify_type,
                    body_format=lib.text,
                    interpret_escapes=False,
                    log_level=logging.DEBUG,
                )
            except Exception as exc:  # notify() should never raise; be safe
                error: DeliveryError | None = self.classify(exc)
            else:
                with result:
                    error = self._read(service, result)
            outcomes.append(_Outcome(index, error))
        return outcomes

    # ------------------------------------------------------------ classifying
    def _read(self, service: _Service, result: AppriseResult) -> DeliveryError | None:
        """``None`` on success, else the classified error of this service."""
        if result:
            return None
        per_service: list[NotifyResult] = list(result.results)
        if not per_service:  # the call itself was refused (e.g. a bad message)
            lines = [e.message for e in result.call_logs()]
            return PermanentDeliveryError(
                redact(f"{service.name}: {self._summary(lines) or result.status.name}"),
                channel=self.name,
            )
        entries = list(per_service[0].logs())
        lines = [e.message for e in entries]
        details = "\n".join(lines)
        prefix = f"{service.name}: "
        if per_service[0].status == _apprise().timeout_status:
            return MaybeDelivered(
                redact(prefix + self._summary(lines)), channel=self.name
            )
        status = _HTTP_STATUS.search(details)
        if status is not None:
            code = int(status[1])
            text = prefix + f"HTTP {code}: " + self._summary(lines)
            if 400 <= code < 500 and code not in _TRANSIENT_4XX:
                return PermanentDeliveryError(redact(text), channel=self.name)
            return TransientDeliveryError(redact(text), channel=self.name)
        text = prefix + self._summary(lines)
        login = self._smtp_login_error(lines, details, prefix)
        if login is not None:
            return login
        if _SMTP_UNSUPPORTED.search(details):
            return PermanentDeliveryError(redact(text), channel=self.name)
        if _READ_TIMEOUT.search(details):
            return MaybeDelivered(redact(text), channel=self.name)
        reply = _SMTP_REPLY.search(details)
        if reply is not None and reply[1].startswith("5"):
            return PermanentDeliveryError(redact(text), channel=self.name)
        return TransientDeliveryError(redact(text), channel=self.name)

    def _smtp_login_error(
        self, lines: list[str], details: str, prefix: str
    ) -> DeliveryError | None:
        """The error of an SMTP login that failed (``None``: it did not fail).

        A refusal (5xx, 535 most often) is permanent, and so is a login left
        unanswered until the timeout: servers delay a failed login (a tarpit) or
        never answer it, and retrying the same credentials cannot help (it may lock
        the account). A 4xx ("454 temporary authentication failure") is transient.
        """
        step = None
        for line in lines:
            if line.startswith(_SMTP_STEPS):
                step = line
            elif line.startswith(_SMTP_STEP_FAILED):
                break
        else:
            return None  # no step failed (a refused recipient, say), or none logged
        if step is None or not step.startswith(_SMTP_LOGIN_STEP):
            return None
        reply = _SMTP_REPLY.search(details)
        summary = self._summary(lines)
        if reply is not None and reply[1].startswith("4"):
            return TransientDeliveryError(
                redact(f"{prefix}SMTP login refused for now ({reply[1]}) | {summary}"),
                channel=self.name,
            )
        if reply is not None:
            why = f"refused ({reply[1]})"
        elif _SMTP_UNSUPPORTED.search(details):
            why = "impossible: the server offers no AUTH on this connection"
        elif _TIMEOUT.search(details):
            why = f"not answered within {self.timeout:g} s"
        else:
            return None  # the connection broke: transient, as for any other step
        return PermanentDeliveryError(
            redact(
                f"{prefix}SMTP login {why}; check the username, password and mode"
                f" | {summary}"
            ),
            channel=self.name,
        )

    @staticmethod
    def _summary(lines: list[str]) -> str:
        """The warning and the socket/SMTP detail of a failed attempt."""
        keep = [
            line.replace("\r\n", " ").strip()
            for line in lines
            if not line.startswith(
                ("JSON Payload", "Slack Payload", "Response Details", "Throttl")
            )
            and "POST URL" not in line
            and "completed in" not in line
        ]
        return " | ".join(keep[-3:]) if keep else "failed (apprise gave no reason)"

    def __repr__(self) -> str:
        schemes = ", ".join(f"{s.scheme}://" for s in self._services)
        return f"<{type(self).__name__} {self.name!r} [{schemes}]>"
