"""Plugins: objects with ``initialize()``/``finalize()`` that live as long as an agent run.

Declare them as attributes of an agent's nested ``Plugin`` container (or pass them as
keyword arguments to it). ``run()`` initializes them after the config is validated and
before ``setup()``, and finalizes them after ``on_close()``, even when the agent failed.
A plugin's exception is logged and never stops the agent or the other plugins.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Protocol, runtime_checkable

__all__ = ["AgentPlugin", "PluginManager", "PluginProtocol"]

logger = logging.getLogger(__name__)


@runtime_checkable
class PluginProtocol(Protocol):
    """What a plugin provides. ``set_owner(owner)`` is optional."""

    def initialize(self) -> None: ...

    def finalize(self) -> None: ...


class AgentPlugin:
    """A container of plugins: class attributes, overridden by keyword arguments."""

    def __init__(self, **plugins: Any) -> None:
        for name, value in plugins.items():
            setattr(self, name, value)

    def items(self) -> list[tuple[str, PluginProtocol]]:
        """Return ``(name, plugin)`` pairs: class attributes first, then instance ones."""
        found: dict[str, PluginProtocol] = {}
        sources: list[dict[str, Any]] = [
            dict(vars(klass)) for klass in reversed(type(self).__mro__[:-1])
        ]
        sources.append(dict(vars(self)))
        for source in sources:
            for name, value in source.items():
                if name.startswith("_") or value is None:
                    continue
                if inspect.isroutine(value) or inspect.isclass(value):
                    continue
                if isinstance(value, PluginProtocol):
                    found[name] = value
        return list(found.items())


class PluginManager:
    """Initializes and finalizes the plugins of one container, logging their errors."""

    def __init__(self, container: AgentPlugin, owner: object) -> None:
        self._plugins = container.items()
        self._owner = owner
        self._initialized: list[tuple[str, PluginProtocol]] = []

    def get_plugin(self, name: str) -> PluginProtocol | None:
        """Return the plugin called ``name``, or ``None``."""
        return dict(self._plugins).get(name)

    def initialize(self) -> None:
        """Set each plugin's owner, then initialize it; log and skip failures."""
        for name, plugin in self._plugins:
            try:
                set_owner = getattr(plugin, "set_owner", None)
                if callable(set_owner):
                    set_owner(self._owner)
                plugin.initialize()
            except Exception:
                logger.exception("plugin %r failed to initialize", name)
            else:
                self._initialized.append((name, plugin))

    def finalize(self) -> None:
        """Finalize every plugin (initialized or not), in reverse order; log failures."""
        for name, plugin in reversed(self._plugins):
            try:
                plugin.finalize()
            except Exception:
                logger.exception("plugin %r failed to finalize", name)
        self._initialized.clear()
