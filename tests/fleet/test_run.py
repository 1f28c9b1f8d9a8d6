"""``pyorchestrate run FILE`` and ``pyorchestrate check FILE`` as a user runs them:
real subprocesses, real command jobs (issue 16, item 2)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import FleetProcess, fleet_env, socket_line

pytestmark = pytest.mark.process  # real child processes

SECRET = "tok-9f8e7d6c5b4a"


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyorchestrate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=fleet_env(**env),
    )


def test_run_once_runs_every_job_and_exits_0(
    write_fleet: Callable[[str], Path], short_tmp: Path
) -> None:
    out = short_tmp / "out.txt"
    path = write_fleet(
        f"""
[orchestrator]
{socket_line(short_tmp)}

[agents.second]
command = ["sh", "-c", "echo second >> {out}"]
depends_on = ["first"]

[agents.first]
command = ["sh", "-c", "echo first >> {out}"]

[agents.nightly]
command = ["sh", "-c", "echo nightly >> {out}"]
schedule = "0 3 * * *"
"""
    )
    result = cli("run", str(path), "--once")
    assert result.returncode == 0, result.stderr
    # --once runs the scheduled job too, now.
    assert sorted(out.read_text().split()) == ["first", "nightly", "second"]
    # The log, on stderr: 'second' waited for 'first' to start.
    log = result.stderr
    assert log.index("agent 'first' RUNNING") < log.index("agent 'second' STARTING")


def test_run_exits_1_when_a_job_fails(
    write_fleet: Callable[[str], Path], short_tmp: Path
) -> None:
    path = write_fleet(
        f"""
[orchestrator]
{socket_line(short_tmp)}

[agents.ok]
command = ["true"]

[agents.broken]
command = ["sh", "-c", "exit 3"]
"""
    )
    result = cli("run", str(path), "--once")
    assert result.returncode == 1, result.stderr
    assert "Error: agent failed: broken (TERMINATED, exit_code)" in result.stderr
    assert "exited with code 3" in result.stderr


def test_an_invalid_file_exits_2_without_its_secret(
    write_fleet: Callable[[str], Path],
) -> None:
    path = write_fleet(
        """
[agents.job]
command = ["true"]
config = { stop_signal = "${API_TOKEN}" }
"""
    )
    for command in ("run", "check"):
        result = cli(command, str(path), API_TOKEN=SECRET)
        assert result.returncode == 2
        assert "agents.job.config.stop_signal: no signal named '****'" in result.stderr
        assert SECRET not in result.stdout + result.stderr


def test_check_prints_the_resolved_fleet_masked_and_warns_of_missing_programs(
    write_fleet: Callable[[str], Path], short_tmp: Path
) -> None:
    script = short_tmp / "job.sh"
    script.write_text("#!/bin/sh\necho hi\n")  # not executable
    path = write_fleet(
        f"""
[agents.api]
command = ["sleep", "1000"]
env = {{ API_TOKEN = "${{API_TOKEN}}", REGION = "eu" }}

[agents.ghost]
command = ["no-such-program-xyz", "--now"]

[agents.script]
command = ["{script}"]

[agents.elsewhere]
command = ["true"]
cwd = "{short_tmp}/no-such-dir"

[agents.nightly]
command = ["sh", "-c", "curl -H 'Authorization: ${{API_TOKEN}}' localhost"]
schedule = "0 3 * * *"
depends_on = ["api"]
"""
    )
    result = cli("check", str(path), API_TOKEN=SECRET)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("fleet (daemon) from ")
    assert lines[1].split() == [
        "AGENT", "KIND", "RUNS", "SCHEDULE", "DEPENDS", "ON", "RESTART", "ENV"
    ]  # fmt: skip
    assert "API_TOKEN=**** REGION=eu" in lines[2]
    assert "Authorization: ****" in result.stdout
    assert "cron '0 3 * * *' UTC" in result.stdout
    assert "agents.ghost.command: 'no-such-program-xyz' is not found on PATH" in (
        result.stderr
    )
    assert "agents.script.command" in result.stderr
    assert "is not executable" in result.stderr
    assert f"agents.elsewhere.cwd: '{short_tmp}/no-such-dir': no such directory" in (
        result.stderr
    )

    as_json = cli("check", "--json", str(path), API_TOKEN=SECRET)
    assert as_json.returncode == 0
    assert SECRET not in as_json.stdout


def test_run_is_a_daemon_until_shutdown(
    write_fleet: Callable[[str], Path],
    short_tmp: Path,
    run_fleet: Callable[..., Any],
) -> None:
    path = write_fleet(
        f"""
[orchestrator]
{socket_line(short_tmp)}

[agents.once]
command = ["true"]

[agents.worker]
command = ["sleep", "1000"]
"""
    )
    with run_fleet(path) as fleet:
        fleet_process: FleetProcess = fleet
        fleet_process.wait_for(
            lambda a: (
                a["once"]["lifecycle_state"] == "TERMINATED"
                and a["worker"]["lifecycle_state"] == "READY"
            ),
            "once done, worker up",
        )
        assert fleet_process.request("shutdown")["status"] == "success"
        assert fleet_process.finish() == 0


_PROBE = """
import sys, runpy
sys.argv = ['pyorchestrate', 'check', sys.argv[1]]
try:
    runpy.run_module('pyorchestrate', run_name='__main__')
except SystemExit as exc:
    print('EXIT', exc.code)
print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] == 'notifiers'))
"""


def test_notifiers_are_loaded_only_for_a_notify_table(
    write_fleet: Callable[[str], Path],
) -> None:
    """The core never imports notifiers: the [notify] table reaches them through
    the pyorchestrate.notify entry points, looked up only when it is there."""
    plain = write_fleet('[agents.job]\ncommand = ["true"]\n', "plain.toml")
    alerts = write_fleet(
        '[agents.job]\ncommand = ["true"]\n[notify]\nstate_path = "none"\n'
        '[notify.webhook]\nurl = "http://127.0.0.1:9/hook"\n',
        "alerts.toml",
    )
    for path, loads in ((plain, False), (alerts, True)):
        result = subprocess.run(
            [sys.executable, "-c", _PROBE, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            env=fleet_env(),
        )
        assert "EXIT 0" in result.stdout, result.stderr
        loaded = result.stdout.split("LOADED ")[1]
        assert ("notifiers.settings" in loaded) is loads, loaded
