"""Supervision policy: when a failed agent comes back, how fast, and when to give up.

This module is pure policy: a validated :class:`SupervisionConfig` per agent, and a
:class:`RestartTracker` that turns "the agent ended" into a :class:`RestartDecision`
(no restart, restart after a delay, or FATAL). It never sleeps and never reads a clock:
the lifecycle manager passes ``now`` from its injected monotonic clock, so every rule
here is tested with plain numbers.

The rules, in the order they apply when an agent ends on its own (an operator stop or
a shutdown never reaches them, and never counts):

1. ``restart="never"``: stays ended. ``"on-failure"``: comes back only after a
   failure (an exit code not in ``success_exit_codes``, a signal, an error status, a
   watchdog or readiness timeout). ``"always"``: comes back after any end.
2. An agent that stayed up ``reset_after`` seconds was stable: its attempt count and
   its flap history start again from zero.
3. ``max_restarts`` automatic restarts since the last reset (``-1``: no limit); one
   more end is FATAL (``reason="max_restarts"``).
4. ``flap_restarts`` restarts within ``flap_window`` seconds is flapping: FATAL
   (``reason="flapping"``). ``flap_restarts=None`` turns this off.
5. Otherwise restart: the first ``immediate_restarts`` restarts in a row at once, then
   after ``backoff_initial * backoff_multiplier ** n`` seconds (``n`` = 0, 1, 2, …),
   at most ``backoff_max``, spread by ``± backoff_jitter`` (a fraction).

With the defaults, one crash after a stable run comes back at once (as Kubernetes
does it: downtime is what hurts), a crash loop then backs off 0.1 s, 0.2 s, 0.4 s, …
and, like systemd's start limit, goes FATAL after 5 restarts within a minute instead
of spinning.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, StrictInt, field_validator, model_validator

from .config import ConfigModel

__all__ = [
    "RestartDecision",
    "RestartMode",
    "RestartTracker",
    "SupervisionConfig",
    "backoff_delay",
]

RestartMode = Literal["never", "on-failure", "always"]


class SupervisionConfig(ConfigModel):
    """How the orchestrator supervises one agent.

    Give it at registration (``register_agent(..., supervision=SupervisionConfig(...))``
    or a mapping) or in the agent's config (``Worker.Config(supervision={...})``).
    Everything is off by default: no restarts, no watchdog, no readiness deadline.
    Numbers are strict: a bool or a string is refused (a float field takes an int).
    """

    restart: RestartMode = Field(
        default="never", description="never, on-failure or always"
    )
    success_exit_codes: frozenset[StrictInt] = Field(
        default=frozenset({0}),
        description="exit codes that count as success (threads: 0 ok, 1 error)",
    )
    max_restarts: int = Field(
        default=-1,
        strict=True,
        ge=-1,
        description="automatic restarts before FATAL; -1 = no limit",
    )
    immediate_restarts: int = Field(
        default=1,
        strict=True,
        ge=0,
        description="restarts in a row made at once, before the backoff starts",
    )
    backoff_initial: float = Field(
        default=0.1, strict=True, ge=0, description="the first backoff delay (s)"
    )
    backoff_multiplier: float = Field(
        default=2.0,
        strict=True,
        ge=1,
        description="each further delay is this many times longer",
    )
    backoff_max: float = Field(
        default=30.0, strict=True, ge=0, description="longest delay (s)"
    )
    backoff_jitter: float = Field(
        default=0.1,
        strict=True,
        ge=0,
        le=1,
        description="delays vary by up to ± this fraction",
    )
    reset_after: float = Field(
        default=30.0,
        strict=True,
        gt=0,
        description="uptime after which the agent counts as stable again (s)",
    )
    flap_restarts: int | None = Field(
        default=5,
        strict=True,
        ge=1,
        description="this many restarts within flap_window is flapping (FATAL); None = off",
    )
    flap_window: float = Field(
        default=60.0, strict=True, gt=0, description="flap window (s)"
    )
    ready_timeout: float | None = Field(
        default=None,
        strict=True,
        gt=0,
        description="seconds from START to READY before the agent is failed",
    )
    heartbeat_timeout: float | None = Field(
        default=None,
        strict=True,
        gt=0,
        description="seconds without a heartbeat (once READY) before the watchdog fires",
    )
    stop_timeout: float | None = Field(
        default=None,
        strict=True,
        gt=0,
        description="cooperative stop budget before SIGTERM (s); None = agent_stop_timeout",
    )
    kill_timeout: float | None = Field(
        default=None,
        strict=True,
        gt=0,
        description="wait after SIGTERM before SIGKILL (s); None = termination_grace",
    )

    @field_validator("restart", mode="before")
    @classmethod
    def _restart_spelling(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip().lower().replace("_", "-")
        return value

    @model_validator(mode="after")
    def _backoff_bounds(self) -> SupervisionConfig:
        if self.backoff_max < self.backoff_initial:
            raise ValueError(
                "backoff_max: must be at least backoff_initial "
                f"({self.backoff_max:g} < {self.backoff_initial:g})"
            )
        return self

    @property
    def restarts_enabled(self) -> bool:
        """Whether this agent ever restarts by itself."""
        return self.restart != "never"


def backoff_delay(
    config: SupervisionConfig, attempt: int, rng: random.Random | None = None
) -> float:
    """The delay before restart number ``attempt`` (1 for the first), jitter included."""
    attempt = max(attempt, 1)
    if attempt <= config.immediate_restarts:
        return 0.0
    exponent = attempt - config.immediate_restarts - 1
    try:
        base = config.backoff_initial * config.backoff_multiplier**exponent
    except OverflowError:
        base = config.backoff_max if config.backoff_initial else 0.0
    base = min(base, config.backoff_max)
    if config.backoff_jitter and base > 0:
        spread = (rng or random).uniform(-1.0, 1.0) * config.backoff_jitter
        base = min(base * (1.0 + spread), config.backoff_max)
    return max(base, 0.0)


@dataclass(frozen=True, slots=True)
class RestartDecision:
    """What to do with an agent that has just ended.

    Attributes:
        action: ``none`` (stay ended), ``restart`` (after ``delay``) or ``fatal``.
        attempt: the restart's number since the agent was last stable (1 = first).
        delay: seconds to wait before the restart.
        reason: for ``fatal``: ``max_restarts`` or ``flapping``; for ``none``: why not.
        restarts_in_window: restarts counted in the flap window, this one included.
    """

    action: Literal["none", "restart", "fatal"]
    attempt: int = 0
    delay: float = 0.0
    reason: str = ""
    restarts_in_window: int = 0


class RestartTracker:
    """Counts one agent's automatic restarts and decides the next one.

    Args:
        rng: where jitter comes from (seed it for deterministic tests).
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self.attempts = 0
        self._recent: deque[float] = deque()

    def reset(self) -> None:
        """Forget the restart history (an operator start, or a stable run)."""
        self.attempts = 0
        self._recent.clear()

    def decide(
        self,
        config: SupervisionConfig,
        *,
        now: float,
        failed: bool,
        uptime: float | None,
    ) -> RestartDecision:
        """Decide what happens after an end the agent was not asked for.

        Args:
            config: the agent's policy.
            now: the monotonic time of the end.
            failed: whether the end counts as a failure.
            uptime: how long it ran (``None`` if it never started).
        """
        if config.restart == "never":
            return RestartDecision("none", reason="restart=never")
        if config.restart == "on-failure" and not failed:
            return RestartDecision("none", reason="ended cleanly")
        if uptime is not None and uptime >= config.reset_after:
            self.reset()
        window_start = now - config.flap_window
        while self._recent and self._recent[0] < window_start:
            self._recent.popleft()
        if 0 <= config.max_restarts <= self.attempts:
            return RestartDecision(
                "fatal",
                attempt=self.attempts,
                reason="max_restarts",
                restarts_in_window=len(self._recent),
            )
        if (
            config.flap_restarts is not None
            and len(self._recent) >= config.flap_restarts
        ):
            return RestartDecision(
                "fatal",
                attempt=self.attempts,
                reason="flapping",
                restarts_in_window=len(self._recent),
            )
        self.attempts += 1
        self._recent.append(now)
        return RestartDecision(
            "restart",
            attempt=self.attempts,
            delay=backoff_delay(config, self.attempts, self._rng),
            restarts_in_window=len(self._recent),
        )
