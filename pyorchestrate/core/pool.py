"""An agent that runs a group of agents under an inner orchestrator of its own.

It sits above the orchestrator: a pool agent *uses* an ``Orchestrator`` for its
children, so it lives here rather than in ``core.agent``, which the orchestrator
imports. ``pyorchestrate.core.agent`` (and ``pyorchestrate``) still export these names,
loaded on first use.
"""

from __future__ import annotations

from typing import Any, ClassVar, final

from pydantic import Field

from .agent.base import AgentConfig
from .agent.flavours import ProcessFlavour, ThreadFlavour
from .agent.periodic import PeriodicAgent, PeriodicConfig
from .config import ValidationResult, ValidationSeverity
from .orchestrator.config import OrchestratorConfig
from .orchestrator.orchestrator import Orchestrator

__all__ = ["PoolAgent", "PoolAgentConfig", "PoolProcessAgent", "PoolThreadAgent"]


class PoolAgentConfig(PeriodicConfig):
    """The children (``agents_entry``: a list of ``AgentSpec``) and the inner config.

    ``execution_interval`` is how often the pool checks on its children.
    """

    execution_interval: float = Field(default=0.1, gt=0, strict=True)
    agents_entry: list[Any] = Field(default_factory=list)
    orchestrator_config: Any = None

    def check(self) -> list[ValidationResult]:
        """Warn when the pool has no children."""
        results = super().check()
        if not self.agents_entry:
            results.append(
                ValidationResult(
                    field="agents_entry",
                    message="the pool has no agents",
                    severity=ValidationSeverity.WARNING,
                )
            )
        return results


class PoolAgent(PeriodicAgent):
    """Starts its children under an inner orchestrator and stops when they have all ended.

    The inner orchestrator never opens a command interface unless its config asks for
    one. ``on_close`` shuts it down, so stopping the pool stops its children.
    """

    Config: ClassVar[type[AgentConfig]] = PoolAgentConfig
    config: PoolAgentConfig

    _inner: Orchestrator | None = None

    def setup(self) -> None:
        """Build the inner orchestrator, register the children and start them."""
        inner_config = self.config.orchestrator_config
        if inner_config is None:
            inner_config = OrchestratorConfig(enable_command_interface=False)
        inner = Orchestrator(f"{self.name}.pool", inner_config)
        self._inner = inner
        for spec in self.config.agents_entry:
            inner.register_spec(spec)
        super().setup()
        inner.start()

    @property
    def orchestrator(self) -> Orchestrator:
        """The inner orchestrator; raises ``RuntimeError`` before ``setup()``."""
        if self._inner is None:
            raise RuntimeError(f"agent {self.name!r}: the pool is built in setup()")
        return self._inner

    @final
    def runner(self) -> None:
        """``pre_runner``, then stop if every child is done, else ``post_runner``."""
        self.pre_runner()
        if self.orchestrator.is_finished():
            self.stop()
        else:
            self.post_runner()

    def pre_runner(self) -> None:
        """Hook run before each check."""

    def post_runner(self) -> None:
        """Hook run after a check that found children still running."""

    def on_close(self) -> None:
        """Shut the inner orchestrator (and so every child) down."""
        if self._inner is not None:
            self._inner.shutdown()


class PoolThreadAgent(ThreadFlavour, PoolAgent):
    """A pool of agents supervised from a thread."""


class PoolProcessAgent(ProcessFlavour, PoolAgent):
    """A pool of agents supervised from a process of its own."""
