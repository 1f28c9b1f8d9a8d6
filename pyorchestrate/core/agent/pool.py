"""The old home of ``PoolAgent``, which now lives in :mod:`pyorchestrate.core.pool`
(above the orchestrator it uses). Importing from here still works: the names load
on first use, so ``core.agent`` never imports the orchestrator."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import lazy_exports

if TYPE_CHECKING:
    from ..pool import PoolAgent, PoolAgentConfig

__getattr__, __dir__ = lazy_exports(
    __name__, dict.fromkeys(("PoolAgent", "PoolAgentConfig"), "pyorchestrate.core.pool")
)

__all__ = ["PoolAgent", "PoolAgentConfig"]
