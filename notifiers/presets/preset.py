"""Preset: which events become notifications, from what severity on; the built-ins."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pyorchestrate import OrchestratorEvent

from ..base import Severity
from ..templates import Template
from .events import _event

__all__ = ["PRESETS", "Preset"]


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
        events = tuple(dict.fromkeys(_event(e) for e in self.events))
        if not events:
            raise ValueError(f"preset {self.name!r} has no events")
        object.__setattr__(self, "events", events)
        object.__setattr__(self, "min_severity", Severity.parse(self.min_severity))
        object.__setattr__(self, "templates", MappingProxyType(dict(self.templates)))


PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        "errors_only": Preset(
            "errors_only",
            (OrchestratorEvent.AGENT_ERROR, OrchestratorEvent.AGENT_FATAL),
            description="one alert when an agent fails, one when it is given up (FATAL)",
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
            ),
            description="agents starting, ready, terminated, failing, restarting, FATAL",
        ),
    }
)
"""The built-in presets by name."""
