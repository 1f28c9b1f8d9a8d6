"""Validated configuration objects and the rules that check them.

Every ``Config`` in pyorchestrate is a :class:`ConfigModel`: a pydantic model whose
defaults are kept for every field not given, and whose bad values raise
:class:`~pyorchestrate.core.errors.ConfigError` with one ``field: reason`` line per
problem. Beyond types and bounds, a config may declare its own rules in :meth:`check`,
which return :class:`ValidationResult` items weighed by a :class:`ValidationPolicy`.

Unknown keys. A config with ``extra="allow"`` (agent configs) keeps an unknown key as
a custom attribute, unless it is a near miss of a field: the same name in another
case, or at most :data:`TYPO_DISTANCE` edits away from a field of the config or of a
config nested in it. That is a typo, and an error says ``did you mean 'limit'?``. A
config with ``extra="forbid"`` (or one validated with ``strict=True``, see
:meth:`ConfigModel.from_data`) refuses every unknown key, with the same hint when one
is close.
"""

from __future__ import annotations

import enum
import functools
import inspect
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    ModelWrapValidatorHandler,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

from .errors import ConfigError, ConfigValidationError

__all__ = [
    "STRICT_KEYS_CONTEXT",
    "TYPO_DISTANCE",
    "ConfigModel",
    "ValidationPolicy",
    "ValidationResult",
    "ValidationSeverity",
    "edit_distance",
    "render_validation_error",
]

TYPO_DISTANCE = 2
"""An unknown key this many edits (or fewer) from a field name is a typo of it."""

STRICT_KEYS_CONTEXT = "pyorchestrate_strict_keys"
"""The pydantic validation-context key that makes every config refuse unknown keys."""

_UNKNOWN_SETTING = "unknown_setting"
_KNOWN_ERROR_TYPES = frozenset(typing.get_args(core_schema.ErrorType))


def edit_distance(a: str, b: str, cutoff: int) -> int:
    """The Levenshtein distance of ``a`` and ``b``, or ``cutoff + 1`` if it is larger.

    Stops as soon as the distance is known to exceed ``cutoff``.
    """
    if abs(len(a) - len(b)) > cutoff:
        return cutoff + 1
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(
                    previous[j] + 1,  # a deletion
                    current[j - 1] + 1,  # an insertion
                    previous[j - 1] + (char_a != char_b),  # a substitution
                )
            )
        if min(current) > cutoff:
            return cutoff + 1
        previous = current
    return min(previous[-1], cutoff + 1)


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
        if isinstance(err["input"], bool) and err["type"] in _NUMBER_TYPES:
            reason = (
                f"must be {_NUMBER_TYPES[err['type']]}, not a bool ({err['input']})"
            )
        else:
            reason = _reason(str(err["msg"]))
        pairs.append((loc, reason))
    return pairs


_NUMBER_TYPES = {"int_type": "an integer", "float_type": "a number"}


def _nested_model(annotation: object) -> type[BaseModel] | None:
    """The model class of a field typed ``Model`` or ``Model | None``, else ``None``."""
    candidates: tuple[object, ...] = (annotation,)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        candidates = typing.get_args(annotation)
    models = [c for c in candidates if inspect.isclass(c) and issubclass(c, BaseModel)]
    return models[0] if len(models) == 1 else None


@functools.cache
def _known_names(
    model: type[BaseModel],
) -> tuple[frozenset[str], tuple[tuple[str, str], ...]]:
    """``(keys the model takes, (name to compare, name to suggest) pairs)``.

    Candidates for a suggestion: the model's fields, then the fields of the models
    nested in it (suggested with their dotted path, e.g. ``supervision.restart``).
    """
    keys: set[str] = set()
    own: list[tuple[str, str]] = []
    nested: list[tuple[str, str]] = []
    for name, info in model.model_fields.items():
        keys.add(name)
        own.append((name.lower(), name))
        if info.alias:
            keys.add(info.alias)
            own.append((info.alias.lower(), info.alias))
        inner = _nested_model(info.annotation)
        if inner is not None:
            for inner_name in inner.model_fields:
                nested.append((inner_name.lower(), f"{name}.{inner_name}"))
    return frozenset(keys), (*own, *nested)


