"""Unknown keys in configs: custom attributes, typos, and strict configs.

Issue 12, item 5: ``register_agent(IdleThread, "x", custom_config={"limt": 3})`` was
accepted and the agent ran forever. Unknown keys stay custom attributes (checklist
§12 item 5), but a near miss of a field is a typo and raises ``ConfigError``.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ConfigDict

from pyorchestrate.core.agent import (
    AgentConfig,
    LoopingConfig,
    LoopingThreadAgent,
    PeriodicConfig,
    build_agent_config,
)
from pyorchestrate.core.config import ConfigModel, edit_distance
from pyorchestrate.core.errors import ConfigError
from pyorchestrate.core.orchestrator import Orchestrator
from tests.agents import ForeverThread


def _errors(call: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        call()
    return info.value.errors


# ------------------------------------------------------------------------ typos


def test_the_issue_typo_is_refused_at_registration_and_nothing_is_registered() -> None:
    orchestrator = Orchestrator("typo", {"enable_command_interface": False})
    try:
        with pytest.raises(ConfigError) as info:
            orchestrator.register_agent(ForeverThread, "x", custom_config={"limt": 3})
        assert "limt: unknown setting; did you mean 'limit'?" in str(info.value)
        assert info.value.errors == [("limt", "unknown setting; did you mean 'limit'?")]
        assert orchestrator.agents == {}
    finally:
        orchestrator.shutdown()


@pytest.mark.parametrize(
    ("key", "field"),
    [
        ("limt", "limit"),  # one deletion
        ("lmt", "limit"),  # two deletions
        ("limmit", "limit"),  # one insertion
        ("lmiit", "limit"),  # a transposition (two edits)
        ("Limit", "limit"),  # a case difference
        ("LOG_LEVEL", "log_level"),  # only case
        ("log-level", "log_level"),
        ("heartbeat_intervall", "heartbeat_interval"),
        ("supervison", "supervision"),
        # A field of a nested config given at the top level is a slip too.
        ("restart", "supervision.restart"),
        ("max_restart", "supervision.max_restarts"),
        ("ignore_warning", "validation_policy.ignore_warnings"),
    ],
)
def test_a_near_miss_of_a_field_is_a_typo(key: str, field: str) -> None:
    assert _errors(lambda: LoopingConfig(**{key: 3})) == [
        (key, f"unknown setting; did you mean {field!r}?")
    ]


def test_the_closest_field_is_suggested_and_own_fields_win_ties() -> None:
    # "execution_intervals" is 1 edit from execution_interval, 4 from heartbeat_...
    assert _errors(lambda: PeriodicConfig(execution_intervals=2)) == [
        ("execution_intervals", "unknown setting; did you mean 'execution_interval'?")
    ]


@pytest.mark.parametrize("key", ["output_file", "li", "limit_max", "lines", "batch"])
def test_keys_three_or_more_edits_away_stay_custom_attributes(key: str) -> None:
    config = LoopingConfig(**{key: "v"})
    assert getattr(config, key) == "v"
    assert config.limit == -1
    assert config.to_dict()[key] == "v"


def test_a_typo_is_reported_with_the_other_problems_of_the_same_input() -> None:
    errors = _errors(lambda: LoopingConfig(limt=3, limit=-5, heartbeat_interval=0))
    assert errors == [
        ("limt", "unknown setting; did you mean 'limit'?"),
        ("heartbeat_interval", "must be greater than 0"),
        ("limit", "must be greater than or equal to -1"),
    ]


def test_errors_of_a_nested_config_keep_their_dotted_path() -> None:
    assert _errors(lambda: LoopingConfig(supervision={"max_restarts": -5})) == [
        ("supervision.max_restarts", "must be greater than or equal to -1")
    ]
    assert _errors(lambda: LoopingConfig(supervision={"restrat": "always"})) == [
        ("supervision.restrat", "unknown setting; did you mean 'restart'?")
    ]


def test_assigning_a_typo_is_refused_and_a_custom_attribute_is_not() -> None:
    config = LoopingConfig()
    with pytest.raises(ConfigError, match="limt: unknown setting; did you mean"):
        config.limt = 3
    assert config.model_extra == {}
    config.output_file = "x.txt"
    assert config.output_file == "x.txt"


def test_a_config_of_a_parent_class_is_checked_against_the_child_fields() -> None:
    parent = AgentConfig(limt=3)  # AgentConfig has no "limit": a custom attribute
    assert parent.limt == 3
    with pytest.raises(ConfigError, match="did you mean 'limit'"):
        build_agent_config(ForeverThread, parent)


def test_a_declared_field_is_never_a_typo() -> None:
    """The way out for a custom key close to a field: declare it."""

    class Limits(LoopingConfig):
        limits: tuple[int, ...] = ()

    assert Limits(limits=(1, 2)).limits == (1, 2)


# ---------------------------------------------------------------------- strict


class StrictWorker(LoopingThreadAgent):
    """Opts into strict configs: every unknown key is an error."""

    class Config(LoopingThreadAgent.Config):
        model_config = ConfigDict(extra="forbid")
        batch: int = 10

    def cycle(self) -> None:
        self.wait(0.01)


def test_a_strict_class_refuses_every_unknown_key() -> None:
    assert _errors(lambda: StrictWorker.Config(output_file="x")) == [
        ("output_file", "unknown setting")
    ]
    assert _errors(lambda: StrictWorker.Config(bacth=3)) == [
        ("bacth", "unknown setting; did you mean 'batch'?")
    ]
    assert StrictWorker.Config(batch=3, limit=2).batch == 3
    with pytest.raises(ConfigError, match="output_file: unknown setting"):
        build_agent_config(StrictWorker, {"output_file": "x"})
    config = StrictWorker.Config()
    with pytest.raises(ConfigError, match="output_file: unknown setting"):
        config.output_file = "x"


def test_a_strict_class_is_refused_at_registration() -> None:
    orchestrator = Orchestrator("strict", {"enable_command_interface": False})
    try:
        with pytest.raises(ConfigError, match="output_file: unknown setting"):
            orchestrator.register_agent(
                StrictWorker, "w", custom_config={"output_file": "x"}
            )
        assert orchestrator.agents == {}
    finally:
        orchestrator.shutdown()


class _Inner(ConfigModel):
    model_config = ConfigDict(extra="allow")
    depth: int = 1


class _WithInner(LoopingConfig):
    inner: _Inner = _Inner()


class InnerWorker(LoopingThreadAgent):
    Config = _WithInner

    def cycle(self) -> None:
        self.wait(0.01)


def test_the_caller_can_ask_for_strict_keys() -> None:
    data = {"output_file": "x", "limit": 2}
    assert build_agent_config(ForeverThread, data).output_file == "x"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError) as info:
        build_agent_config(ForeverThread, data, strict=True)
    assert info.value.errors == [("output_file", "unknown setting")]
    # An instance carrying custom attributes, of the class or of a parent class.
    for config in (LoopingConfig(output_file="x"), AgentConfig(output_file="x")):
        with pytest.raises(ConfigError, match="output_file: unknown setting"):
            build_agent_config(ForeverThread, config, strict=True)
    clean = LoopingConfig(limit=2)
    assert build_agent_config(ForeverThread, clean, strict=True) == clean
    # Nested configs are strict too, even those that allow extras on their own.
    assert build_agent_config(InnerWorker, {"inner": {"colour": 1}}).inner.colour == 1  # type: ignore[attr-defined]
    with pytest.raises(ConfigError) as info:
        build_agent_config(InnerWorker, {"inner": {"colour": 1}}, strict=True)
    assert info.value.errors == [("inner.colour", "unknown setting")]


def test_from_data_validates_a_mapping_into_a_config_error() -> None:
    assert LoopingConfig.from_data({"limit": 4}).limit == 4
    assert _errors(lambda: LoopingConfig.from_data({"limit": -4})) == [
        ("limit", "must be greater than or equal to -1")
    ]
    assert _errors(lambda: LoopingConfig.from_data({5: 1})) == [  # type: ignore[dict-item]
        ("5", "keys should be strings")
    ]


# ------------------------------------------------------------------ the metric


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("", "", 0),
        ("limit", "limit", 0),
        ("limt", "limit", 1),
        ("lmt", "limit", 2),
        ("kitten", "sitting", 3),
        ("", "abc", 3),
        ("abc", "", 3),
        ("flaw", "lawn", 2),
    ],
)
def test_edit_distance_is_levenshtein(a: str, b: str, distance: int) -> None:
    assert edit_distance(a, b, cutoff=10) == distance
    assert edit_distance(b, a, cutoff=10) == distance


def test_edit_distance_stops_at_the_cutoff() -> None:
    assert edit_distance("kitten", "sitting", cutoff=2) == 3
    assert edit_distance("a" * 50, "b" * 50, cutoff=2) == 3
    assert edit_distance("short", "a much longer name", cutoff=2) == 3
