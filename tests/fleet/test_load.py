"""Reading a fleet file: each bad input gets one line naming its path, all in one
report, and no secret is ever shown (issue 16, item 1)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pyorchestrate import CommandAgent
from pyorchestrate.core.orchestrator.config import RunMode
from pyorchestrate.fleet import FleetError, load_fleet

SECRET = "123456:s3cr3t-t0ken-value"

GOOD = """
[orchestrator]
name = "shop"
max_workers = 3

[agents.db]
command = ["sleep", "1000"]

[agents.api]
command = "sleep 1000"
depends_on = ["db"]
env = { API_TOKEN = "${API_TOKEN}", MODE = "${MODE:-prod}" }
supervision = { restart = "on-failure", max_restarts = 3 }
"""


def errors_of(path: Path, **environ: str) -> list[tuple[str, str]]:
    with pytest.raises(FleetError) as caught:
        load_fleet(path, environ=environ)
    assert all(SECRET not in f"{p} {r}" for p, r in caught.value.errors)
    assert SECRET not in str(caught.value)
    return caught.value.errors


def test_a_good_file_is_read_whole(write_fleet: Callable[[str], Path]) -> None:
    fleet = load_fleet(write_fleet(GOOD), environ={"API_TOKEN": SECRET})
    assert fleet.name == "shop"
    assert fleet.config.max_workers == 3
    assert list(fleet.agents) == ["db", "api"]
    api = fleet.agents["api"]
    assert api.agent_class is CommandAgent
    assert api.depends_on == ("db",)
    assert api.config.env == {"API_TOKEN": SECRET, "MODE": "prod"}
    assert api.config.supervision.restart == "on-failure"
    assert fleet.run_mode() is RunMode.DAEMON  # long-running commands
    assert fleet.run_mode(once=True) is RunMode.STOP_ON_EMPTY
    summary = str(fleet.summary())
    assert SECRET not in summary and "API_TOKEN" in summary


def test_every_problem_is_reported_at_once_with_its_path(
    write_fleet: Callable[[str], Path],
) -> None:
    path = write_fleet(
        """
[orchestrator]
max_workrs = 3

[agent.x]
command = ["true"]

[agents.backup]
command = ["sh", "-c", "backup"]
schedule = "61 * * * *"
scheduel = "0 3 * * *"

[agents.tz]
command = ["true"]
schedule = "0 3 * * *"
timezone = "Mars/Olympus"

[agents.both]
command = ["true"]
class = "pyorchestrate:CommandAgent"

[agents.neither]
depends_on = []

[agents.nomodule]
class = "no_such_module_xyz:Job"

[agents.noattr]
class = "pyorchestrate.core.agent.oneshot:NoSuchJob"

[agents.notagent]
class = "os.path:join"

[agents.a]
command = ["true"]
depends_on = ["b"]

[agents.b]
command = ["true"]
depends_on = ["a"]

[agents.typo]
command = ["true"]
depends_on = ["bakup"]

[agents.unset]
command = ["echo", "${NOT_SET_ANYWHERE}"]

[agents.looping]
class = "tests.agents:ForeverThread"
every = "15m"

