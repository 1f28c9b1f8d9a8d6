"""Signed button data: what a button does, on which alert, since when, and an HMAC.

Telegram gives a button at most 64 bytes of ``callback_data``. A token reads
``1r1f.6752d0c1.<mac>``: the format's version (``1``), the action (one letter), the
alert's id and the time it was issued (hexadecimal), then the first 16 characters
(96 bits) of the URL-safe base64 of HMAC-SHA256 over what precedes, keyed with the
installation's secret (:meth:`notifiers.state.ChatOpsTable.secret`). About 35 bytes.

A token that was altered, signed with another key, malformed, issued in the future
or older than the time to live is refused. That a button works once is the alert
table's job (:meth:`~notifiers.state.ChatOpsTable.use`), so a replayed token does
nothing either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ACTIONS", "CallbackSigner", "InvalidToken", "SignedAction"]

ACTIONS = {"r": "restart", "m": "mute", "a": "ack", "l": "log"}
"""The button actions by their letter in a token."""

_VERSION = "1"
_MAC_CHARS = 16
_SKEW = 60.0  # seconds a token may seem to come from the future (clock steps)
MAX_CALLBACK_DATA = 64
"""Telegram's limit on ``callback_data``, in bytes."""


class InvalidToken(ValueError):
    """Button data that is not ours, was altered, or has expired (the reason says
    which; it never repeats the data)."""


@dataclass(frozen=True, slots=True)
class SignedAction:
    """What a valid token asks for."""

    action: str  # "restart", "mute", "ack" or "log"
    alert: int
    issued: float


class CallbackSigner:
    """Makes and checks button tokens with one secret.

    Args:
        secret: the key (at least 16 bytes).
        ttl: seconds a token stays valid.
        clock: epoch seconds (injectable for tests).
    """

    def __init__(
        self,
        secret: bytes,
        *,
        ttl: float = 86_400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the signing secret must be at least 16 bytes")
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self._secret = secret
        self.ttl = ttl
        self.clock = clock

    def _mac(self, body: str) -> str:
        digest = hmac.new(self._secret, body.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii")[:_MAC_CHARS]

    def sign(self, action: str, alert: int) -> str:
        """The token of ``action`` (a name from :data:`ACTIONS`) on ``alert``."""
        letters = {name: letter for letter, name in ACTIONS.items()}
        if action not in letters:
            raise ValueError(f"unknown action {action!r}")
        if alert < 0:
            raise ValueError("the alert id must not be negative")
        body = f"{_VERSION}{letters[action]}{alert:x}.{int(self.clock()):x}"
        token = f"{body}.{self._mac(body)}"
        assert len(token.encode()) <= MAX_CALLBACK_DATA
        return token

    def verify(self, data: str | None) -> SignedAction:
        """What ``data`` asks for.

        Raises:
            InvalidToken: malformed, altered or forged, or expired.
        """
        if not data or len(data) > MAX_CALLBACK_DATA or not data.isascii():
            raise InvalidToken("malformed")
        body, _, mac = data.rpartition(".")
        if not body or not hmac.compare_digest(mac, self._mac(body)):
            raise InvalidToken("bad signature")
        head, _, issued_hex = body.partition(".")
        if len(head) < 3 or head[0] != _VERSION or head[1] not in ACTIONS:
            raise InvalidToken("malformed")
        try:
            alert = int(head[2:], 16)
            issued = float(int(issued_hex, 16))
        except ValueError:
            raise InvalidToken("malformed") from None
        now = self.clock()
        if issued > now + _SKEW:
            raise InvalidToken("issued in the future")
        if now - issued > self.ttl:
            raise InvalidToken("expired")
        return SignedAction(ACTIONS[head[1]], alert, issued)
