"""attach()'s arguments checked: preset, events, severity, templates, rules."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from pyorchestrate import OrchestratorEvent

from .._presets import PRESETS, Preset, as_event
from ..base import Severity
from ..errors import NotifierConfigError
from ..pipeline import AlertPipeline, PipelineConfig
from ..templates import PIPELINE_TEMPLATES, Template, render, render_alert

__all__ = [
    "Rules",
    "build_pipeline",
    "check_templates",
    "narrow",
    "resolve_min_severity",
    "resolve_preset",
]

Rules = PipelineConfig | Mapping[str, Any] | AlertPipeline | bool | None
"""What ``attach(rules=...)`` takes: a config, a mapping of its fields, a ready
pipeline, ``None``/``True`` for the defaults, or ``False`` for no rules at all."""


def resolve_preset(preset: str | Preset) -> Preset:
    if isinstance(preset, Preset):
        return preset
    try:
        return PRESETS[preset]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise NotifierConfigError(
            "invalid attach() arguments",
            [("preset", f"unknown preset {preset!r}; use one of {known}")],
        ) from None


def narrow(preset: Preset, events: Iterable[OrchestratorEvent | str]) -> Preset:
    try:
        wanted = [as_event(e) for e in events]
    except ValueError as exc:
        raise NotifierConfigError(
            "invalid attach() arguments", [("events", str(exc))]
        ) from None
    outside = [e.value for e in wanted if e not in preset.events]
    if outside or not wanted:
        reason = (
            f"{', '.join(outside)} not in preset {preset.name!r} "
            f"({', '.join(e.value for e in preset.events)})"
            if outside
            else "needs at least one event"
        )
        raise NotifierConfigError("invalid attach() arguments", [("events", reason)])
    return dataclasses.replace(preset, events=tuple(wanted))


def resolve_min_severity(
    preset: Preset, value: Severity | str | int | None
) -> Severity:
    if value is None:
        return preset.min_severity
    try:
        return Severity.parse(value)
    except ValueError as exc:
        raise NotifierConfigError(
            "invalid attach() arguments", [("min_severity", str(exc))]
        ) from None


def check_templates(preset: Preset, templates: Mapping[str, Template]) -> None:
    """Render each event once now, so a broken template fails here, not per event."""
    errors = []
    for event in preset.events:
        try:
            render({"event": event, "agent_name": "agent"}, templates)
        except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
            errors.append((f"templates.{event.value}", f"cannot render: {exc}"))
    for kind in PIPELINE_TEMPLATES.keys() & templates.keys():
        try:
            render_alert(kind, _SAMPLE_FIELDS, templates)
        except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
            errors.append((f"templates.{kind}", f"cannot render: {exc}"))
    if errors:
        raise NotifierConfigError("invalid attach() arguments", errors)


_SAMPLE_FIELDS: Mapping[str, Any] = MappingProxyType(
    {
        "agent": "agent",
        "event": "agent_error",
        "count": 2,
        "hidden": 1,
        "span": "1 s",
        "window": "60 s",
        "first": "00:00:00",
        "last_time": "00:00:01",
        "first_sent": "",
        "last": "ValueError: x",
        "duration": "1 s",
        "since": "00:00",
        "up_at": "00:00:01",
        "errors": 1,
        "restarts": 1,
        "stable_after": "30 s",
        "outcome": "stable for 30 s",
        "lines": "",
        "shown": 0,
        "more": 0,
        "state": "flapping",
    }
)


def build_pipeline(
    rules: Rules,
    muted: Callable[[str | None, str | None], bool] | None,
    templates: Mapping[str, Template],
) -> AlertPipeline | None:
    if rules is False:
        if muted is not None:
            raise TypeError("muted= needs the alert rules; not with rules=False")
        return None
    if isinstance(rules, AlertPipeline):
        if muted is not None:
            raise TypeError("give muted= to the AlertPipeline, not to attach()")
        return rules
    config = PipelineConfig.parse(None if rules is True else rules)
    return AlertPipeline(config, muted=muted, templates=templates)
