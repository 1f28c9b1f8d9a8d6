"""The orchestrator core: agents, the orchestrator, events and configuration."""

from __future__ import annotations

import logging

logging.getLogger("pyorchestrate").addHandler(logging.NullHandler())

__all__: list[str] = []