[agents.early]
command = ["true"]
max_runtime = "1h"
"""
    )
    errors = dict(errors_of(path))
    assert (
        errors["orchestrator.max_workrs"] == "unknown key, did you mean 'max_workers'?"
    )
    assert errors["agent"].startswith("unknown key, did you mean 'agents'?")
    assert errors["agents.backup.scheduel"] == ("unknown key, did you mean 'schedule'?")
    assert "invalid cron expression '61 * * * *'" in errors["agents.backup.schedule"]
    assert "Mars/Olympus" in errors["agents.tz.timezone"]
    assert errors["agents.both"] == "give either 'command' or 'class' (both given)"
    assert errors["agents.neither"] == (
        "give either 'command' or 'class' (neither given)"
    )
    assert (
        "cannot import module 'no_such_module_xyz'" in errors["agents.nomodule.class"]
    )
    assert errors["agents.noattr.class"] == (
        "module 'pyorchestrate.core.agent.oneshot' has no attribute 'NoSuchJob'"
    )
    assert "is not an agent class" in errors["agents.notagent.class"]
    assert errors["agents.a.depends_on"] == "dependency cycle: a -> b -> a"
    assert errors["agents.typo.depends_on[0]"] == (
        "no agent named 'bakup' in the file; did you mean 'backup'?"
    )
    assert "ForeverThread" in errors["agents.looping.schedule"]
    assert errors["agents.early.max_runtime"] == (
        "needs a 'schedule' or 'every' in the table"
    )
    assert errors["agents.unset.command[1]"] == (
        "environment variable NOT_SET_ANYWHERE is not set (no default)"
    )


def test_interpolation_defaults_and_escapes(write_fleet: Callable[[str], Path]) -> None:
    path = write_fleet(
        """
[agents.job]
command = ["echo", "${WHO:-world}", "$${LITERAL}", "$HOME", "${WHO2}"]
"""
    )
    fleet = load_fleet(path, environ={"WHO2": "two"})
    assert fleet.agents["job"].config.command == [
        "echo",
        "world",
        "${LITERAL}",
        "$HOME",
        "two",
    ]
    assert fleet.name == "fleet"  # the file's stem


def test_a_secret_never_appears_in_an_error(write_fleet: Callable[[str], Path]) -> None:
    """A value that came from a secret-looking variable is masked even where a
    validator echoes the value it refused."""
    path = write_fleet(
        """
[agents.job]
command = ["true"]
config = { stop_signal = "${JOB_TOKEN}" }
"""
    )
    errors = dict(errors_of(path, JOB_TOKEN=SECRET))
    assert errors["agents.job.config.stop_signal"] == "no signal named '****'"


def test_a_python_agent_takes_no_env(write_fleet: Callable[[str], Path]) -> None:
    path = write_fleet(
        """
[agents.job]
class = "tests.agents:QuickThread"
env = { A = "b" }
"""
    )
    errors = dict(errors_of(path))
    assert "only a command agent takes it" in errors["agents.job.env"]


def test_a_config_typo_and_a_supervision_typo_name_their_path(
    write_fleet: Callable[[str], Path],
) -> None:
    path = write_fleet(
        """
[agents.job]
command = ["true"]
config = { ready_aftr = 1.0 }
supervision = { restart = "sometimes" }
"""
    )
    errors = dict(errors_of(path))
    assert "did you mean 'ready_after'" in errors["agents.job.config.ready_aftr"]
    assert "never" in errors["agents.job.supervision.restart"]


def test_not_toml_and_missing_file(short_tmp: Path) -> None:
    bad = short_tmp / "bad.toml"
    bad.write_text("[agents.x\ncommand = 1")
    assert "not valid TOML" in errors_of(bad)[0][1]
    assert "cannot read it" in errors_of(short_tmp / "missing.toml")[0][1]


def test_notify_secret_files_and_errors(
    write_fleet: Callable[[str], Path], short_tmp: Path
) -> None:
    """``token_file`` reads the token from a file; the notifier settings' own
    errors come back under ``notify.``, never with the secret."""
    (short_tmp / "token").write_text(SECRET + "\n")
    path = write_fleet(
        """
[agents.job]
command = ["true"]

[notify]
preset = "errors_only"
state_path = "none"

[notify.telegram]
token_file = "token"
chat_id = "42"
read_timeout = "slow"

