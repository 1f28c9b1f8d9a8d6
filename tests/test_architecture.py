"""The dependency rule: the core never imports notifiers, not even lazily."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import sys
import pyorchestrate
from pyorchestrate import Orchestrator, OrchestratorEvent, LoopingThreadAgent
import pyorchestrate.core.orchestrator, pyorchestrate.core.control.server
import pyorchestrate.core.control.client, pyorchestrate.testing
loaded = sorted(m for m in sys.modules if m == "notifiers" or m.startswith("notifiers."))
print("LOADED", loaded)
"""


def test_importing_the_core_loads_no_notifier_module() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "LOADED []" in result.stdout, result.stdout


def test_the_cli_help_loads_only_the_light_notify_plugin() -> None:
    """``pyorchestrate --help`` lists ``notify`` (an entry-point plugin, not an import
    of the core): that loads ``notifiers`` (lazy), the ``notifiers.cli`` package and
    its modules, and the stdlib-only ``notifiers.redact``; no channel library, no
    settings machinery."""
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['pyorchestrate', '--help']\n"
        "try:\n"
        "    runpy.run_module('pyorchestrate', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in "
        "('notifiers', 'pydantic_settings', 'tenacity', 'telegram', 'apprise')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    light = (
        "LOADED ['notifiers', 'notifiers.cli', 'notifiers.cli._common', "
        "'notifiers.cli._durations', 'notifiers.cli._format', "
        "'notifiers.cli._statefile', 'notifiers.cli.mutes', 'notifiers.cli.outbox', "
        "'notifiers.cli.sending', 'notifiers.cli.status', 'notifiers.redact']"
    )
    assert light in result.stdout, result.stdout
    assert "notify" in result.stdout  # listed in the help


def test_no_core_source_names_notifiers() -> None:
    pattern = re.compile(
        r"^\s*(from|import)\s+notifiers\b|import_module\([\"']notifiers", re.M
    )
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "pyorchestrate").rglob("*.py")
        if pattern.search(path.read_text())
    ]
    assert offenders == []
