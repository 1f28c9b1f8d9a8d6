"""FleetRunner from Python: what a reload reports and applies, in-process."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pyorchestrate.core.errors import LifecycleError
from pyorchestrate.fleet import FleetError, FleetRunner, load_fleet

pytestmark = pytest.mark.process  # real child processes

FILE = """
[orchestrator]
enable_command_interface = false
check_interval = 0.05

[agents.loop]
class = "tests.agents:CounterThread"

[agents.job]
command = ["sleep", "1000"]
"""


def test_a_reload_leaves_a_running_python_agent_alone_and_reports_what_it_did(
    write_fleet: Callable[[str], Path],
) -> None:
    path = write_fleet(FILE)
    runner = FleetRunner(load_fleet(path))
    with pytest.raises(LifecycleError, match="not running"):
        runner.reload()
    try:
        runner.start()
        loop = runner.orchestrator.get_agent("loop")
        instance = loop.agent
        assert instance is not None and runner.orchestrator.get_agent("job").pid

        path.write_text(
            FILE.replace("check_interval = 0.05", "check_interval = 0.1")
            + '\n[agents.extra]\ncommand = ["true"]\n'
        )
        plan = runner.reload(timeout=30)
        assert plan.added == ("extra",)
        assert plan.unchanged == ("loop", "job")
        assert plan.touched == ("extra",)
        assert plan.warnings and "[orchestrator] changed" in plan.warnings[0]
        assert runner.orchestrator.get_agent("loop").agent is instance  # untouched
        assert runner.orchestrator.get_agent("loop") is loop

        path.write_text("[agents.loop]\nclass = 'tests.agents:NoSuchAgent'\n")
        with pytest.raises(FleetError, match="has no attribute 'NoSuchAgent'"):
            runner.reload(timeout=30)
        assert set(runner.orchestrator.agents) == {"loop", "job", "extra"}
        assert runner.orchestrator.get_agent("loop").agent is instance
    finally:
        runner.close()
    assert runner.orchestrator.get_agent("loop").state.value == "TERMINATED"


def test_a_scheduled_agent_added_by_a_reload_runs_on_its_schedule(
    write_fleet: Callable[[str], Path], short_tmp: Path
) -> None:
    marker = short_tmp / "ran"
    path = write_fleet(FILE)
    runner = FleetRunner(load_fleet(path))
    try:
        runner.start()
        path.write_text(
            FILE
            + f"""
[agents.tick]
command = ["sh", "-c", "echo tick >> {marker}"]
every = "0.2s"
"""
        )
        assert runner.reload(timeout=30).added == ("tick",)
        deadline = time.monotonic() + 30
        while not (marker.exists() and marker.read_text().count("tick") >= 2):
            assert time.monotonic() < deadline, "the scheduled agent never ran twice"
            time.sleep(0.05)
    finally:
        runner.close()


def test_a_reload_that_changes_notify_re_attaches_the_alerts(
    write_fleet: Callable[[str], Path],
) -> None:
    from notifiers.testing import FakeTelegramServer

    def notify(chat: int) -> str:
        return f"""
[notify]
preset = "errors_only"
state_path = "none"
rate_limiting = false

[notify.telegram]
token = "123456:fleet-reload-notify-token"
chat_id = {chat}
base_url = "{telegram.base_url}"
"""

    with FakeTelegramServer() as telegram:
        one = FILE + '\n[agents.boom]\ncommand = ["sh", "-c", "exit 3"]\n'
        path = write_fleet(one + notify(1))
        runner = FleetRunner(load_fleet(path))
        try:
            runner.start()
            first = telegram.wait_for(1, timeout=30)
            assert [m["chat_id"] for m in first] == ["1"]
            path.write_text(
                one + '\n[agents.bang]\ncommand = ["sh", "-c", "exit 4"]\n' + notify(2)
            )
            plan = runner.reload(timeout=30)
            assert plan.added == ("bang",)
            messages = telegram.wait_for(2, timeout=30)
            assert messages[1]["chat_id"] == "2"
            assert "bang" in messages[1]["text"]
        finally:
            runner.close()
