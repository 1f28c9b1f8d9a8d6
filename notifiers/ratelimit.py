"""Rate limits per destination: token buckets, waited for on the dispatcher's loop.

A :class:`RateLimiter` is the dispatcher's send gate (``Dispatcher(gate=...)``).
Before each attempt to send, it asks the channel which buckets the send takes a
token from (:meth:`notifiers.base.Notifier.rate_limits`: pairs of a destination key
and a :class:`RateLimit`) and waits, with an *asyncio* sleep, until every one of them
has a token. Only the worker task of that channel waits; the other channels, the
dispatcher's loop and the orchestrator's threads go on. Nothing is dropped: what
waits stays in the channel's queue, in order. Nothing here calls ``time.sleep``.

Buckets are made on first use and keyed by (destination key, limit). The keys name
the real destination (a bot and a chat, a webhook), so two channels that post to the
same destination through one limiter share its buckets, as the service counts them.
Keys never hold a secret: tokens and URLs appear only as :func:`destination_id`, a
hash keyed with a random per-process salt.

The defaults (declared by each channel's module, in :mod:`notifiers.channels`, and
importable from here too) follow the services' documented limits, with the
short bursts they tolerate: a burst of alerts (several agents failing at once, a
backlog after an outage) goes out at once, then the rate holds. Where a limit is a
hard count per period (Telegram's 20 per minute in a group), burst and rate are
chosen so that no window of the period ever holds more than the count (Telegram and
Slack answer excess with 429 and a wait).

=========================  =========================================================
Telegram, per chat         bursts of 5, then 1/s (:data:`TELEGRAM_PER_CHAT`)
Telegram, per group        more: bursts of 5, then 15/min, so never more than 20 in
                           a minute (:data:`TELEGRAM_PER_GROUP`): chat ids < 0, ``@name``
Telegram, per bot          30/s (:data:`TELEGRAM_PER_BOT`), shared by every chat
Slack, per webhook         1/s (:data:`SLACK_PER_WEBHOOK`)
ntfy, per URL              bursts of 60, then 1 per 5 s (:data:`NTFY_PER_URL`)
e-mail, json/form/xml, …   none (no documented limit; a 429 is still honoured by the
                           retry policy)
=========================  =========================================================
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from pyorchestrate._lazy import lazy_exports

from .errors import NotifierConfigError
from .redact import redact

__all__ = [
    "NTFY_PER_URL",  # noqa: F822  (loaded on first use, see __getattr__)
    "SLACK_PER_WEBHOOK",  # noqa: F822  (loaded on first use, see __getattr__)
    "TELEGRAM_BURST",  # noqa: F822  (loaded on first use, see __getattr__)
    "TELEGRAM_PER_BOT",  # noqa: F822  (loaded on first use, see __getattr__)
    "TELEGRAM_PER_CHAT",  # noqa: F822  (loaded on first use, see __getattr__)
    "TELEGRAM_PER_GROUP",  # noqa: F822  (loaded on first use, see __getattr__)
    "Limited",
    "RateLimit",
    "RateLimitStats",
    "RateLimiter",
    "TokenBucket",
    "coerce_rate_limits",
    "destination_id",
]

logger = logging.getLogger("notifiers.ratelimit")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# A bucket that refilled to within this of a whole token has one: float sums of
# "waited exactly the computed delay" may land at 0.9999999999.
_EPSILON = 1e-9
_SALT = os.urandom(16)
_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}
_SPEC = re.compile(
    r"""^\s*(?P<count>\d+(?:\.\d+)?)\s*/\s*(?P<unit>[a-z]+?)s?\s*
        (?:[,;]?\s*burst\s*[=:]?\s*(?P<burst>\d+(?:\.\d+)?))?\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


def destination_id(*parts: object) -> str:
    """A short, non-reversible id of a destination's identity (token, URL, …).

    Keyed with a random per-process salt, so no key, log line or stat can be used
    to guess a token; equal ``parts`` give equal ids within the process.
    """
    digest = hashlib.blake2b(key=_SALT, digest_size=6)
    for part in parts:
        digest.update(repr(part).encode("utf-8", "replace"))
        digest.update(b"\0")
    return digest.hexdigest()


