"""Orchestrator.Config: defaults, overrides, validation naming the field and the reason."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from pyorchestrate import ConfigError, Orchestrator, OrchestratorConfig, RunMode
from pyorchestrate.core.orchestrator import default_socket_path

DOCUMENTED_DEFAULTS = {
    "check_interval": 1.0,
    "max_workers": 5,
    "agent_start_timeout": 30.0,
    "agent_stop_timeout": 10.0,
    "enable_command_interface": True,
    "command_socket_path": None,
    "run_mode": RunMode.STOP_ON_EMPTY,
    "history_max_events": 5000,
    "history_payload_bytes": 256,
    "termination_grace": 2.0,
}


def test_config_is_reachable_as_orchestrator_config() -> None:
    assert Orchestrator.Config is OrchestratorConfig


def test_defaults_match_the_documentation() -> None:
    config = Orchestrator.Config()
    for field, value in DOCUMENTED_DEFAULTS.items():
        assert getattr(config, field) == value, field
    # None means "every command"; the field exists and has no restriction.
    assert config.allowed_commands is None


def test_fields_given_override_and_the_rest_keep_defaults() -> None:
    config = Orchestrator.Config(
        check_interval=0.25,
        max_workers=2,
        agent_start_timeout=3.5,
        agent_stop_timeout=0.5,
        enable_command_interface=False,
        command_socket_path="/tmp/po-test/orch.sock",
        run_mode=RunMode.DAEMON,
        allowed_commands={"ps", "status"},
        history_max_events=10,
        history_payload_bytes=32,
    )
    assert config.check_interval == 0.25
    assert config.max_workers == 2
    assert config.agent_start_timeout == 3.5
    assert config.agent_stop_timeout == 0.5
    assert config.enable_command_interface is False
    assert config.command_socket_path == "/tmp/po-test/orch.sock"
    assert config.run_mode is RunMode.DAEMON
    assert config.allowed_commands == frozenset({"ps", "status"})
    assert config.history_max_events == 10
    assert config.history_payload_bytes == 32
    # Not given: defaults kept.
    assert config.termination_grace == 2.0

    partial = Orchestrator.Config(check_interval=0.25)
    assert partial.max_workers == 5
    assert partial.run_mode is RunMode.STOP_ON_EMPTY


def test_seed_example_config_is_accepted() -> None:
    config = Orchestrator.Config(
        enable_command_interface=True,
        command_socket_path="/tmp/pyorchestrate.sock",
        run_mode=RunMode.DAEMON,
        check_interval=0.25,
    )
    assert config.run_mode is RunMode.DAEMON
    assert config.command_socket_path == "/tmp/pyorchestrate.sock"


@pytest.mark.parametrize(
    "field",
    [
        "check_interval",
        "max_workers",
        "agent_start_timeout",
        "agent_stop_timeout",
        "history_max_events",
        "history_payload_bytes",
        "termination_grace",
    ],
)
@pytest.mark.parametrize("value", [0, -1])
def test_numeric_fields_must_be_positive(field: str, value: int) -> None:
    with pytest.raises(ConfigError) as info:
        Orchestrator.Config(**{field: value})
    assert f"{field}: must be greater than 0" in str(info.value)
    assert [loc for loc, _ in info.value.errors] == [field]


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"check_interval: must be greater than 0"):
        Orchestrator.Config(check_interval=0)


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        Orchestrator.Config(check_interval=0, max_workers=-3)
    fields = {loc for loc, _ in info.value.errors}
    assert fields == {"check_interval", "max_workers"}


@pytest.mark.parametrize("value", ["bogus", 3, None])
def test_run_mode_must_be_a_run_mode(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        Orchestrator.Config(run_mode=value)
    assert "run_mode:" in str(info.value)
    assert "RunMode" in str(info.value)


def test_run_mode_accepts_its_value_string() -> None:
    assert Orchestrator.Config(run_mode="daemon").run_mode is RunMode.DAEMON
    assert (
        Orchestrator.Config(run_mode="STOP_ON_EMPTY").run_mode is RunMode.STOP_ON_EMPTY
    )


def test_max_workers_must_be_an_integer() -> None:
    with pytest.raises(ConfigError, match=r"max_workers: "):
        Orchestrator.Config(max_workers=1.5)


def test_enable_command_interface_must_be_a_bool() -> None:
    with pytest.raises(ConfigError, match=r"enable_command_interface: "):
        Orchestrator.Config(enable_command_interface="maybe")


def test_command_socket_path_must_not_be_empty() -> None:
    with pytest.raises(ConfigError, match=r"command_socket_path: "):
        Orchestrator.Config(command_socket_path="")


def test_unknown_field_is_rejected_by_name() -> None:
    with pytest.raises(ConfigError, match=r"chek_interval: "):
        Orchestrator.Config(chek_interval=1.0)


def test_allowed_commands_presets_and_sets() -> None:
    monitoring = Orchestrator.Config(allowed_commands="MONITORING").allowed_commands
    assert monitoring is not None
    assert "ps" in monitoring
    assert "dependencies" not in monitoring
    assert "shutdown" not in monitoring
    assert "start" not in monitoring
    # Unknown names in an explicit set are dropped.
    explicit = Orchestrator.Config(allowed_commands={"ps", "nonsense"}).allowed_commands
    assert explicit == frozenset({"ps"})


def test_unknown_allowed_commands_preset_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        Orchestrator.Config(allowed_commands="everything")
    assert "allowed_commands:" in str(info.value)
    assert "everything" in str(info.value)


def test_assignment_is_validated_too() -> None:
    config = Orchestrator.Config()
    with pytest.raises(ConfigError, match=r"check_interval: must be greater than 0"):
        config.check_interval = 0
    assert config.check_interval == 1.0


def test_to_dict_is_json_safe() -> None:
    data = Orchestrator.Config(run_mode=RunMode.DAEMON, allowed_commands="monitoring")
    dumped = json.loads(json.dumps(data.to_dict()))
    assert dumped["run_mode"] == "daemon"
    assert set(dumped["allowed_commands"]) == set(data.allowed_commands or ())


def test_orchestrator_takes_name_then_config() -> None:
    config = Orchestrator.Config(enable_command_interface=False, max_workers=3)
    orchestrator = Orchestrator("Named", config)
    try:
        assert orchestrator.name == "Named"
        assert orchestrator.config is config
        assert orchestrator.worker_pool.max_workers == 3
    finally:
        orchestrator.shutdown()


def test_orchestrator_with_only_a_name_uses_defaults() -> None:
    orchestrator = Orchestrator("Orchestrator")
    try:
        assert orchestrator.config == Orchestrator.Config()
    finally:
        orchestrator.shutdown()


def test_orchestrator_accepts_a_mapping_and_validates_it() -> None:
    orchestrator = Orchestrator("m", {"check_interval": 0.5})
    try:
        assert orchestrator.config.check_interval == 0.5
        assert orchestrator.config.max_workers == 5
    finally:
        orchestrator.shutdown()
    with pytest.raises(ConfigError, match=r"check_interval: must be greater than 0"):
        Orchestrator("m", {"check_interval": 0})


def test_orchestrator_rejects_a_config_of_the_wrong_type() -> None:
    with pytest.raises(TypeError):
        Orchestrator("m", config=5)  # type: ignore[arg-type]


def test_history_settings_reach_the_history() -> None:
    orchestrator = Orchestrator(
        "h",
        Orchestrator.Config(
            enable_command_interface=False,
            history_max_events=7,
            history_payload_bytes=16,
        ),
    )
    try:
        info = orchestrator.history.capacity_info()
        assert info["max_events"] == 7
        assert info["payload_bytes"] == 16
    finally:
        orchestrator.shutdown()


def test_default_socket_path_is_private_and_per_orchestrator(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    path = Path(default_socket_path("my orch/1"))
    assert path.name == "my_orch_1.sock"
    # A per-user directory, never a shared path such as /tmp/pyorchestrate.sock.
    assert path.parent == Path(tempfile.gettempdir()) / f"pyorchestrate-{os.getuid()}"
    assert default_socket_path("a") != default_socket_path("b")

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert Path(default_socket_path("x")) == tmp_path / "pyorchestrate" / "x.sock"
    # Building the path creates nothing.
    assert not (tmp_path / "pyorchestrate").exists()


def test_command_socket_path_property_prefers_the_configured_one() -> None:
    configured = Orchestrator(
        "c", Orchestrator.Config(command_socket_path="/tmp/po-x/c.sock")
    )
    default = Orchestrator("d")
    try:
        assert configured.command_socket_path == "/tmp/po-x/c.sock"
        assert default.command_socket_path == default_socket_path("d")
    finally:
        configured.shutdown()
        default.shutdown()
