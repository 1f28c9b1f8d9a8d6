"""Reloading a running fleet (``pyorchestrate reload``, SIGHUP) like
``supervisorctl update``: added agents start, removed ones stop, changed ones
restart, the others are not touched, and an invalid file changes nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from pyorchestrate.core.control.client import ControlClient
from pyorchestrate.core.errors import CommandFailed

from .conftest import fleet_env, socket_line

pytestmark = pytest.mark.process  # real child processes

SECRET = "tok-0a1b2c3d4e5f"


def fleet_file(short_tmp: Path, agents: str) -> str:
    return f"""
[orchestrator]
{socket_line(short_tmp)}
check_interval = 0.2
{agents}
"""


V1 = """
[agents.keep]
command = ["sleep", "1000"]
env = { API_TOKEN = "${API_TOKEN}" }

[agents.change]
command = ["sleep", "1000"]
env = { LEVEL = "1" }

[agents.remove]
command = ["sleep", "1000"]

[agents.done]
command = ["true"]
"""

V2 = """
[agents.keep]
command = ["sleep", "1000"]
env = { API_TOKEN = "${API_TOKEN}" }

[agents.change]
command = ["sleep", "1000"]
env = { LEVEL = "2" }

[agents.done]
command = ["true"]

[agents.new]
command = ["sleep", "1000"]
depends_on = ["keep"]
"""


def reload_cli(socket_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyorchestrate", "reload", "--socket", str(socket_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=fleet_env(),
    )


def up(agents: dict[str, dict[str, Any]], *names: str) -> bool:
    return all(
        name in agents and agents[name]["lifecycle_state"] == "READY" for name in names
    )


def test_reload_adds_removes_restarts_and_leaves_the_rest_alone(
    write_fleet: Callable[[str], Path],
    short_tmp: Path,
    run_fleet: Callable[..., Any],
) -> None:
    path = write_fleet(fleet_file(short_tmp, V1))
    with run_fleet(path, env=fleet_env(API_TOKEN=SECRET)) as fleet:
        before = fleet.wait_for(
            lambda a: (
                up(a, "keep", "change", "remove")
                and a["done"]["lifecycle_state"] == "TERMINATED"
            ),
            "v1 up",
        )
        path.write_text(fleet_file(short_tmp, V2))
        result = reload_cli(fleet.socket_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == (
            "reloaded: added new; removed remove; changed change; 2 unchanged"
        )
        after = fleet.wait_for(
            lambda a: (
                "remove" not in a
                and up(a, "keep", "change", "new")
                and a["change"]["pid"] != before["change"]["pid"]
            ),
            "v2 applied",
        )
        assert list(after) == ["keep", "done", "change", "new"]
        assert after["keep"]["pid"] == before["keep"]["pid"]  # untouched, still running
        assert after["done"]["lifecycle_state"] == "TERMINATED"  # not run again
        assert fleet.request("status", "done")["data"]["starts"] == 1
        assert not psutil.pid_exists(before["remove"]["pid"])
        keep = fleet.request("status", "keep")["data"]
        assert keep["config"]["env"] == {"API_TOKEN": "****"}
        change = fleet.request("status", "change")["data"]
        assert change["config"]["env"] == {"LEVEL": "2"}

        # An invalid file changes nothing; the errors come back (and are logged),
        # without the secret the file interpolates.
        path.write_text(
            fleet_file(
                short_tmp,
                V2
                + """
[agents.broken]
command = ["true"]
dependson = ["keep"]
config = { stop_signal = "${API_TOKEN}" }
""",
            )
        )
        refused = reload_cli(fleet.socket_path)
        assert refused.returncode == 1
        assert "agents.broken.dependson: unknown key, did you mean 'depends_on'?" in (
            refused.stderr
        )
        assert "agents.broken.config.stop_signal: no signal named '****'" in (
            refused.stderr
        )
        assert SECRET not in refused.stdout + refused.stderr
        with (
            ControlClient(fleet.socket_path, timeout=10.0) as client,
            pytest.raises(CommandFailed) as caught,
        ):
            client.reload()
        assert {
            "path": "agents.broken.config.stop_signal",
            "reason": "no signal named '****'",
        } in caught.value.data["errors"]
        now = fleet.agents()  # same agents, same states, same pids
        assert {n: (a["lifecycle_state"], a["pid"]) for n, a in now.items()} == {
            n: (a["lifecycle_state"], a["pid"]) for n, a in after.items()
        }

        # SIGHUP reloads too: 'new' goes.
        path.write_text(fleet_file(short_tmp, V2.split("[agents.new]")[0]))
        fleet.process.send_signal(signal.SIGHUP)
        last = fleet.wait_for(lambda a: "new" not in a, "SIGHUP reload")
        assert last["keep"]["pid"] == before["keep"]["pid"]
        assert fleet.request("shutdown")["status"] == "success"
        assert fleet.finish() == 0
    assert "reload refused, nothing changed" in fleet.stderr
    assert "agents.broken.dependson" in fleet.stderr
    assert SECRET not in fleet.stderr + fleet.stdout
