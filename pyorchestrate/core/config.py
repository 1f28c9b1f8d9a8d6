"""Validated configuration objects and the rules that check them.

Every ``Config`` in pyorchestrate is a :class:`ConfigModel`: a pydantic model whose
defaults are kept for every field not given, and whose bad values raise
:class:`~pyorchestrate.core.errors.ConfigError` with one ``field: reason`` line per
problem. Beyond types and bounds, a config may declare its own rules in :meth:`check`,
which return :class:`ValidationResult` items weighed by a :class:`ValidationPolicy`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigError, ConfigValidationError

__all__ = [
    "ConfigModel",
    "ValidationPolicy",
    "ValidationResult",
    "ValidationSeverity",
    "render_validation_error",
]


def _reason(message: str) -> str:
    """Turn pydantic's 'Input should be …' into 'must be …', keeping everything else."""
    for prefix in ("Input should be ", "Value should be "):
        if message.startswith(prefix):
            return "must be " + message[len(prefix) :]
    if message.startswith("Value error, "):
        return message[len("Value error, ") :]
    return message[0].lower() + message[1:] if message else message


def render_validation_error(
    exc: ValidationError, *, prefix: str = ""
) -> list[tuple[str, str]]:
    """Return ``(dotted.path, reason)`` pairs for a pydantic ``ValidationError``."""
    pairs: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err["loc"])
        if prefix:
            loc = f"{prefix}.{loc}" if loc else prefix
        pairs.append((loc, _reason(str(err["msg"]))))
    return pairs


class ValidationSeverity(enum.StrEnum):
    """How serious a :class:`ValidationResult` is."""

    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class ValidationResult(BaseModel):
    """One problem found by a config's :meth:`ConfigModel.check`."""

    model_config = ConfigDict(frozen=True)

    field: str
    message: str = ""
    severity: ValidationSeverity = ValidationSeverity.ERROR

    @property
    def is_valid(self) -> bool:
        """Always ``False``: a result only exists to report a problem."""
        return False

    def __str__(self) -> str:
        return f"{self.severity.name}: [{self.field}] - {self.message}"


class ValidationPolicy(BaseModel):
    """Which :class:`ValidationResult` severities stop an agent.

    CRITICAL always does; ERROR unless ``ignore_errors``; WARNING only when
    ``ignore_warnings`` is off (otherwise it is logged).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ignore_warnings: bool = True
    ignore_errors: bool = False

    def should_raise(self, results: Iterable[ValidationResult]) -> str | None:
        """Return ``"error"``, ``"warning"`` or ``None`` for a list of results."""
        items = list(results)
        severities = {r.severity for r in items}
        if ValidationSeverity.CRITICAL in severities:
            return "error"
        if ValidationSeverity.ERROR in severities and not self.ignore_errors:
            return "error"
        if ValidationSeverity.WARNING in severities:
            return "warning" if self.ignore_warnings else "error"
        return None


class ConfigModel(BaseModel):
    """Base of every ``Config``: pydantic validation with field-naming errors.

    Construction and assignment raise :class:`ConfigError` (a ``ValueError``) whose
    message names each bad field and why, e.g. ``check_interval: must be greater than 0``.
    """

    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=True,
        validate_default=True,
        arbitrary_types_allowed=True,
        use_enum_values=False,
    )

    _config_title: ClassVar[str] = "invalid configuration"

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            title = f"invalid {type(self).__qualname__}"
            raise ConfigError(title, render_validation_error(exc)) from None

    def __setattr__(self, name: str, value: Any) -> None:
        missing = object()
        old = self.__dict__.get(name, missing)
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            # pydantic assigns before a model validator runs: a refused value must not
            # stay behind (it would fail every later assignment too).
            if old is not missing and self.__dict__.get(name, missing) is not old:
                self.__dict__[name] = old
            title = f"invalid {type(self).__qualname__}"
            raise ConfigError(title, render_validation_error(exc)) from None

    def check(self) -> list[ValidationResult]:
        """Return problems beyond types and bounds; override and extend ``super()``."""
        return []

    def enforce(self, policy: ValidationPolicy | None = None) -> list[ValidationResult]:
        """Run :meth:`check` and raise if ``policy`` says so; return the results.

        Raises:
            ConfigValidationError: when a result is severe enough under the policy.
        """
        results = self.check()
        policy = (
            policy or getattr(self, "validation_policy", None) or ValidationPolicy()
        )
        if policy.should_raise(results) == "error":
            raise ConfigValidationError(
                f"invalid {type(self).__qualname__}",
                [(r.field, f"{r.message} ({r.severity.value})") for r in results],
            )
        return results

    def to_dict(self) -> dict[str, Any]:
        """Return the config as JSON-safe data (enums as values, extras included)."""
        data: dict[str, Any] = json.loads(self.model_dump_json(fallback=str))
        return data

    def replace(self, **changes: Any) -> Self:
        """Return a copy with ``changes`` applied and validated."""
        return type(self)(**{**self.model_dump(), **changes})
