"""Numbers in configs are numbers: a bool is never taken for 1 or 0.

Issue 12, item 6: ``Orchestrator.Config(max_workers=True)`` silently became 1. Every
int and float field of the core's configs refuses bools (and strings); float fields
still take ints.
"""

from __future__ import annotations

import types
import typing

import pytest

from pyorchestrate import Orchestrator
from pyorchestrate.core.agent import (
    AgentConfig,
    LoopingConfig,
    PeriodicConfig,
    PoolAgentConfig,
)
from pyorchestrate.core.config import ConfigModel
from pyorchestrate.core.errors import ConfigError
from pyorchestrate.core.supervision_config import SupervisionConfig

CONFIGS: list[type[ConfigModel]] = [
    Orchestrator.Config,
    SupervisionConfig,
    AgentConfig,
    LoopingConfig,
    PeriodicConfig,
    PoolAgentConfig,
]


def _number_type(annotation: object) -> type | None:
    """``int`` or ``float`` for a field typed ``int``, ``float`` or ``… | None``."""
    args: tuple[object, ...] = (annotation,)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = tuple(a for a in typing.get_args(annotation) if a is not type(None))
    if len(args) == 1 and args[0] in (int, float):
        return typing.cast(type, args[0])
    return None


NUMBER_FIELDS = [
    (config, name, kind)
    for config in CONFIGS
    for name, info in config.model_fields.items()
    if (kind := _number_type(info.annotation)) is not None
]


def test_the_issue_reproduction() -> None:
    with pytest.raises(ConfigError) as info:
        Orchestrator.Config(max_workers=True)
    assert info.value.errors == [
        ("max_workers", "must be an integer, not a bool (True)")
    ]


def test_every_number_field_of_the_core_is_checked_here() -> None:
    names = {(c.__name__, n) for c, n, _ in NUMBER_FIELDS}
    assert ("OrchestratorConfig", "max_workers") in names
    assert ("SupervisionConfig", "flap_restarts") in names
    assert ("AgentConfig", "heartbeat_interval") in names
    assert ("LoopingConfig", "limit") in names
    assert ("PeriodicConfig", "execution_interval") in names
    assert len(NUMBER_FIELDS) >= 30


@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize(
    ("config", "field", "kind"),
    NUMBER_FIELDS,
    ids=[f"{c.__name__}.{n}" for c, n, _ in NUMBER_FIELDS],
)
def test_a_bool_is_refused_by_every_number_field(
    config: type[ConfigModel], field: str, kind: type, value: bool
) -> None:
    expected = "an integer" if kind is int else "a number"
    with pytest.raises(ConfigError) as info:
        config(**{field: value})
    assert info.value.errors == [(field, f"must be {expected}, not a bool ({value})")]
    # Assignment is checked the same way, and the old value stays.
    built = config()
    before = getattr(built, field)
    with pytest.raises(ConfigError, match=f"{field}: must be {expected}, not a bool"):
        setattr(built, field, value)
    assert getattr(built, field) == before


@pytest.mark.parametrize(
    ("config", "field"),
    [(c, n) for c, n, kind in NUMBER_FIELDS if kind is float],
    ids=[f"{c.__name__}.{n}" for c, n, kind in NUMBER_FIELDS if kind is float],
)
def test_a_float_field_takes_an_int(config: type[ConfigModel], field: str) -> None:
    # 2 satisfies every bound (and backoff_max >= backoff_initial) but backoff_jitter.
    value = 1 if field == "backoff_jitter" else 2
    built = config(**{field: value})
    assert getattr(built, field) == float(value)
    assert isinstance(getattr(built, field), float)


def test_strings_are_not_numbers_either() -> None:
    with pytest.raises(ConfigError, match="max_workers: must be a valid integer"):
        Orchestrator.Config(max_workers="3")
    with pytest.raises(ConfigError, match="check_interval: must be a valid number"):
        Orchestrator.Config(check_interval="0.5")


def test_exit_codes_are_ints_not_bools() -> None:
    with pytest.raises(ConfigError, match="success_exit_codes"):
        SupervisionConfig(success_exit_codes=[0, True])
    assert SupervisionConfig(success_exit_codes=[0, 3]).success_exit_codes == {0, 3}


def test_a_bool_field_still_takes_a_bool() -> None:
    assert (
        Orchestrator.Config(enable_command_interface=False).enable_command_interface
        is False
    )
    assert PeriodicConfig(delay_compensation=True).delay_compensation is True
