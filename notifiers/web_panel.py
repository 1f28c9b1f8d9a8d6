"""The web dashboard's Alerts page and alerting metrics, over the notifier state file.

``pyorchestrate web --notify-state PATH`` (or ``--notify-config FILE``, resolved as
``pyorchestrate notify status`` resolves it) finds :func:`alerts_panel` through the
``pyorchestrate.web`` entry-point group: the dashboard never imports this package by
name, and this module does not import the dashboard (it returns plain data, the shape
:class:`pyorchestrate.web.AlertsPanel` describes).

What it shows is what the dispatchers saved in the state file (``notify status``
reads the same): each channel's counters (saved every second or so while a
dispatcher runs), the outbox rows and the mutes. Mutes from the page go through the
same :meth:`~notifiers.state.NotifierState.mute` as ``pyorchestrate notify mute``, so
``pyorchestrate notify mutes`` lists them and a running dispatcher honours them
within about a second.

``notify_delivery_seconds`` (a histogram per channel) is saved with the counters
too: the dispatcher counts each delivery's time in fixed buckets
(:data:`DELIVERY_BUCKETS`), so a dashboard in another process shows it as well. A
row saved by an older version (no delivery times) reads as 0.

Given the running :class:`~notifiers.Dispatcher` itself (the dashboard in the same
process, e.g. ``orchestrator.serve_web(alerts=NotifierPanel(dispatcher=d))``), the
counters and the histogram are read from it, live, rather than as last saved.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ._histogram import DELIVERY_BUCKETS, read_histogram
from .redact import redact

if TYPE_CHECKING:
    from .dispatcher import Dispatcher
    from .state import MuteKind, NotifierState

__all__ = ["DELIVERY_BUCKETS", "NotifierPanel", "alerts_panel"]

_KINDS = ("agent", "event", "channel")
_COUNTERS = ("sent", "failed", "retried", "dropped", "suppressed", "queued")
_ROW_STATES = ("pending", "failed", "dead")
MAX_MUTE_SECONDS = 366 * 86400.0
"""The longest mute the page accepts (a year; the CLI's ``--until`` for more)."""


class NotifierPanel:
    """The Alerts panel over the state file at ``state_path`` (and, optionally, a
    running ``dispatcher`` of this process).

    Args:
        state_path: the notifier state file (read for the page and the metrics;
            written only by :meth:`mute`/:meth:`unmute`). ``None``: the
            dispatcher's, if it has one.
        channels: channel names whose metrics exist from the first scrape even
            before anything was saved for them (the configured channels).
        dispatcher: a running dispatcher of this process: live counters and
            delivery times (rather than those last saved).
        outbox_rows: outbox rows the page lists at most (the oldest: the next to go).
        clock: epoch seconds (mute expiry, "left").
    """

    def __init__(
        self,
        state_path: str | os.PathLike[str] | None = None,
        *,
        channels: Iterable[str] = (),
        dispatcher: Dispatcher | None = None,
        outbox_rows: int = 50,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if state_path is None and dispatcher is not None and dispatcher.state:
            state_path = dispatcher.state.path
        if state_path is None and dispatcher is None:
            raise ValueError("give a state file or a dispatcher")
        self.path = None if state_path is None else Path(state_path).expanduser()
        self.dispatcher = dispatcher
        self.outbox_rows = outbox_rows
        self.clock = clock
        self._lock = threading.Lock()
        self._state: NotifierState | None = None
        self._channels: dict[str, None] = dict.fromkeys(channels)
        if dispatcher is not None:
            for name in dispatcher.channels:
                self._channels.setdefault(name)

    def __repr__(self) -> str:
        return f"<NotifierPanel {str(self.path)!r}>"

    # ------------------------------------------------------------ the file
    def _opened(self, *, create: bool = False) -> NotifierState | None:
        """The state (opened once, kept); ``None`` while the file does not exist,
        unless ``create`` (a mute makes it, as ``notify mute`` does)."""
        from .state import NotifierState

        with self._lock:
            if (
                self._state is None
                and self.path is not None
                and (create or self.path.exists())
            ):
                self._state = NotifierState(self.path)
            return self._state

    def close(self) -> None:
        """Close the state file (idempotent)."""
        with self._lock:
            state, self._state = self._state, None
        if state is not None:
            state.close()

    # ------------------------------------------------------------ reads
    def alerts(self) -> dict[str, Any]:
        """The page's data (see :class:`pyorchestrate.web.AlertsPanel`)."""
        state = self._opened()
        now = self.clock()
        saved: dict[str, dict[str, Any]] = {}
        counts: dict[str, dict[str, int]] = {}
        rows: list[dict[str, Any]] = []
        mutes: list[dict[str, Any]] = []
        total = 0
        if state is not None:
            saved = state.load_stats()
            counts = state.counts()
            rows = [row.summary() for row in state.rows(limit=self.outbox_rows)]
            mutes = [_mute_data(m, now) for m in state.mutes()]
            total = sum(sum(c.values()) for c in counts.values())
        live = self._live_stats()
        names = self._known(saved, counts, live)
        channels = []
        for name in names:
            stats = dict(saved.get(name, {}))
            stats.update(live.get(name, {}))
            channels.append(
                {
                    "channel": name,
                    **{key: stats.get(key) for key in _COUNTERS},
                    "outbox": {s: counts.get(name, {}).get(s, 0) for s in _ROW_STATES},
                    "last_success": stats.get("last_success"),
                    "last_error": _clean(stats.get("last_error")),
                    "saved_at": stats.get("saved_at"),
                    "running": True
                    if name in live
                    else _process_running(stats.get("host"), stats.get("pid")),
                }
            )
        for row in rows:
            row["last_error"] = _clean(row.get("last_error"))
            row["title"] = _clean(row.get("title"))
        available = state is not None or self.dispatcher is not None
        detail = None
        if state is None and self.path is not None:
            detail = (
                f"no state file at {str(self.path)!r} yet: a dispatcher with this "
                "state_path creates it when it starts"
            )
        return {
            "source": str(self.path) if self.path is not None else "dispatcher",
            "available": available,
            "detail": detail,
            "now": now,
            "channels": channels,
            "outbox": rows,
            "outbox_total": total,
            "mutes": mutes,
        }

    def metrics(self) -> list[dict[str, Any]]:
        """``notify_*`` families; every known channel's label set from the start."""
        state = self._opened()
        saved = state.load_stats() if state is not None else {}
        counts = state.counts() if state is not None else {}
        live = self._live_stats()
        names = self._known(saved, counts, live)

        def stats_of(name: str) -> Mapping[str, Any]:
            return live.get(name) or saved.get(name) or {}

        def value(name: str, key: str) -> float:
            stats = stats_of(name)
            number = stats.get(key)
            return float(number) if isinstance(number, int | float) else 0.0

        def counter(metric: str, key: str, text: str) -> dict[str, Any]:
            return {
                "name": metric,
                "type": "counter",
                "help": text,
                "labels": ["channel"],
                "samples": [{"labels": [n], "value": value(n, key)} for n in names],
            }

        families: list[dict[str, Any]] = [
            counter("notify_sent", "sent", "Alerts delivered, per channel."),
            counter("notify_failed", "failed", "Deliveries that ended undelivered."),
            counter("notify_retries", "retried", "Delivery attempts retried."),
            counter(
                "notify_dropped",
                "dropped",
                "Alerts dropped: the channel's queue was full.",
            ),
            counter("notify_suppressed", "suppressed", "Alerts held back by a mute."),
            {
                "name": "notify_outbox_pending",
                "type": "gauge",
                "help": "Outbox rows waiting for delivery (pending or failed).",
                "labels": ["channel"],
                "samples": [
                    {
                        "labels": [n],
                        "value": float(
                            counts.get(n, {}).get("pending", 0)
                            + counts.get(n, {}).get("failed", 0)
                        ),
                    }
                    for n in names
                ],
            },
            {
                "name": "notify_outbox_dead",
                "type": "gauge",
                "help": "Outbox rows given up on (kept until replayed or purged).",
                "labels": ["channel"],
                "samples": [
                    {"labels": [n], "value": float(counts.get(n, {}).get("dead", 0))}
                    for n in names
                ],
            },
            {
                "name": "notify_mutes",
                "type": "gauge",
                "help": "Mutes in force.",
                "labels": [],
                "samples": [
                    {
                        "labels": [],
                        "value": float(len(state.mutes()))
                        if state is not None
                        else 0.0,
                    }
                ],
            },
            _histogram({name: stats_of(name) for name in names}),
        ]
        return families

    def _live_stats(self) -> dict[str, dict[str, Any]]:
        if self.dispatcher is None:
            return {}
        import dataclasses

        return {
            name: dataclasses.asdict(stats)
            for name, stats in self.dispatcher.stats().items()
        }

    def _known(self, *sources: Mapping[str, Any]) -> list[str]:
        """Every channel seen so far (a label set, once there, stays)."""
        with self._lock:
            for source in sources:
                for name in source:
                    self._channels.setdefault(str(name))
            return sorted(self._channels)

    # ------------------------------------------------------------ mutes
    def mute(
        self,
        kind: str,
        value: str,
        *,
        seconds: float,
        reason: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Mute ``kind`` ``value`` for ``seconds`` (as ``notify mute --for``); who
        did it is kept with the reason.

        Raises:
            ValueError: a bad kind, value or duration (the message names it).
        """
        kind, value = _checked(kind, value)
        if not isinstance(seconds, int | float) or not 0 < seconds <= MAX_MUTE_SECONDS:
            raise ValueError(
                f"seconds: must be more than 0 and at most {MAX_MUTE_SECONDS:.0f}"
            )
        text = (reason or "").strip()[:200]
        if actor:
            text = f"{text} (by {actor})" if text else f"by {actor}"
        state = self._opened(create=True)
        if state is None:
            raise ValueError("state_path: no state file to keep the mute in")
        mute = state.mute(kind, value, duration=float(seconds), reason=text or None)
        return _mute_data(mute, self.clock())

    def unmute(self, kind: str, value: str) -> bool:
        """End a mute (the value exactly as muted); ``False`` if there was none.

        Raises:
            ValueError: a bad kind or value.
        """
        kind, value = _checked(kind, value)
        state = self._opened()
        if state is None:
            return False
        return state.unmute(kind, value)


def _histogram(stats: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``notify_delivery_seconds`` from each channel's stats (0 where none)."""
    samples = []
    for name, values in stats.items():
        buckets, count, total = read_histogram(values)
        samples.append(
            {
                "labels": [name],
                "buckets": [
                    *(
                        [b, float(n)]
                        for b, n in zip(DELIVERY_BUCKETS, buckets, strict=True)
                    ),
                    [float("inf"), float(count)],
                ],
                "sum": total,
            }
        )
    return {
        "name": "notify_delivery_seconds",
        "type": "histogram",
        "help": "Seconds from a delivery's first attempt to its end (retries "
        "included, delivered or not), per channel.",
        "labels": ["channel"],
        "samples": samples,
    }


def alerts_panel(
    *, state_path: str | None = None, config_path: str | None = None
) -> NotifierPanel:
    """The ``alerts`` entry point of ``pyorchestrate.web``: the panel for a state
    file, or for the notifier settings file ``config_path`` (its ``state_path``
    and channels; the settings' secrets are masked in what the page shows).

    Raises:
        ValueError: the settings are wrong, or keep no state file (the message
            names the setting, never a value).
    """
    channels: list[str] = []
    if config_path is not None:
        from .settings import load_settings

        settings = load_settings(config_path)  # NotifierConfigError is a ValueError
        settings.register_secrets()
        channels = settings.configured()
        if state_path is None:
            if settings.state_path is None:
                raise ValueError(
                    "the notifier settings keep no state file (state_path = none): "
                    "nothing to show; name one with --notify-state"
                )
            state_path = str(settings.state_path)
    if state_path is None:
        raise ValueError("give a state file or a notifier settings file")
    return NotifierPanel(state_path, channels=channels)


# ------------------------------------------------------------------ helpers


def _checked(kind: str, value: str) -> tuple[MuteKind, str]:
    if kind not in _KINDS:
        raise ValueError(f"kind: must be one of {', '.join(_KINDS)}")
    if not isinstance(value, str) or not value.strip():
        raise ValueError("value: must not be empty")
    if len(value) > 200:
        raise ValueError("value: at most 200 characters")
    return cast("MuteKind", kind), value.strip()


def _clean(text: object) -> str | None:
    """A stored text, masked again with the secrets known here (a second net)."""
    return None if text is None else redact(text)


def _mute_data(mute: Any, now: float) -> dict[str, Any]:
    return {
        "kind": mute.kind,
        "value": mute.value,
        "until": mute.until,
        "left": None if mute.until is None else max(0.0, mute.until - now),
        "created": mute.created,
        "reason": _clean(mute.reason),
    }


def _process_running(host: object, pid: object) -> bool | None:
    """Whether the process that saved the counters runs (``None``: cannot tell)."""
    if host != socket.gethostname() or not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return None
    return True
