"""attach_from_settings(): the channels, preset and rules that the settings name."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..dispatcher import ResultHook
from ..errors import NotifierConfigError
from ..pipeline.events import AGENT_RECOVERED
from ._attach import attach
from .attachment import Attachment
from .events import SupportsRegisterEvent

if TYPE_CHECKING:
    from ..base import Notifier
    from ..settings import NotifierSettings

__all__ = ["attach_from_settings"]


def _escalation_chain(
    section: str,
    channel: str,
    chain: list[str],
    fallbacks: dict[str, str],
    notifiers: list[Notifier],
) -> dict[str, str]:
    """``escalate_to`` as links of the dispatcher's fallback chains: the channel's
    fallback is the chain's first, each one's the next (an unacknowledged alert and
    an undelivered one go the same way)."""
    known = {n.name for n in notifiers}
    field = f"{section}.escalate_to"
    for name in chain:
        if name not in known or name == channel:
            raise NotifierConfigError(
                "invalid notifier settings",
                [
                    (
                        field,
                        f"no other channel named {name!r} ({', '.join(sorted(known))})",
                    )
                ],
            )
    links = dict(zip([channel, *chain[:-1]], chain, strict=True))
    for source, target in links.items():
        if fallbacks.get(source, target) != target:
            raise NotifierConfigError(
                "invalid notifier settings",
                [
                    (
                        field,
                        f"{source}'s fallback is {fallbacks[source]!r}, not {target!r}",
                    )
                ],
            )
    return links


def attach_from_settings(
    orchestrator: SupportsRegisterEvent,
    settings: NotifierSettings | None = None,
    *,
    on_result: Iterable[ResultHook] = (),
) -> Attachment:
    """Attach the channels, preset, agents and severity that ``settings`` name.

    ``settings`` defaults to :func:`~notifiers.settings.load_settings` (environment and
    ``PYORCHESTRATE_NOTIFY_CONFIG_FILE``).

    Raises:
        NotifierConfigError: settings missing or malformed (names the field).
    """
    from ..settings import build_notifiers, load_settings

    if settings is None:
        settings = load_settings()
    notifiers = build_notifiers(settings)
    fallbacks: dict[str, str] = {}
    for section, notifier in zip(settings.configured(), notifiers, strict=True):
        wanted = getattr(settings, section).fallback
        if wanted is not None:
            if wanted not in {n.name for n in notifiers}:
                known = ", ".join(n.name for n in notifiers)
                raise NotifierConfigError(
                    "invalid notifier settings",
                    [(f"{section}.fallback", f"no channel named {wanted!r} ({known})")],
                )
            fallbacks[notifier.name] = wanted
        chain = getattr(getattr(settings, section), "escalate_to", None)
        if chain:
            fallbacks.update(
                _escalation_chain(section, notifier.name, chain, fallbacks, notifiers)
            )
    rules = settings.rules
    wants = {
        n.name: getattr(settings, section).recovery
        for section, n in zip(settings.configured(), notifiers, strict=True)
    }
    if any(wants.values()) and not rules.recovery:
        rules = rules.model_copy(update={"recovery": True})
    if rules.recovery:  # per channel: opted out, or not opted in while others are
        for notifier in notifiers:
            choice = wants[notifier.name]
            if choice is False or (choice is None and not settings.rules.recovery):
                notifier.skip_events = frozenset({AGENT_RECOVERED})
    state = settings.open_state()
    try:
        return attach(
            orchestrator,
            settings.preset,
            *notifiers,
            fallbacks=fallbacks,
            agents=settings.agents,
            min_severity=settings.min_severity,
            policy=settings.retry,
            queue_size=settings.queue_size,
            on_result=on_result,
            rules=rules,
            state=state,
            rate_limits=settings.rate_limiting,
        )
    except BaseException:
        if state is not None:  # attach() refused: nothing owns the state file yet
            state.close()
        raise
