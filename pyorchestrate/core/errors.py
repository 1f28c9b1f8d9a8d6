"""The error tree of the orchestrator core.

::

    PyOrchestrateError
    ├── ConfigError(…, ValueError)          .errors [(loc, msg)]; message names fields
    │   └── ConfigValidationError           a Config's own check() found problems
    ├── RegistrationError(…, ValueError)    not an agent, duplicate name, unknown agent
    │   └── DependencyError                 unknown dependency; cycle (names it)
    ├── LifecycleError(…, RuntimeError)     illegal transition; already started; closed
    └── AgentError                          raised inside agents' loops
        ├── RecoverableException            the loop logs it and goes on
        └── NonRecoverableException         the loop ends cleanly (no AGENT_ERROR)
    TerminateAgent(BaseException)           control-flow signal (SIGTERM in a process agent)

``RegistrationError`` is a ``ValueError`` and ``LifecycleError`` a ``RuntimeError`` so
that code written against the original library (which raised the builtins) keeps working.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AgentError",
    "ConfigError",
    "ConfigValidationError",
    "DependencyError",
    "LifecycleError",
    "NonRecoverableException",
    "PyOrchestrateError",
    "RecoverableException",
    "RegistrationError",
    "TerminateAgent",
]


class PyOrchestrateError(Exception):
    """Base of every error raised by pyorchestrate."""


class ConfigError(PyOrchestrateError, ValueError):
    """A configuration value is invalid.

    The message has one ``dotted.path: reason`` line per problem; ``errors`` keeps the
    same as a list of ``(path, reason)`` pairs.
    """

    def __init__(self, title: str, errors: Sequence[tuple[str, str]]) -> None:
        self.title = title
        self.errors: list[tuple[str, str]] = list(errors)
        lines = [f"{loc}: {msg}" if loc else msg for loc, msg in self.errors]
        super().__init__("\n".join([title, *("  " + line for line in lines)]))

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.title, self.errors))


class ConfigValidationError(ConfigError):
    """A config's own ``check()`` rules returned problems the policy does not allow."""


class RegistrationError(PyOrchestrateError, ValueError):
    """An agent cannot be registered or is not known."""


class DependencyError(RegistrationError):
    """A dependency names an unknown agent, or the dependencies form a cycle."""


class LifecycleError(PyOrchestrateError, RuntimeError):
    """An operation is not allowed in the current state (e.g. ``start()`` twice)."""


class AgentError(PyOrchestrateError):
    """Base of the exceptions agents raise to steer their own loop."""


class RecoverableException(AgentError):
    """Raised in a cycle: logged, and the loop continues with the next cycle."""


class NonRecoverableException(AgentError):
    """Raised in a cycle: the loop ends cleanly, without an AGENT_ERROR."""


class TerminateAgent(BaseException):
    """Raised in a process agent's main thread when it receives SIGTERM.

    It is a ``BaseException`` so user code's ``except Exception`` does not swallow it;
    ``run()``'s ``finally`` still closes the agent and reports it.
    """
