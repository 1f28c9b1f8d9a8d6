"""Preset: which events become notifications, from what severity on; the built-ins.

The table sits below ``notifiers.settings`` (which checks a preset's name against it),
outside the ``presets`` package whose ``attach_from_settings`` reads the settings:
``notifiers.presets.Preset``/``PRESETS`` and ``notifiers.presets.preset`` re-export it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pyorchestrate import OrchestratorEvent

from .base import Severity
from .templates import Template

__all__ = ["PRESETS", "Preset", "as_event"]


def as_event(value: object) -> OrchestratorEvent:
    """An :class:`~pyorchestrate.OrchestratorEvent` from itself or its value
    (``"agent_error"``, any case).

    Raises:
        ValueError: not an orchestrator event; the message lists the known ones.
    """
    if isinstance(value, OrchestratorEvent):
        return value
    if isinstance(value, str):
        try:
            return OrchestratorEvent(value.lower())
        except ValueError:
            pass
    known = ", ".join(e.value for e in OrchestratorEvent)
    raise ValueError(f"not an orchestrator event: {value!r} (known: {known})")


@dataclass(frozen=True, slots=True)
class Preset:
    """Which events become notifications, from what severity on, with which templates.

    Args:
        name: the preset's name.
        events: the :class:`~pyorchestrate.OrchestratorEvent` members to send.
        min_severity: notifications below it are not sent.
        templates: templates by event value, over
            :data:`~notifiers.templates.DEFAULT_TEMPLATES`.
        description: one line for docs and ``--help``.
    """

    name: str
    events: tuple[OrchestratorEvent, ...]
    min_severity: Severity = Severity.DEBUG
    templates: Mapping[str, Template] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    description: str = ""

    def __post_init__(self) -> None:
        events = tuple(dict.fromkeys(as_event(e) for e in self.events))
        if not events:
            raise ValueError(f"preset {self.name!r} has no events")
        object.__setattr__(self, "events", events)
        object.__setattr__(self, "min_severity", Severity.parse(self.min_severity))
        object.__setattr__(self, "templates", MappingProxyType(dict(self.templates)))


PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        "errors_only": Preset(
            "errors_only",
            (
                OrchestratorEvent.AGENT_ERROR,
                OrchestratorEvent.AGENT_FATAL,
                OrchestratorEvent.AGENT_MISSED,
            ),
            description="one alert when an agent fails, one when it is given up "
            "(FATAL), one when a scheduled run is missed",
        ),
        "lifecycle": Preset(
            "lifecycle",
            (
                OrchestratorEvent.AGENT_STARTED,
                OrchestratorEvent.AGENT_READY,
                OrchestratorEvent.AGENT_TERMINATED,
                OrchestratorEvent.AGENT_ERROR,
                OrchestratorEvent.AGENT_RESTARTING,
                OrchestratorEvent.AGENT_FATAL,
                OrchestratorEvent.AGENT_MISSED,
                OrchestratorEvent.AGENT_LATE,
            ),
            description="agents starting, ready, terminated, failing, restarting, "
            "FATAL; scheduled runs missed or late",
        ),
    }
)
"""The built-in presets by name."""
