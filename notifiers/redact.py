"""Keep secrets out of logs, errors, results and reprs.

Every notifier registers its secrets (bot tokens, passwords, webhook URLs and their
paths) in the process-wide :data:`SECRETS` registry. :func:`redact` replaces them, and
anything shaped like a Telegram bot token, with ``***``. :class:`RedactingFilter`
does it to log records; :func:`install_log_redaction` puts it on the loggers that are
known to print secrets (httpx logs every request URL at INFO, and Telegram's URLs
contain the bot token).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

__all__ = [
    "LEAKY_LOGGERS",
    "SECRETS",
    "RedactingFilter",
    "SecretRegistry",
    "install_log_redaction",
    "redact",
]

MASK = "***"
_BOT_TOKEN = re.compile(r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{20,}")  # also inside "bot<token>"
LEAKY_LOGGERS = (
    "notifiers",
    "telegram",
    "apprise",
    "httpx",
    "httpcore",
    "urllib3",
    "requests",
    "mail.log",
)
"""Loggers that may carry secrets; :func:`install_log_redaction` filters them."""


class SecretRegistry:
    """A thread-safe set of strings that must never be shown."""

    def __init__(self) -> None:
        self._secrets: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, *secrets: str | None) -> None:
        """Register secrets (strings shorter than 4 characters are ignored)."""
        new = {s for s in secrets if s and len(s) >= 4}
        if not new or new <= self._secrets:
            return
        with self._lock:
            self._secrets = self._secrets | new
            ordered = sorted(self._secrets, key=len, reverse=True)  # longest first
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def __contains__(self, text: object) -> bool:
        return text in self._secrets

    def __len__(self) -> int:
        return len(self._secrets)

    def redact(self, text: str) -> str:
        """``text`` with every registered secret and bot-token shape masked."""
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(MASK, text)
        return _BOT_TOKEN.sub(MASK, text)


SECRETS = SecretRegistry()
"""The process-wide registry that notifiers fill."""


def redact(text: object) -> str:
    """``str(text)`` with every known secret masked."""
    return SECRETS.redact(str(text))


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in the message and its arguments.

    It formats the record's message once, masks it, and drops the arguments; the
    exception text is masked too. Attach it to a logger or a handler.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: show it, masked, as it is
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactingFilter()
_installed: set[str] = set()
_install_lock = threading.Lock()


def install_log_redaction(names: Iterable[str] = LEAKY_LOGGERS) -> None:
    """Put the redacting filter on ``names`` and on their existing child loggers.

    Idempotent. Child loggers created later are covered when this runs again (each
    notifier calls it when it starts), and records of children that propagate up
    are already masked by the child's filter.
    """
    with _install_lock:
        wanted = set(names)
        manager = logging.Logger.manager
        for name in list(manager.loggerDict):
            if any(name == w or name.startswith(w + ".") for w in wanted):
                wanted.add(name)
        for name in wanted - _installed:
            logging.getLogger(name).addFilter(_FILTER)
            _installed.add(name)
