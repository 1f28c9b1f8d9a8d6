"""Agent configs: defaults, validation of types and bounds, check() rules and policies.

Checklist §12 items 5, 7, 8, 9 (with our decision that type/bound errors raise
``ConfigError`` at construction, hence at registration).
"""

from __future__ import annotations

import enum
import json
import threading

import pytest

from pyorchestrate.core.agent import (
    AgentConfig,
    LoopingConfig,
    PeriodicConfig,
    PoolAgentConfig,
    build_agent_config,
)
from pyorchestrate.core.config import (
    ValidationPolicy,
    ValidationResult,
    ValidationSeverity,
)
from pyorchestrate.core.errors import ConfigError, ConfigValidationError
from pyorchestrate.core.orchestrator import AgentSpec
from pyorchestrate.core.utilities.event import OrchestratorEvent, Severity
from pyorchestrate.core.utilities.messaging import MessageChannel
from pyorchestrate.testing import EventRecorder
from tests.agents import (
    ProbeConfig,
    QuickThread,
    ScriptedThread,
    TickerThread,
    agent,
    new_orchestrator,
    read_until_closed,
    statuses,
    trace,
)

W, E, C = (
    ValidationSeverity.WARNING,
    ValidationSeverity.ERROR,
    ValidationSeverity.CRITICAL,
)

# --------------------------------------------------------------------------- defaults


def test_every_agent_config_has_the_documented_defaults() -> None:
    config = AgentConfig()
    assert config.validation_policy == ValidationPolicy()
    assert config.validation_policy.ignore_warnings is True
    assert config.validation_policy.ignore_errors is False
    assert config.log_level is None
    assert config.heartbeat_interval is None


def test_looping_periodic_and_pool_defaults() -> None:
    assert LoopingConfig().limit == -1
    periodic = PeriodicConfig()
    assert (
        periodic.limit,
        periodic.execution_interval,
        periodic.delay_compensation,
    ) == (
        -1,
        1.0,
        False,
    )
    pool = PoolAgentConfig()
    assert pool.agents_entry == []
    assert pool.orchestrator_config is None
    assert pool.limit == -1
    assert pool.delay_compensation is False


def test_a_given_value_overrides_its_default_and_keeps_the_others() -> None:
    config = PeriodicConfig(limit=5)
    assert config.limit == 5
    assert config.execution_interval == 1.0


def test_unknown_keyword_is_readable_as_an_attribute() -> None:
    config = LoopingConfig(output_file="x.txt", retries=3)
    assert config.output_file == "x.txt"
    assert config.retries == 3


def test_subclass_default_overrides_the_parents() -> None:
    class Fast(PeriodicConfig):
        execution_interval: float = 0.25

    assert Fast().execution_interval == 0.25
    assert PeriodicConfig().execution_interval == 1.0
    assert Fast().limit == -1  # inherited untouched


def test_to_dict_includes_inherited_and_custom_values_and_is_json_safe() -> None:
    class Colour(enum.Enum):
        RED = "red"

    config = PeriodicConfig(limit=3, colour=Colour.RED, nested={"a": [1, 2]})
    data = config.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["limit"] == 3
    assert data["execution_interval"] == 1.0
    assert data["delay_compensation"] is False
    assert data["validation_policy"] == {
        "ignore_warnings": True,
        "ignore_errors": False,
    }
    assert data["colour"] == "red"
    assert data["nested"] == {"a": [1, 2]}


def test_pool_config_with_children_is_json_safe() -> None:
    channel = MessageChannel()
    try:
        spec = AgentSpec(
            QuickThread, "q", msg_channel=channel, kwargs={"lock": threading.Lock()}
        )
        data = PoolAgentConfig(agents_entry=[spec]).to_dict()
        json.dumps(data)
        assert data["agents_entry"][0]["name"] == "q"
    finally:
        channel.close()


# --------------------------------------------------------------------------- bounds


@pytest.mark.parametrize(
    ("config_class", "kwargs", "line"),
    [
        (LoopingConfig, {"limit": -2}, "limit: must be greater than or equal to -1"),
        (
            PeriodicConfig,
            {"execution_interval": 0},
            "execution_interval: must be greater than 0",
        ),
        (
            PeriodicConfig,
            {"execution_interval": -1.5},
            "execution_interval: must be greater than 0",
        ),
        (PeriodicConfig, {"delay_compensation": "yes"}, "delay_compensation: "),
        (PeriodicConfig, {"delay_compensation": 1}, "delay_compensation: "),
        (
            AgentConfig,
            {"heartbeat_interval": 0},
            "heartbeat_interval: must be greater than 0",
        ),
        (AgentConfig, {"log_level": "LOUD"}, "log_level: "),
        (LoopingConfig, {"limit": "many"}, "limit: "),
    ],
)
def test_bad_values_raise_config_error_naming_the_field(
    config_class: type[AgentConfig], kwargs: dict[str, object], line: str
) -> None:
    with pytest.raises(ConfigError) as info:
        config_class(**kwargs)
    assert isinstance(info.value, ValueError)
    assert line in str(info.value)
    field = line.split(":")[0]
    assert [loc for loc, _ in info.value.errors] == [field]


