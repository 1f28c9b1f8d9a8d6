"""How a run ended, as a process exit code a script, cron, systemd or CI can act on.

:meth:`Orchestrator.outcome() <pyorchestrate.Orchestrator.outcome>` builds a
:class:`RunOutcome` from the agents' final states after :meth:`~Orchestrator.join`;
``sys.exit(orchestrator.exit_code)`` ends a script with its code:

===  ==========================================================================
0    every agent succeeded (or was stopped by the operator or the shutdown)
1    some agent failed: FATAL, FAILED (refused or died before START, dependency
     failed), ended by an error its restart policy did not retry, or would not stop
2    bad configuration: an agent failed its configuration check
130  interrupted by SIGINT (Ctrl-C)
143  interrupted by SIGTERM
===  ==========================================================================

A signal wins over agent failures: the run did not get to finish.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["AgentFailure", "ExitCode", "RunOutcome"]


class ExitCode(enum.IntEnum):
    """The process exit codes of a run (see the module docstring)."""

    OK = 0
    FAILED = 1
    CONFIG = 2
    SIGINT = 130
    SIGTERM = 143


@dataclass(frozen=True)
class AgentFailure:
    """One agent that failed: its name, final state, why, and its last error."""

    name: str
    state: str
    reason: str
    error: str | None = None

    def __str__(self) -> str:
        text = f"{self.name} ({self.state}, {self.reason})"
        return f"{text}: {self.error}" if self.error else text


@dataclass(frozen=True)
class RunOutcome:
    """A run's result: ``ok``, the ``exit_code``, and the agents that failed."""

    exit_code: ExitCode
    failed: tuple[AgentFailure, ...] = ()
    survivors: tuple[str, ...] = ()
    signal: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the run succeeded (``exit_code`` 0)."""
        return self.exit_code is ExitCode.OK

    def __str__(self) -> str:
        if self.ok:
            return "ok"
        parts = [f"exit code {int(self.exit_code)}"]
        if self.signal:
            parts.append(f"interrupted by {self.signal}")
        parts.extend(f"failed: {failure}" for failure in self.failed)
        parts.extend(f"did not stop: {name}" for name in self.survivors)
        return "; ".join(parts)
