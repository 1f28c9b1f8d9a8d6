"""Retry policy per channel, built on tenacity.

Only transient errors are retried; a server's ``retry_after`` is honoured up to a
cap (beyond it we give up and record why); otherwise exponential backoff with jitter.
Attempts stop at ``max_attempts`` or when the next sleep would cross ``budget``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from ._settings_errors import config_error
from .errors import (
    DeliveryError,
    MaybeDelivered,
    RateLimited,
    TransientDeliveryError,
)

__all__ = ["RetryPolicy", "error_class"]

logger = logging.getLogger("notifiers.retry")


class RetryPolicy(BaseModel):
    """How one channel retries. Durations are seconds.

    Defaults: 5 attempts or 60 s, exponential 1 s → 30 s with up to 1 s jitter, a
    server's retry-after honoured up to 60 s; "maybe delivered" is not retried.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    if not TYPE_CHECKING:  # mypy keeps the pydantic plugin's typed signature

        def __init__(self, **values: Any) -> None:
            # A bad value is a NotifierConfigError naming the field, as in the
            # settings (where a [retry] section is checked by the same model).
            try:
                super().__init__(**values)
            except ValidationError as exc:
                raise config_error(exc, title="invalid retry policy") from None

    max_attempts: int = Field(default=5, ge=1, le=100)
    budget: float = Field(default=60.0, gt=0)
    initial: float = Field(default=1.0, ge=0)
    multiplier: float = Field(default=2.0, ge=1)
    max_wait: float = Field(default=30.0, ge=0)
    jitter: float = Field(default=1.0, ge=0)
    retry_after_cap: float = Field(default=60.0, ge=0)
    retry_maybe_delivered: bool = False

    def should_retry(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt under this policy."""
        if isinstance(exc, RateLimited):
            return exc.retry_after <= self.retry_after_cap
        if isinstance(exc, MaybeDelivered):
            return self.retry_maybe_delivered
        return isinstance(exc, TransientDeliveryError)

    def wait_for(self, state: RetryCallState) -> float:
        """Seconds to sleep before the next attempt."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited):
            return min(exc.retry_after, self.retry_after_cap)
        return float(_exponential(self)(state))

    def retrying(
        self,
        *,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        on_retry: Callable[[RetryCallState], None] | None = None,
        name: str = "",
    ) -> AsyncRetrying:
        """A tenacity ``AsyncRetrying`` for this policy (``sleep`` injectable).

        Before each wait between attempts it logs one INFO line on
        ``notifiers.retry``, e.g. ``telegram: attempt 3/5 failed (ConnectError),
        next in 4 s`` (``name`` is the channel; the error class only, never its
        message, which could hold a secret), then calls ``on_retry``.

        The object keeps nothing of one call that another needs: build it once and
        call it for every delivery. A caller that made the first attempt itself
        (and calls this only when it failed, with a function that re-raises that
        error once) passes ``started=`` (its ``time.monotonic()``) to the call, so
        ``budget`` counts from the first attempt; the wrapped function receives
        it too.
        """
        kwargs: dict[str, Any] = {}
        if sleep is not None:
            kwargs["sleep"] = sleep
        prefix = f"{name}: " if name else ""

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            logger.info(
                "%sattempt %d/%d failed (%s), next in %s s",
                prefix,
                state.attempt_number,
                self.max_attempts,
                error_class(exc),
                _seconds(state.upcoming_sleep),
            )
            if on_retry is not None:
                on_retry(state)

        return AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts) | stop_before_delay(self.budget),
            wait=self.wait_for,
            retry=retry_if_exception(self.should_retry),
            before=_start_at_first_attempt,
            before_sleep=before_sleep,
            reraise=True,
            **kwargs,
        )


def _start_at_first_attempt(state: RetryCallState) -> None:
    """The budget counts from ``started=``, if the call was given one."""
    started = state.kwargs.get("started")
    if state.attempt_number == 1 and isinstance(started, float):
        state.start_time = started


def _exponential(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    # tenacity 9.2 deprecates initial=; multiplier= scales the exponential instead.
    return wait_exponential_jitter(
        multiplier=policy.initial,
        exp_base=policy.multiplier,
        max=policy.max_wait,
        jitter=policy.jitter,
    )


_FOREIGN = re.compile(r"([A-Za-z_][\w.]*): ")


def error_class(exc: BaseException | None) -> str:
    """The class of the error behind ``exc``: a channel's classified error
    (``TransientDeliveryError("ConnectError: ...")``, see
    :meth:`Notifier.classify <notifiers.base.Notifier.classify>`) names the foreign
    class it stands for first; otherwise ``exc``'s own class."""
    if exc is None:
        return "unknown error"
    if isinstance(exc, DeliveryError):
        match = _FOREIGN.match(exc.message)
        if match:
            return match.group(1).rpartition(".")[2]
    return type(exc).__name__


def _seconds(value: float) -> str:
    """``4``, ``0.25``, ``12``: short, for a log line."""
    if value >= 10:
        return f"{value:.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".") or "0"