[notify.email]
host = "127.0.0.1"
sender = "a@example.com"
recipients = ["b@example.com"]
password_file = "/nonexistent/secret"
"""
    )
    errors = dict(errors_of(path))
    assert "cannot read '/nonexistent/secret'" in errors["notify.email.password_file"]
    assert "notify.telegram.read_timeout" in errors
    good = (
        path.read_text()
        .replace('read_timeout = "slow"\n', "")
        .replace('password_file = "/nonexistent/secret"\n', "")
    )
    path.write_text(good)
    fleet = load_fleet(path, environ={})
    assert fleet.notify is not None
    token = fleet.notify.telegram.token  # type: ignore[attr-defined]
    assert token.get_secret_value() == SECRET
    assert SECRET in fleet.secrets
    assert SECRET not in str(fleet.summary())
    assert fleet.summary()["notify"] == {
        "channels": ["email", "telegram"],
        "preset": "errors_only",
    }


def test_a_typo_in_notify_gets_a_suggestion(write_fleet: Callable[[str], Path]) -> None:
    path = write_fleet(
        """
[agents.job]
command = ["true"]

[notify]
presett = "errors_only"

[notify.telegram]
tokn = "1:abc"
chat_id = 5

[notify.emial]
host = "127.0.0.1"
"""
    )
    errors = dict(errors_of(path))
    assert errors["notify.presett"] == "unknown key, did you mean 'preset'?"
    assert errors["notify.telegram.tokn"] == "unknown key, did you mean 'token'?"
    assert errors["notify.emial"] == "unknown key, did you mean 'email'?"


def test_a_notify_config_file_in_the_environment_is_a_warning(
    write_fleet: Callable[[str], Path],
    short_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = short_tmp / "notify.toml"
    other.write_text("preset = 'lifecycle'\n")
    monkeypatch.setenv("PYORCHESTRATE_NOTIFY_CONFIG_FILE", str(other))
    path = write_fleet(
        '[agents.job]\ncommand = ["true"]\n[notify]\nstate_path = "none"\n'
        '[notify.webhook]\nurl = "http://127.0.0.1:9/hook"\n'
    )
    fleet = load_fleet(path)
    assert (
        "notify",
        f"PYORCHESTRATE_NOTIFY_CONFIG_FILE is set ({other}): that "
        "file fills in what [notify] leaves out",
    ) in fleet.warnings
    assert fleet.notify.preset == "lifecycle"  # type: ignore[attr-defined]


def test_a_yaml_fleet_file_reads_like_toml(short_tmp: Path) -> None:
    path = short_tmp / "fleet.yaml"
    path.write_text(
        """
orchestrator:
  name: shop
  max_workers: 3
agents:
  db:
    command: [sleep, "1000"]
  api:
    command: sleep 1000
    depends_on: [db]
    env: {API_TOKEN: "${API_TOKEN}"}
    schedul: "0 3 * * *"
"""
    )
    errors = dict(errors_of(path, API_TOKEN=SECRET))
    assert errors == {"agents.api.schedul": "unknown key, did you mean 'schedule'?"}
    path.write_text(path.read_text().replace('    schedul: "0 3 * * *"\n', ""))
    fleet = load_fleet(path, environ={"API_TOKEN": SECRET})
    assert fleet.config.max_workers == 3
    assert fleet.agents["api"].config.env == {"API_TOKEN": SECRET}
    assert fleet.agents["db"].depends_on == ()

    path.write_text(f"agents:\n  x: [{SECRET}\n")
    (reason,) = (r for _, r in errors_of(path))
    assert reason.startswith("not valid YAML: ") and "(line 3, column 1)" in reason


def test_a_secret_written_in_the_file_is_masked_too(
    write_fleet: Callable[[str], Path],
) -> None:
    """A value under a secret-looking key is a secret even when written in the file
    (not through ${VAR}); the key name alone does not make other values secret."""
    path = write_fleet(
        f"""
[agents.tokenizer]
command = ["true"]
env = {{ API_KEY = "{SECRET}", MODE = "fast" }}
config = {{ stop_signal = "{SECRET}" }}
"""
    )
    errors = dict(errors_of(path))
    assert errors["agents.tokenizer.config.stop_signal"] == "no signal named '****'"
    path.write_text(
        path.read_text().replace(f'config = {{ stop_signal = "{SECRET}" }}', "")
    )
    fleet = load_fleet(path, environ={})
    assert fleet.secrets == {SECRET}  # not "fast", not "true"
