"""Escalation chains (``fallbacks``), checked when a dispatcher is built."""

from __future__ import annotations

__all__ = ["check_fallbacks"]


def check_fallbacks(fallbacks: dict[str, str], channels: list[str]) -> dict[str, str]:
    """Validate escalation chains: known channels, one fallback each, no loop."""
    for name, fallback in fallbacks.items():
        for what in (name, fallback):
            if what not in channels:
                raise ValueError(
                    f"fallbacks: no channel named {what!r} "
                    f"(channels: {', '.join(channels)})"
                )
    targets = list(fallbacks.values())
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        raise ValueError(
            f"fallbacks: {', '.join(twice)} is the fallback of two channels"
        )
    for start in fallbacks:
        seen = [start]
        current = start
        while current in fallbacks:
            current = fallbacks[current]
            if current in seen:
                raise ValueError("fallbacks: a loop: " + " -> ".join([*seen, current]))
            seen.append(current)
    return fallbacks