class TokenBucket:
    """``rate`` tokens per second, holding at most ``capacity`` (the burst); starts full.

    Not thread-safe by itself (:class:`RateLimiter` guards its buckets); never sleeps
    a thread: :meth:`try_take` answers at once, :meth:`take` waits with an async sleep.

    Args:
        rate: tokens added per second (> 0; fractions are fine: ``1/3`` is one per 3 s).
        capacity: the most tokens it holds, i.e. the longest burst (>= 1).
        clock: seconds, monotonic (injectable for tests).
    """

    __slots__ = ("_clock", "_stamp", "_tokens", "capacity", "rate")

    def __init__(
        self, rate: float, capacity: float = 1.0, *, clock: Clock = time.monotonic
    ) -> None:
        _check(rate, capacity)
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._stamp
        if elapsed > 0:
            self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
        # A clock that went back adds nothing, takes nothing, and counts on from now.
        self._stamp = now

    @property
    def tokens(self) -> float:
        """The tokens there now (fractional)."""
        self._refill()
        return self._tokens

    @property
    def full(self) -> bool:
        """Whether it holds ``capacity`` tokens (it is then as good as a new one)."""
        return self.tokens >= self.capacity - _EPSILON

    def delay(self) -> float:
        """Seconds until a token is there (0.0: one is there now); takes nothing."""
        self._refill()
        missing = 1.0 - self._tokens
        if missing <= _EPSILON:
            return 0.0
        return missing / self.rate

    def hold(self, seconds: float) -> None:
        """Have no token for ``seconds`` from now (a server said "retry after")."""
        if seconds > 0:
            self._refill()
            self._tokens = min(self._tokens, 1.0 - seconds * self.rate)

    def try_take(self) -> float:
        """Take a token if there is one and return 0.0; else take nothing and return
        the seconds until there is one (always > 0)."""
        wait = self.delay()
        if wait == 0.0:
            self._tokens -= 1.0
        return wait

    async def take(self, sleep: Sleep = asyncio.sleep) -> float:
        """Take a token, waiting with ``sleep`` (async) as long as needed.

        Returns:
            the seconds waited, by the bucket's clock.
        """
        started = self._clock()
        while (wait := self.try_take()) > 0:
            await sleep(wait)
        return max(0.0, self._clock() - started)

    def __repr__(self) -> str:
        return f"<TokenBucket {self.tokens:.3f}/{self.capacity:g} +{self.rate:g}/s>"


def _check(rate: float, capacity: float) -> None:
    problems = []
    if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
        problems.append(
            ("rate", f"must be a positive number of tokens/s, not {rate!r}")
        )
    if not (
        isinstance(capacity, int | float) and math.isfinite(capacity) and capacity >= 1
    ):
        problems.append(("burst", f"must be a number >= 1, not {capacity!r}"))
    if problems:
        raise NotifierConfigError("invalid rate limit", problems)


