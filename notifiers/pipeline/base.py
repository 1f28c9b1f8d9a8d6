"""The pipeline's state and clocks, its timer heap and its mutes (the base of AlertPipeline)."""

from __future__ import annotations

import datetime as _dt
import fnmatch
import heapq
import itertools
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from ..templates import PIPELINE_TEMPLATES, Template
from .config import PipelineConfig
from .records import Key, Mute, PipelineStats, _Agent, _Group, _Held

__all__: list[str] = []

logger = logging.getLogger("notifiers.pipeline")


class _PipelineBase:
    """What every part of :class:`~notifiers.pipeline.AlertPipeline` shares: the
    rules, the clocks, the state, the timer heap and the mutes."""

    def __init__(
        self,
        config: PipelineConfig | Mapping[str, Any] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] | None = None,
        muted: Callable[[str | None, str | None], bool] | None = None,
        templates: Mapping[str, Template] | None = None,
    ) -> None:
        self.config = PipelineConfig.parse(config)
        self._clock = clock
        if wall_clock is None:
            if clock is time.monotonic:
                wall_clock = time.time
            else:
                anchor = time.time() - clock()

                def wall_clock() -> float:
                    return anchor + clock()

        self._wall = wall_clock
        self._predicate = muted
        self._templates: dict[str, Template] = {
            **PIPELINE_TEMPLATES,
            **{k: v for k, v in (templates or {}).items() if k in PIPELINE_TEMPLATES},
        }
        cfg = self.config
        self._tz = ZoneInfo(cfg.timezone) if cfg.timezone else None
        quiet = cfg.quiet_hours
        zone = (quiet.timezone if quiet else None) or cfg.timezone
        self._quiet_tz = ZoneInfo(zone) if zone else None
        self._quiet_valid_until = -math.inf
        self._quiet_active = False
        self._lock = threading.Lock()
        self._agents: dict[str | None, _Agent] = {}
        self._dedup: OrderedDict[Key, float] = OrderedDict()
        self._groups: dict[tuple[str | None, str | None], _Group] = {}
        self._group_specs: dict[
            tuple[str | None, str | None], tuple[float, bool] | None
        ] = {}
        self._heap: list[tuple[float, int, str, Any, int]] = []
        self._seq = itertools.count()
        self._held: dict[tuple[str | None, str | None], _Held] = {}
        self._held_total = 0
        self._held_overflow = 0
        self._digest_due: float | None = None
        self._mutes: list[Mute] = [
            self._make_mute(glob, event, rule.until.timestamp(), rule.reason)
            for rule in cfg.mutes
            for glob in rule.agents
            for event in (sorted(rule.events) if rule.events else [None])
        ]
        self._stats = PipelineStats()

    # ------------------------------------------------------------ mutes
    def _make_mute(
        self, agent: str | None, event: str | None, until: float, reason: str
    ) -> Mute:
        pattern = (
            None
            if agent is None or agent == "*"
            else re.compile(fnmatch.translate(agent))
        )
        return Mute(agent, event, until, reason, pattern)

    def _is_muted(self, agent: str | None, event: str | None) -> bool:
        if self._predicate is not None:
            try:
                if self._predicate(agent, event):
                    return True
            except Exception:
                logger.exception("the muted() predicate raised; not muting")
        if not self._mutes:
            return False
        wall = self._wall()
        expired = False
        found = False
        for mute in self._mutes:
            if mute.until <= wall:
                expired = True
            elif not found and mute.matches(agent, event):
                found = True
        if expired:
            self._mutes = [m for m in self._mutes if m.until > wall]
        return found

    # ------------------------------------------------------------ timers
    def _push(self, deadline: float, kind: str, ref: Any, token: int) -> None:
        heapq.heappush(self._heap, (deadline, next(self._seq), kind, ref, token))

    def _valid(self, item: tuple[float, int, str, Any, int]) -> bool:
        deadline, _, kind, ref, token = item
        if kind == "group":
            group = self._groups.get(ref)
            return group is not None and group.scheduled and group.token == token
        if kind == "stable":
            agent = self._agents.get(ref)
            return agent is not None and agent.stable_due == deadline
        if kind == "report":
            agent = self._agents.get(ref)
            return agent is not None and agent.report_due == deadline
        return self._digest_due == deadline

    # ------------------------------------------------------------ texts
    def _time(self, wall: float, *, seconds: bool = False) -> str:
        local = _dt.datetime.fromtimestamp(wall, self._tz)
        return local.strftime("%H:%M:%S" if seconds else "%H:%M")