def test_boundary_values_are_accepted() -> None:
    assert LoopingConfig(limit=-1).limit == -1
    assert LoopingConfig(limit=0).limit == 0
    assert PeriodicConfig(execution_interval=0.001).execution_interval == 0.001
    assert AgentConfig(log_level="info").log_level == "info"


def test_several_bad_values_are_all_reported() -> None:
    with pytest.raises(ConfigError) as info:
        PeriodicConfig(limit=-5, execution_interval=0)
    assert {loc for loc, _ in info.value.errors} == {"limit", "execution_interval"}


def test_assignment_is_validated_and_keeps_the_old_value() -> None:
    config = LoopingConfig(limit=4)
    with pytest.raises(ConfigError, match="limit: must be greater than or equal to -1"):
        config.limit = -5
    assert config.limit == 4


def test_agent_construction_with_a_bad_config_raises() -> None:
    with pytest.raises(ConfigError, match="limit"):
        TickerThread(config={"limit": -2})
    with pytest.raises(ConfigError, match="execution_interval"):
        TickerThread(config={"execution_interval": 0})


def test_registration_with_a_bad_config_raises_and_registers_nothing(
    recorder: EventRecorder,
) -> None:
    with new_orchestrator() as orchestrator:
        recorder.attach(orchestrator)
        with pytest.raises(
            ConfigError, match="execution_interval: must be greater than 0"
        ):
            orchestrator.register_agent(
                TickerThread, "ticker", custom_config={"execution_interval": 0}
            )
        with pytest.raises(ConfigError, match="limit"):
            orchestrator.register_agent(ScriptedThread, "looper", {"limit": -2})
        assert orchestrator.agents == {}
    assert recorder.of(OrchestratorEvent.AGENT_REGISTERED) == []


# --------------------------------------------------------------------------- building


def test_build_agent_config_from_none_mapping_instance_and_parent_config() -> None:
    assert build_agent_config(TickerThread, None) == PeriodicConfig()
    built = build_agent_config(TickerThread, {"limit": 3})
    assert isinstance(built, PeriodicConfig)
    assert (built.limit, built.execution_interval) == (3, 1.0)
    own = PeriodicConfig(execution_interval=2.0)
    assert build_agent_config(TickerThread, own) is own
    # A parent's config is upgraded, keeping only what was set on it.
    upgraded = build_agent_config(TickerThread, LoopingConfig(limit=2))
    assert isinstance(upgraded, PeriodicConfig)
    assert (upgraded.limit, upgraded.execution_interval) == (2, 1.0)


def test_build_agent_config_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="mapping"):
        build_agent_config(TickerThread, 42)


def test_agent_given_a_mapping_holds_its_own_config_class() -> None:
    ticker = TickerThread(config={"execution_interval": 0.5, "label": "t"})
    assert isinstance(ticker.config, PeriodicConfig)
    assert ticker.config.execution_interval == 0.5
    assert ticker.config.label == "t"


# --------------------------------------------------------------------------- results


def test_validation_result_renders_and_is_never_valid() -> None:
    result = ValidationResult(field="limit", message="too low")
    assert result.severity is ValidationSeverity.ERROR
    assert result.is_valid is False
    assert str(result) == "ERROR: [limit] - too low"
    assert (
        str(ValidationResult(field="x", message="m", severity=C)) == "CRITICAL: [x] - m"
    )


@pytest.mark.parametrize(
    ("policy", "severities", "expected"),
    [
        (ValidationPolicy(), [], None),
        (ValidationPolicy(), [W], "warning"),
        (ValidationPolicy(ignore_warnings=False), [W], "error"),
        (ValidationPolicy(), [E], "error"),
        (ValidationPolicy(ignore_errors=True), [E], None),
        (ValidationPolicy(ignore_errors=True), [E, W], "warning"),
        (ValidationPolicy(), [C], "error"),
        (ValidationPolicy(ignore_errors=True, ignore_warnings=True), [C], "error"),
        (ValidationPolicy(ignore_errors=True), [W, C], "error"),
    ],
)
def test_policy_should_raise(
    policy: ValidationPolicy,
    severities: list[ValidationSeverity],
    expected: str | None,
) -> None:
    results = [
        ValidationResult(field=f"f{i}", severity=s) for i, s in enumerate(severities)
    ]
    assert policy.should_raise(results) == expected


