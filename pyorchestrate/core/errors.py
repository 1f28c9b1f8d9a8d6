"""The error tree of the orchestrator core.

::

    PyOrchestrateError
    ├── ConfigError(…, ValueError)          .errors [(loc, msg)]; message names fields
    │   └── ConfigValidationError           a Config's own check() found problems
    ├── RegistrationError(…, ValueError)    not an agent, duplicate name, unknown agent
    │   └── DependencyError                 unknown dependency; cycle (names it)
    ├── LifecycleError(…, RuntimeError)     illegal transition; already started; closed
    ├── AgentError                          raised inside agents' loops
    │   ├── RecoverableException            the loop logs it and goes on
    │   └── NonRecoverableException         the loop ends cleanly (no AGENT_ERROR)
    └── ControlError                        .code → the reply's code (wire errors)
        ├── ProtocolError        400        malformed request (JSON, shape, size)
        ├── UnknownCommand       400        no such command, or missing arguments
        ├── CommandForbidden     403        not in allowed_commands
        ├── AgentNotFound        404        no agent of that name
        ├── Conflict             409        e.g. start of an agent that is running
        ├── CommandFailed        500        the command raised, or ran out of time
        ├── ControlUnavailable(…, ConnectionError)  nothing answers on the socket
        └── ControlTimeout(…, TimeoutError)         no reply within the deadline
    TerminateAgent(BaseException)           control-flow signal (SIGTERM in a process agent)

``RegistrationError`` is a ``ValueError`` and ``LifecycleError`` a ``RuntimeError`` so
that code written against the original library (which raised the builtins) keeps working.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

__all__ = [
    "AgentError",
    "AgentNotFound",
    "CommandFailed",
    "CommandForbidden",
    "ConfigError",
    "ConfigValidationError",
    "Conflict",
    "ControlError",
    "ControlTimeout",
    "ControlUnavailable",
    "DependencyError",
    "LifecycleError",
    "NonRecoverableException",
    "ProtocolError",
    "PyOrchestrateError",
    "RecoverableException",
    "RegistrationError",
    "TerminateAgent",
    "UnknownCommand",
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


class ControlError(PyOrchestrateError):
    """An error of the command channel; ``code`` is what the reply carries."""

    code: ClassVar[int] = 500

    def __init__(self, message: str, *, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data or {}

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_control_error, (type(self), self.message, self.data))


def _rebuild_control_error(
    cls: type[ControlError], message: str, data: dict[str, Any]
) -> ControlError:
    return cls(message, data=data)


class ProtocolError(ControlError):
    """The request is not valid JSON, has the wrong shape, or is too large."""

    code = 400


class UnknownCommand(ControlError):
    """No such command, or it lacks its arguments."""

    code = 400


class CommandForbidden(ControlError):
    """The command exists but this orchestrator does not allow it."""

    code = 403


class AgentNotFound(ControlError):
    """The command names an agent that is not registered."""

    code = 404


class Conflict(ControlError):
    """The command cannot run in the agent's current state."""

    code = 409


class CommandFailed(ControlError):
    """The command raised an unexpected error or did not finish in time."""

    code = 500


class ControlUnavailable(ControlError, ConnectionError):
    """Nothing answers on the socket (no orchestrator, or its interface is off)."""

    code = 503


class ControlTimeout(ControlError, TimeoutError):
    """The orchestrator did not reply within the client's timeout."""

    code = 504


class TerminateAgent(BaseException):
    """Raised in a process agent's main thread when it receives SIGTERM.

    It is a ``BaseException`` so user code's ``except Exception`` does not swallow it;
    ``run()``'s ``finally`` still closes the agent and reports it.
    """
