"""Permission presets and explicit command sets, enforced by the server."""

from __future__ import annotations

import pytest

from pyorchestrate import Orchestrator
from pyorchestrate.core.control.permissions import (
    COMMANDS,
    PERMISSION_PRESETS,
    resolve_allowed_commands,
)
from pyorchestrate.core.errors import CommandForbidden, ConfigError
from tests.agents import agent

from .conftest import Serve

READ_ONLY = {
    "ps",
    "status",
    "dependencies",
    "stats",
    "history",
    "history-stats",
    "commands",
    "logs",
}
MUTATING = {"start", "stop", "restart", "shutdown", "reopen-logs", "reload", "ping"}


def test_the_known_commands() -> None:
    assert {
        "ps",
        "status",
        "dependencies",
        "start",
        "stop",
        "restart",
        "commands",
        "stats",
        "history",
        "history-stats",
        "shutdown",
        "subscribe",
        "logs",
        "reopen-logs",
        "reload",
        "ping",
        "record-action",
    } == COMMANDS


def test_none_allows_everything() -> None:
    assert resolve_allowed_commands(None) == COMMANDS


def test_preset_contents() -> None:
    assert set(PERMISSION_PRESETS) == {
        "production",
        "read_only",
        "monitoring",
        "development",
    }
    for name in ("production", "read_only"):
        allowed = resolve_allowed_commands(name)
        assert allowed >= READ_ONLY
        assert not allowed & MUTATING
    assert resolve_allowed_commands("monitoring") == (
        resolve_allowed_commands("production") - {"dependencies"}
    )
    assert resolve_allowed_commands("development") == COMMANDS


@pytest.mark.parametrize("forbidden", ["dependencies", "start", "stop", "shutdown"])
def test_monitoring_forbids_dependencies_and_control(forbidden: str) -> None:
    assert forbidden not in resolve_allowed_commands("monitoring")


@pytest.mark.parametrize(
    "spelling", ["monitoring", "MONITORING", "Monitoring", " monitoring "]
)
def test_preset_names_are_case_insensitive(spelling: str) -> None:
    assert resolve_allowed_commands(spelling) == PERMISSION_PRESETS["monitoring"]


@pytest.mark.parametrize("name", ["basic", "all", "", "admin"])
def test_an_unknown_preset_raises_value_error_naming_it(name: str) -> None:
    with pytest.raises(ValueError, match="preset") as caught:
        resolve_allowed_commands(name)
    assert repr(name) in str(caught.value)


def test_an_explicit_set_drops_unknown_names() -> None:
    allowed = resolve_allowed_commands({"ps", "PS", "Status", "launch-missiles", "ls"})
    assert allowed == {"ps", "status"}
    assert resolve_allowed_commands(["nothing", "known"]) == frozenset()


@pytest.mark.parametrize("value", [5, 3.5, True, [1, "ps"], ["ps", None]])
def test_other_types_raise_value_error(value: object) -> None:
    with pytest.raises(ValueError):
        resolve_allowed_commands(value)  # type: ignore[arg-type]


def test_the_config_resolves_presets_and_names_the_field() -> None:
    config = Orchestrator.Config(allowed_commands="Read_Only")
    assert config.allowed_commands == PERMISSION_PRESETS["read_only"]
    with pytest.raises(ConfigError, match="allowed_commands"):
        Orchestrator.Config(allowed_commands="superuser")


# ---------------------------------------------------------------- on the server


@pytest.mark.parametrize("command", ["dependencies", "start", "stop", "shutdown"])
def test_monitoring_server_answers_403_listing_allowed(
    serve: Serve, command: str
) -> None:
    served = serve(
        agents=[(agent("forever", "thread"), "w")], allowed_commands="MONITORING"
    )
    served.wait_state("w", "READY")
    args = () if command in ("dependencies", "shutdown") else ("w",)
    payload = served.raw().reply(command, *args)
    allowed = sorted(PERMISSION_PRESETS["monitoring"])
    assert payload["status"] == "error"
    assert payload["code"] == 403
    assert payload["error_type"] == "CommandForbidden"
    assert f"'{command}' is not allowed" in payload["error"]
    assert "Allowed commands: " + ", ".join(allowed) in payload["error"]
    assert payload["data"]["allowed_commands"] == allowed
    # Nothing happened: the agent still runs and the orchestrator still serves.
    assert served.state("w") == "READY"
    assert not served.orchestrator.is_shutting_down
    assert served.client().ps()["agents"][0]["lifecycle_state"] == "READY"


def test_monitoring_still_serves_its_own_commands(serve: Serve) -> None:
    served = serve(allowed_commands="monitoring")
    client = served.client()
    # subscribe and logs stream (tests/test_logs_command.py reads logs read-only)
    for command in sorted(PERMISSION_PRESETS["monitoring"] - {"subscribe", "logs"}):
        assert isinstance(client.call(command), dict), command
    info = client.commands()
    assert info["allowed_commands"] == sorted(PERMISSION_PRESETS["monitoring"])
    assert info["restrictions_active"] is True
    assert (
        set(info["restricted_commands"]) == COMMANDS - PERMISSION_PRESETS["monitoring"]
    )
    assert info["total_available_commands"] == len(COMMANDS)


def test_client_gets_command_forbidden_with_the_allowed_list(serve: Serve) -> None:
    served = serve(
        agents=[(agent("forever", "thread"), "w")], allowed_commands="read_only"
    )
    with pytest.raises(CommandForbidden) as caught:
        served.client().restart("w")
    assert caught.value.code == 403
    assert caught.value.data["allowed_commands"] == sorted(
        PERMISSION_PRESETS["read_only"]
    )


def test_an_explicit_set_is_enforced_and_unknown_names_dropped(serve: Serve) -> None:
    served = serve(allowed_commands={"ps", "commands", "warp-drive"})
    conn = served.raw()
    info = conn.reply("commands")["data"]
    assert info["allowed_commands"] == ["commands", "ps"]
    assert info["restrictions_active"] is True
    assert conn.reply("ps")["status"] == "success"
    for command in ("status", "history", "subscribe", "stats"):
        payload = conn.reply(command)
        assert payload["code"] == 403, (command, payload)
        assert payload["data"]["allowed_commands"] == ["commands", "ps"]
    # An unknown command stays 400 (unknown), not 403.
    assert conn.reply("warp-drive")["code"] == 400


def test_a_forbidden_subscribe_streams_nothing(serve: Serve) -> None:
    served = serve(agents=[(agent("quick", "thread"), "q")], allowed_commands={"ps"})
    conn = served.raw()
    assert conn.reply("subscribe")["code"] == 403
    # Events happen; the connection's next line is still the reply to its next request.
    served.wait_state("q", "TERMINATED")  # its run that started with the orchestrator
    served.orchestrator.start_agent("q")  # and another (was: raced the first run)
    served.wait_state("q", "TERMINATED")
    assert conn.reply("ps")["status"] == "success"


def test_default_is_everything_without_restrictions(serve: Serve) -> None:
    info = serve().client().commands()
    assert info["allowed_commands"] == sorted(COMMANDS)
    assert info["restricted_commands"] == []
    assert info["restrictions_active"] is False


def test_permission_presets_do_not_share_a_name_with_the_alert_presets() -> None:
    # Two concepts, two names: notifiers.PRESETS are alert presets.
    from pyorchestrate.core import control
    from pyorchestrate.core.control import permissions

    assert "PRESETS" not in control.__all__
    assert control.PRESETS is permissions.PRESETS is PERMISSION_PRESETS  # old name