def test_enforce_raises_naming_the_field_or_returns_the_warnings() -> None:
    with pytest.raises(ConfigValidationError) as info:
        ProbeConfig(threshold=5).enforce()
    assert isinstance(info.value, ConfigError)
    assert [loc for loc, _ in info.value.errors] == ["threshold"]
    assert "threshold: must be at most 3" in str(info.value)

    warned = ProbeConfig(threshold=5, threshold_severity="warning")
    [result] = warned.enforce()
    assert (result.field, result.severity) == ("threshold", W)
    with pytest.raises(ConfigValidationError):
        warned.enforce(ValidationPolicy(ignore_warnings=False))
    assert ProbeConfig(threshold=5).enforce(ValidationPolicy(ignore_errors=True))
    assert ProbeConfig().enforce() == []


def test_built_in_rule_an_empty_pool_is_a_warning() -> None:
    [result] = PoolAgentConfig().check()
    assert result.field == "agents_entry"
    assert result.severity is ValidationSeverity.WARNING
    assert PoolAgentConfig(agents_entry=[AgentSpec(QuickThread, "q")]).check() == []


# --------------------------------------------------------------------------- in the agent


def _run_probe(flavour: str, config: ProbeConfig, recorder: EventRecorder):
    channel = MessageChannel()
    try:
        with new_orchestrator() as orchestrator:
            recorder.attach(orchestrator)
            orchestrator.register_agent(
                agent("probe", flavour),
                "probe",
                custom_config=config,
                msg_channel=channel,
            )
            orchestrator.start()
            assert orchestrator.join() == []
            history = orchestrator.events(event_name="agent_error")
        messages = read_until_closed(channel, ["probe"])
    finally:
        channel.close()
    return messages, history


def test_a_warning_is_only_logged_by_default(
    flavour: str, recorder: EventRecorder
) -> None:
    config = ProbeConfig(threshold=5, threshold_severity="warning")
    messages, history = _run_probe(flavour, config, recorder)
    assert "execute" in trace(messages)
    assert history == []
    assert recorder.of(OrchestratorEvent.AGENT_ERROR) == []
    terminated = recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "probe")
    assert terminated["termination_status"] == "success"


def test_a_warning_stops_the_agent_when_warnings_are_not_ignored(
    flavour: str, recorder: EventRecorder
) -> None:
    config = ProbeConfig(
        threshold=5,
        threshold_severity="warning",
        validation_policy=ValidationPolicy(ignore_warnings=False),
    )
    messages, history = _run_probe(flavour, config, recorder)
    assert trace(messages) == [
        "status:agent_started",
        "status:agent_error",
        "on_close",
        "status:agent_close",
    ]
    assert len(history) == 1
    assert "threshold" in history[0].data["error_message"]


def test_an_error_is_ignored_when_errors_are_ignored(
    flavour: str, recorder: EventRecorder
) -> None:
    config = ProbeConfig(
        threshold=5, validation_policy=ValidationPolicy(ignore_errors=True)
    )
    messages, history = _run_probe(flavour, config, recorder)
    assert "execute" in trace(messages)
    assert history == []


def test_a_critical_result_stops_the_agent_even_when_errors_are_ignored(
    flavour: str, recorder: EventRecorder
) -> None:
    config = ProbeConfig(
        threshold=5,
        threshold_severity="critical",
        validation_policy=ValidationPolicy(ignore_errors=True, ignore_warnings=True),
    )
    messages, history = _run_probe(flavour, config, recorder)
    assert "setup" not in trace(messages)
    assert "execute" not in trace(messages)
    assert len(history) == 1


def test_a_config_error_ends_the_agent_before_setup_with_one_agent_error(
    flavour: str, recorder: EventRecorder
) -> None:
    """§12.14: status ERROR, setup/execute never run, one AGENT_ERROR naming the field."""
    messages, history = _run_probe(flavour, ProbeConfig(threshold=5), recorder)
    steps = trace(messages)
    assert "setup" not in steps
    assert "execute" not in steps
    assert statuses(messages) == ["agent_started", "agent_error", "agent_close"]
    error_status = next(m for m in messages if m.payload.get("event") == "agent_error")
    assert error_status.payload["reason"] == "config"
    close = messages[-1]
    assert close.payload["termination_status"] == "error"

    [record] = history
    assert record.severity is Severity.ERROR
    assert record.agent == "probe"
    assert "threshold" in record.data["error_message"]
    [error] = recorder.of(OrchestratorEvent.AGENT_ERROR, "probe")
    assert "threshold" in error["error_message"]
    assert error["reason"] == "config"
    terminated = recorder.wait_for(OrchestratorEvent.AGENT_TERMINATED, "probe")
    assert terminated["termination_status"] == "error"
    assert recorder.of(OrchestratorEvent.AGENT_READY, "probe") == []
