"""The orchestrator core: agents, the orchestrator, events and configuration.

No ``NullHandler`` on the ``pyorchestrate`` logger: with no logging configured,
WARNING and ERROR records (an agent's failure with its traceback, a restart, a
signal) reach stderr through Python's last-resort handler; once the application
configures logging, its handlers get them instead.
"""

from __future__ import annotations

__all__: list[str] = []