def _suggestion(model: type[BaseModel], key: str) -> str | None:
    """The field ``key`` is a typo of, or ``None`` (the closest; own fields first)."""
    best: tuple[int, str] | None = None
    wanted = key.lower()
    for compared, suggested in _known_names(model)[1]:
        distance = edit_distance(wanted, compared, TYPO_DISTANCE)
        if distance <= TYPO_DISTANCE and (best is None or distance < best[0]):
            best = (distance, suggested)
    return best[1] if best is not None else None


def _key_problems(
    model: type[BaseModel], keys: Iterable[object], *, strict: bool
) -> list[tuple[str, str]]:
    """``(key, reason)`` for each key of ``keys`` the model must refuse.

    An unknown key is refused if it is a near miss of a field (a typo), or always when
    ``strict``.
    """
    known = _known_names(model)[0]
    problems: list[tuple[str, str]] = []
    for key in keys:
        if key in known or not isinstance(key, str):  # pydantic refuses the latter
            continue
        match = _suggestion(model, key)
        if match is not None:
            problems.append((key, f"unknown setting; did you mean {match!r}?"))
        elif strict:
            problems.append((key, "unknown setting"))
    return problems


def _as_init_details(error: Mapping[str, Any]) -> InitErrorDetails:
    """Turn one item of ``ValidationError.errors()`` back into raisable details."""
    kind = error["type"]
    details: InitErrorDetails
    if kind in _KNOWN_ERROR_TYPES:
        details = {"type": kind, "loc": tuple(error["loc"]), "input": error["input"]}
        if "ctx" in error:
            details["ctx"] = error["ctx"]
        return details
    # A custom error (a nested model's own): keep its type and its rendered message.
    return {
        "type": PydanticCustomError(kind, str(error["msg"])),  # no ctx: kept as is
        "loc": tuple(error["loc"]),
        "input": error["input"],
    }


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

    @model_validator(mode="wrap")
    @classmethod
    def _refuse_unknown_keys(
        cls, data: Any, handler: ModelWrapValidatorHandler[Self], info: ValidationInfo
    ) -> Self:
        """Refuse typos of field names (and, when strict, every unknown key).

        Reports them together with the other problems of the same input.
        """
        strict = cls.model_config.get("extra") == "forbid" or bool(
            (info.context or {}).get(STRICT_KEYS_CONTEXT)
        )
        if isinstance(data, Mapping):
            keys: Iterable[object] = list(data)
        elif isinstance(data, cls) and strict:
            # An instance was checked when built; strict mode also refuses its extras.
            keys = list(data.model_extra or ())
        else:
            keys = ()
        problems = _key_problems(cls, keys, strict=strict)
        try:
            model = handler(data)
        except ValidationError as exc:
            if not problems:
                raise
            reported = {key for key, _ in problems}
            others = [
                _as_init_details(error)
                for error in exc.errors(include_url=False)
                if not (
                    error["type"] == "extra_forbidden"
                    and len(error["loc"]) == 1
                    and error["loc"][0] in reported
                )
            ]
        else:
            if not problems:
                return model
            others = []
        values = data if isinstance(data, Mapping) else (data.model_extra or {})
        typos: list[InitErrorDetails] = [
            {
                "type": PydanticCustomError(_UNKNOWN_SETTING, reason),
                "loc": (key,),
                "input": values.get(key),
            }
            for key, reason in problems
        ]
        raise ValidationError.from_exception_data(cls.__name__, [*typos, *others])

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | Self, *, strict: bool = False) -> Self:
        """Validate ``data`` (a mapping, or an instance) into this config.

        With ``strict``, every key that is not a field is refused, here and in the
        configs nested in it, as if they all had ``extra="forbid"``.

        Raises:
            ConfigError: naming each bad field (and each unknown key, with a
                ``did you mean`` hint when one is close).
        """
        context = {STRICT_KEYS_CONTEXT: True} if strict else None
        try:
            return cls.model_validate(data, context=context)
        except ValidationError as exc:
            title = f"invalid {cls.__qualname__}"
            raise ConfigError(title, render_validation_error(exc)) from None

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            title = f"invalid {type(self).__qualname__}"
            raise ConfigError(title, render_validation_error(exc)) from None

    # Tell pydantic this __init__ only converts errors: a config nested in another is
    # then validated in place (its errors keep their dotted path, e.g.
    # ``supervision.max_restarts``) instead of through __init__ (one opaque error).
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_"):
            strict = self.model_config.get("extra") == "forbid"
            problems = _key_problems(type(self), [name], strict=strict)
            if problems:
                title = f"invalid {type(self).__qualname__}"
                raise ConfigError(title, [(name, problems[0][1])])
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
