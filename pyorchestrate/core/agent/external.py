"""A job that runs outside the orchestrator and reports by ``pyorchestrate ping``.

``register_agent(ExternalJob, "nightly-dump", schedule=Schedule(cron="0 2 * * *",
grace="30m"))`` declares a job the orchestrator never starts (a crontab entry, a CI
job, a script on another host). It is expected to ping once per due run::

    pyorchestrate ping nightly-dump          # it ran and succeeded
    pyorchestrate ping nightly-dump --fail   # it ran and failed: AGENT_ERROR

A due run with no ping by ``grace`` after its due time raises AGENT_MISSED: the dead
man's switch of Healthchecks.io, here on the orchestrator's Unix socket.
"""

from __future__ import annotations

from ..errors import LifecycleError
from .base import BaseAgent
from .flavours import ThreadFlavour

__all__ = ["ExternalJob"]


class ExternalJob(ThreadFlavour, BaseAgent):
    """A scheduled job run elsewhere; the orchestrator only expects its pings.

    It is never started: ``start_agent`` refuses it, and ``register_agent`` requires
    a ``schedule``.
    """

    def execute(self) -> None:
        """Never called: an external job is not started by the orchestrator."""
        raise LifecycleError(
            f"external job {self.name!r} runs outside the orchestrator"
        )
