"""Panels other packages add to the dashboard: the Alerts page and its metrics.

The core never imports :mod:`notifiers` (the notifier layer is an optional part), so
the dashboard does not either: a package that wants an Alerts page registers a
factory in the ``pyorchestrate.web`` entry-point group under the name ``alerts``
(``notifiers`` registers ``notifiers.web_panel:alerts_panel``). The dashboard calls it
only when a notifier state file or settings file is configured
(``--notify-state``/``--notify-config``), and talks to what it returns through
:class:`AlertsPanel`: plain data in, plain data out.

Metric families are plain data too (:data:`MetricFamilyData`); :class:`PanelCollector`
turns them into ``prometheus_client`` families at each scrape.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ..core.errors import ConfigError

__all__ = [
    "PANEL_GROUP",
    "AlertsPanel",
    "MetricFamilyData",
    "PanelCollector",
    "load_alerts_panel",
]

logger = logging.getLogger(__name__)

_TITLE = "invalid WebConfig"

PANEL_GROUP = "pyorchestrate.web"
"""The entry-point group of the dashboard's panels (``alerts``: the Alerts page)."""

MetricFamilyData = Mapping[str, Any]
"""One metric family as plain data::

    {"name": "notify_sent", "type": "counter" | "gauge" | "histogram",
     "help": "...", "labels": ["channel"],
     "samples": [{"labels": ["telegram"], "value": 3.0}]}

A counter's ``name`` has no ``_total`` (Prometheus adds it). A histogram's samples
are ``{"labels": [...], "buckets": [[upper bound, cumulative count], ...],
"sum": seconds}`` with the ``+Inf`` bucket last."""


@runtime_checkable
class AlertsPanel(Protocol):
    """What the dashboard needs of an Alerts provider (``notifiers.web_panel``).

    Every method blocks (a file, a database): the dashboard calls them on a worker
    thread. Texts it returns are shown as text (escaped) and must hold no secret.
    """

    def alerts(self) -> Mapping[str, Any]:
        """The page's data::

        {"source": "<where it reads from>", "available": bool,
         "detail": "why not available" | None,
         "channels": [{"channel", "sent", "failed", "retried", "dropped",
                       "suppressed", "queued", "outbox": {"pending", "failed",
                       "dead"}, "last_success", "last_error", "running"}],
         "outbox": [{"id", "channel", "state", "attempts", "error_class",
                     "last_error", "created", "updated", "title", "severity",
                     "agent", "event"}],
         "mutes": [{"kind", "value", "until", "left", "created", "reason"}]}
        """
        ...

    def metrics(self) -> Sequence[MetricFamilyData]:
        """The metric families to add to ``/metrics``, every label set included
        from the first scrape."""
        ...

    def mute(
        self,
        kind: str,
        value: str,
        *,
        seconds: float,
        reason: str | None = None,
        actor: str | None = None,
    ) -> Mapping[str, Any]:
        """Mute ``kind`` (``agent``, ``event``, ``channel``) ``value`` for ``seconds``;
        the mute as :meth:`alerts` lists it.

        Raises:
            ValueError: a bad kind, value or duration (the message names it).
        """
        ...

    def unmute(self, kind: str, value: str) -> bool:
        """End a mute; ``False`` if there was none."""
        ...

    def close(self) -> None:
        """Release what it holds (idempotent)."""
        ...


def load_alerts_panel(
    state_path: str | None, config_path: str | None
) -> AlertsPanel | None:
    """The Alerts panel for a notifier state file or settings file, from the
    ``alerts`` entry point of :data:`PANEL_GROUP`; ``None`` when neither is given.

    Raises:
        ConfigError: no package provides the panel, or it refuses the settings
            (the message names the setting).
    """
    if state_path is None and config_path is None:
        return None
    from importlib.metadata import entry_points

    found = [
        entry for entry in entry_points(group=PANEL_GROUP) if entry.name == "alerts"
    ]
    field = "notify_state" if state_path is not None else "notify_config"
    if not found:
        raise ConfigError(
            _TITLE,
            [
                (
                    field,
                    "the Alerts page needs the notifier package's panel (the 'alerts' "
                    f"entry point of {PANEL_GROUP!r}): pip install "
                    "'pyorchestrate[notify,web]'",
                )
            ],
        )
    try:
        factory = found[0].load()
    except ImportError as exc:
        raise ConfigError(
            _TITLE,
            [
                (
                    field,
                    f"the Alerts page cannot load {found[0].value} ({exc}): pip "
                    "install 'pyorchestrate[notify,web]'",
                )
            ],
        ) from None
    try:
        panel = factory(state_path=state_path, config_path=config_path)
    except (ValueError, OSError) as exc:
        raise ConfigError(_TITLE, [(field, str(exc))]) from None
    if not isinstance(panel, AlertsPanel):
        raise ConfigError(
            _TITLE,
            [
                (
                    field,
                    f"{found[0].value} returned {type(panel).__name__}, not an "
                    "AlertsPanel",
                )
            ],
        )
    return panel


class PanelCollector(Collector):
    """A panel's metric families at each scrape (blocking: the registry is
    rendered on a worker thread). A panel that fails is logged and leaves its
    families out of that scrape (``pyorchestrate_web_panel_up`` says 0)."""

    def __init__(self, panel: AlertsPanel) -> None:
        self.panel = panel

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "pyorchestrate_web_panel_up",
            "1 when the alerts panel answered this scrape, else 0.",
            labels=["panel"],
        )
        try:
            families = [_family(data) for data in self.panel.metrics()]
        except Exception:  # a panel's bug or a broken file: visible, never a 500
            logger.exception("the alerts panel failed to give its metrics")
            up.add_metric(["alerts"], 0)
            yield up
            return
        up.add_metric(["alerts"], 1)
        yield up
        yield from families


def _family(data: MetricFamilyData) -> Metric:
    name = str(data["name"])
    kind = data.get("type")
    documentation = str(data.get("help") or name)
    labels = [str(label) for label in data.get("labels") or []]
    family: CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily
    if kind == "counter":
        family = CounterMetricFamily(name, documentation, labels=labels)
    elif kind == "gauge":
        family = GaugeMetricFamily(name, documentation, labels=labels)
    elif kind == "histogram":
        family = HistogramMetricFamily(name, documentation, labels=labels)
        for sample in data.get("samples") or []:
            buckets = [
                ("+Inf" if math.isinf(float(le)) else repr(float(le)), float(count))
                for le, count in sample["buckets"]
            ]
            family.add_metric(
                [str(v) for v in sample["labels"]], buckets, float(sample["sum"])
            )
        return family
    else:
        raise ValueError(f"metric {name!r}: unknown type {kind!r}")
    for sample in data.get("samples") or []:
        family.add_metric([str(v) for v in sample["labels"]], float(sample["value"]))
    return family