def _number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A limit: ``rate`` sends per second with bursts of up to ``capacity``.

    Build with :meth:`per_second`, :meth:`per_minute`, :meth:`per_hour` or
    :meth:`parse` (``"20/min"``, ``"1/s"``, ``"60/min burst 10"``). With ``burst=1``
    (the default) it is strict: never more than *n* sends in any window of the
    period, evenly spaced. A burst of *b* lets *b* go at once, then the rate
    (so up to ``b - 1 + n`` in the first period).

    ``name`` is its text form (e.g. ``"20/min"``), used in logs and bucket keys.
    """

    rate: float
    capacity: float = 1.0
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        _check(self.rate, self.capacity)
        if not self.name:
            object.__setattr__(self, "name", _describe(self.rate, self.capacity))

    @classmethod
    def per(cls, count: float, seconds: float, *, burst: float = 1) -> RateLimit:
        """``count`` sends per ``seconds``, bursts of ``burst``."""
        if not (math.isfinite(seconds) and seconds > 0):
            raise NotifierConfigError(
                "invalid rate limit",
                [("period", f"must be > 0 seconds, not {seconds!r}")],
            )
        return cls(count / seconds, burst)

    @classmethod
    def per_second(cls, count: float, *, burst: float = 1) -> RateLimit:
        """``count`` sends per second (``per_second(1)``: one each second)."""
        return cls.per(count, 1.0, burst=burst)

    @classmethod
    def per_minute(cls, count: float, *, burst: float = 1) -> RateLimit:
        """``count`` sends per minute (``per_minute(20)``: one each 3 s)."""
        return cls.per(count, 60.0, burst=burst)

    @classmethod
    def per_hour(cls, count: float, *, burst: float = 1) -> RateLimit:
        """``count`` sends per hour."""
        return cls.per(count, 3600.0, burst=burst)

    @classmethod
    def parse(cls, text: str | RateLimit) -> RateLimit:
        """``"1/s"``, ``"20/min"``, ``"100/hour"``, ``"60/min burst 10"`` → a RateLimit.

        Raises:
            NotifierConfigError: naming what is wrong (``ValueError`` too).
        """
        if isinstance(text, RateLimit):
            return text
        match = _SPEC.match(str(text))
        unit = _UNITS.get(match["unit"].lower()) if match else None
        if match is None or unit is None:
            raise NotifierConfigError(
                "invalid rate limit",
                [("", f"{text!r}: use 'N/s', 'N/min' or 'N/hour' (+ ' burst B')")],
            )
        burst = float(match["burst"]) if match["burst"] else 1.0
        return cls.per(float(match["count"]), unit, burst=burst)

    @property
    def interval(self) -> float:
        """Seconds between sends once the burst is spent."""
        return 1.0 / self.rate

    def bucket(self, clock: Clock = time.monotonic) -> TokenBucket:
        """A new, full bucket for this limit."""
        return TokenBucket(self.rate, self.capacity, clock=clock)

    def __str__(self) -> str:
        return self.name


def _describe(rate: float, capacity: float) -> str:
    for seconds, unit in ((1.0, "s"), (60.0, "min"), (3600.0, "hour")):
        count = rate * seconds
        if count >= 1 - _EPSILON and abs(count - round(count)) < 1e-6:
            text = f"{round(count)}/{unit}"
            break
    else:
        text = f"{_number(rate)}/s"
    return text if capacity == 1 else f"{text} burst {_number(capacity)}"


def coerce_rate_limits(
    value: RateLimit | str | Iterable[RateLimit | str] | None,
    *,
    field_name: str = "rate_limits",
) -> tuple[RateLimit, ...] | None:
    """A notifier's ``rate_limits=`` argument as a tuple (``None`` stays ``None``).

    Accepts one limit or several, as :class:`RateLimit` or text (``"20/min"``).

    Raises:
        NotifierConfigError: naming ``field_name`` and the bad entry.
    """
    if value is None:
        return None
    items = [value] if isinstance(value, RateLimit | str) else list(value)
    limits: list[RateLimit] = []
    problems: list[tuple[str, str]] = []
    for index, item in enumerate(items):
        try:
            if not isinstance(item, RateLimit | str):
                raise NotifierConfigError(
                    "invalid rate limit", [("", f"not a rate limit: {item!r}")]
                )
            limits.append(RateLimit.parse(item))
        except NotifierConfigError as exc:
            problems.extend((f"{field_name}[{index}]", msg) for _, msg in exc.errors)
    if problems:
        raise NotifierConfigError("invalid rate limits", problems)
    return tuple(limits)


# The services' default limits live with their channels (a channel is one module):
# Telegram's in notifiers.channels.telegram, Slack's and ntfy's (per apprise URL) in
# notifiers.channels.apprise. The names stay importable from here, loaded on first use.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "TELEGRAM_BURST": "notifiers.channels.telegram",
        "TELEGRAM_PER_BOT": "notifiers.channels.telegram",
        "TELEGRAM_PER_CHAT": "notifiers.channels.telegram",
        "TELEGRAM_PER_GROUP": "notifiers.channels.telegram",
        "SLACK_PER_WEBHOOK": "notifiers.channels.apprise",
        "NTFY_PER_URL": "notifiers.channels.apprise",
    },
)


class _Sent(Protocol):
    """What the limiter reads of a notification (:class:`~notifiers.base.Notification`)."""

    @property
    def id(self) -> int: ...


_N = TypeVar("_N", bound=_Sent, contravariant=True)


class Limited(Protocol[_N]):
    """What the limiter needs of a channel (:class:`~notifiers.base.Notifier`): its
    name and the buckets a send takes (declared here, so that this module does not
    depend on the channels' base)."""

    @property
    def name(self) -> str: ...

    def rate_limits(self, notification: _N) -> Sequence[tuple[str, RateLimit]]: ...


@dataclass
class RateLimitStats:
    """What the limiter did to one channel's sends.

    Attributes:
        passed: sends let through (waiting or not).
        waited: sends that had to wait for a token.
        wait_seconds: the total of those waits (by the limiter's clock).
        max_wait: the longest single wait.
        waiting: sends waiting right now.
    """

    passed: int = 0
    waited: int = 0
    wait_seconds: float = 0.0
    max_wait: float = 0.0
    waiting: int = 0


_M = TypeVar("_M", bound=_Sent)


class RateLimiter:
    """The send gate that holds each channel to its destinations' rate limits.

    ``await limiter(notifier, notification)`` takes one token from every bucket of
    ``notifier.rate_limits(notification)``, waiting (``sleep``, an async sleep) until
    all of them have one; the tokens are taken together, at the moment the send may
    go. One limiter serves several channels (and may be shared by dispatchers: its
    bookkeeping is guarded by a lock, never held across a wait).

    A notifier whose ``rate_limits()`` raises is let through unlimited (and logged):
    a bug there must not cost an alert.

    Args:
        clock: monotonic seconds (inject a fake clock with a matching ``sleep``).
        sleep: the async sleep used to wait (default ``asyncio.sleep``).
        max_buckets: past this many buckets, full (idle) ones are forgotten; a full
            bucket is the same as a new one, so nothing is lost.
        max_hold: the longest :meth:`hold` honours, in seconds.
    """

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep | None = None,
        max_buckets: int = 4096,
        max_hold: float = 3600.0,
    ) -> None:
        self._clock = clock
        self._sleep: Sleep = sleep or asyncio.sleep
        self.max_buckets = max_buckets
        self.max_hold = max_hold
        self._buckets: dict[tuple[str, RateLimit], TokenBucket] = {}
        self._stats: dict[str, RateLimitStats] = {}
        self._lock = threading.Lock()

    async def __call__(self, notifier: Limited[_M], notification: _M) -> None:
        """Wait until ``notifier`` may send ``notification``; take its tokens."""
        try:
            wanted = list(notifier.rate_limits(notification))
        except Exception as exc:
            logger.error(
                "channel %r: rate_limits() failed, sending unlimited: %s",
                notifier.name,
                redact(f"{type(exc).__name__}: {exc}"),
            )
            wanted = []
        pairs = list(dict.fromkeys(wanted))
        with self._lock:
            stats = self._stats.setdefault(notifier.name, RateLimitStats())
            if not pairs:
                stats.passed += 1
                return
        started = self._clock()
        waits = 0
        try:
            while True:
                with self._lock:
                    # Looked up each time: a bucket forgotten meanwhile is not used.
                    buckets = [self._bucket(key, limit) for key, limit in pairs]
                    delay = max(bucket.delay() for bucket in buckets)
                    if delay == 0.0:
                        for bucket in buckets:
                            bucket.try_take()
                        break
                    if waits == 0:
                        stats.waiting += 1
                if waits == 0 and logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "channel %r: notification %d waits %.3f s for %s",
                        notifier.name,
                        notification.id,
                        delay,
                        ", ".join(f"{key} {limit}" for key, limit in pairs),
                    )
                waits += 1
                await self._sleep(delay)
        finally:
            if waits:
                with self._lock:
                    stats.waiting -= 1
        with self._lock:
            stats.passed += 1
            if waits:
                waited = max(0.0, self._clock() - started)
                stats.waited += 1
                stats.wait_seconds += waited
                stats.max_wait = max(stats.max_wait, waited)

    def hold(self, notifier: Limited[_M], notification: _M, seconds: float) -> None:
        """Let nothing through to ``notifier``'s destinations for ``seconds``.

        For a server's "retry after" (HTTP 429, Telegram's flood control): every
        channel sending to the same destinations waits too, instead of each
        running into the same 429. Capped at :attr:`max_hold` seconds.
        """
        seconds = min(float(seconds), self.max_hold)
        if not seconds > 0:
            return
        try:
            wanted = list(notifier.rate_limits(notification))
        except Exception:
            return  # already logged by __call__, which let the send through
        if not wanted:
            return
        with self._lock:
            for key, limit in dict.fromkeys(wanted):
                self._bucket(key, limit).hold(seconds)
        logger.info(
            "channel %r: holding %s for %.1f s (the server asked to wait)",
            notifier.name,
            ", ".join(sorted({key for key, _ in wanted})),
            seconds,
        )

    def _bucket(self, key: str, limit: RateLimit) -> TokenBucket:
        # called with the lock held
        bucket = self._buckets.get((key, limit))
        if bucket is None:
            if len(self._buckets) >= self.max_buckets:
                self._forget_full()
            bucket = self._buckets[(key, limit)] = limit.bucket(self._clock)
        return bucket

    def _forget_full(self) -> None:
        for key in [k for k, bucket in self._buckets.items() if bucket.full]:
            del self._buckets[key]

    def stats(self) -> dict[str, RateLimitStats]:
        """Per channel name: sends passed, how many waited and for how long (copies)."""
        with self._lock:
            return {name: RateLimitStats(**vars(s)) for name, s in self._stats.items()}

    def buckets(self) -> dict[tuple[str, str], float]:
        """``{(destination key, limit text): tokens now}`` of every bucket in use."""
        with self._lock:
            return {
                (key, str(limit)): bucket.tokens
                for (key, limit), bucket in self._buckets.items()
            }

    def __repr__(self) -> str:
        return f"<RateLimiter {len(self._buckets)} bucket(s)>"
