"""``pyorchestrate create APP``: a small application that runs as generated.

One agent (``Worker``), and the ``errors_only`` alert preset on the channels that
``PYORCHESTRATE_NOTIFY_*`` configure (``notifiers.attach_from_settings``); with no
channel, or without the ``notify`` extra, the application runs without alerts and
prints a hint. ``notifiers`` is imported only when a channel is configured.

Re-running it keeps every file that already exists (``--force`` overwrites).

pyorchestrate is not on a package index, so the install lines it prints and writes
(:func:`install_command`) name where this pyorchestrate came from: its checkout, the
directory or VCS URL it was installed from, or the project's name only as a last resort.
"""

from __future__ import annotations

import importlib.metadata
import json
import keyword
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["ScaffoldReport", "create_app", "install_command"]

_MODELS = '''"""The agent of {name}. Process agents must live in an importable module like this."""

from __future__ import annotations

from pyorchestrate.core.agent import LoopingProcessAgent


class Worker(LoopingProcessAgent):
    """Does ``limit`` units of work in its own process."""

    class Config(LoopingProcessAgent.Config):
        limit: int = 5
        pause: float = 0.1
        fail_at: int = 0  # > 0: that unit raises (``python starter.py --fail``)

    def cycle(self) -> None:
        unit = self.cycles_done + 1
        if unit == self.config.fail_at:
            raise RuntimeError(f"unit {{unit}} failed")
        print(f"{{self.name}}: unit {{unit}} of {{self.config.limit}}", flush=True)
        self.wait(self.config.pause)
'''

_SETTINGS = '''"""How {name}'s orchestrator runs."""

from __future__ import annotations

from pyorchestrate.core.orchestrator import Orchestrator, RunMode


def build_config(daemon: bool = False) -> Orchestrator.Config:
    """STOP_ON_EMPTY by default (exits when the agents are done); DAEMON with --daemon."""
    return Orchestrator.Config(
        run_mode=RunMode.DAEMON if daemon else RunMode.STOP_ON_EMPTY,
        check_interval=0.5,
        enable_command_interface=True,  # `pyorchestrate ps` talks to it
    )
'''

_ALERTS = '''"""{name}'s alerts: one preset on the channels that PYORCHESTRATE_NOTIFY_* name.

Alerts need the notify extra (``INSTALL_NOTIFY``). Without a channel, or without
that extra, {name} runs without alerts and says so: ``notifiers`` is imported only
when a channel is configured.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

PREFIX = "PYORCHESTRATE_NOTIFY_"
CHANNELS = ("TELEGRAM__", "EMAIL__", "SLACK__", "WEBHOOK__", "APPRISE__")
PRESET = "errors_only"  # or "lifecycle"; PYORCHESTRATE_NOTIFY_PRESET overrides it
INSTALL_NOTIFY = {install_notify!r}

HINT = (
    "No alert channel configured: running without alerts. For alerts, set e.g.\\n"
    "  PYORCHESTRATE_NOTIFY_TELEGRAM__TOKEN and PYORCHESTRATE_NOTIFY_TELEGRAM__CHAT_ID,\\n"
    "  or PYORCHESTRATE_NOTIFY_WEBHOOK__URL=json://host/path\\n"
    "(with " + INSTALL_NOTIFY + ")"
)


def channel_configured(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment names a channel (or a notify TOML file)."""
    prefixes = tuple(PREFIX + channel for channel in CHANNELS)
    return bool(environ.get(PREFIX + "CONFIG_FILE")) or any(
        name.startswith(prefixes) for name in environ
    )


def attach_alerts(orchestrator: Any) -> Any | None:
    """Attach the preset to the configured channels; ``None`` (and a hint) if none.

    Call ``.detach()`` on the result after ``orchestrator.join()``: it flushes.
    """
    if not channel_configured():
        print(HINT, flush=True)
        return None
    try:
        from {notifiers} import attach_from_settings, load_settings
    except ImportError:
        print(
            "An alert channel is configured but notifiers is not installed "
            f"({{INSTALL_NOTIFY}}): running without alerts.",
            flush=True,
        )
        return None
    preset = os.environ.get(PREFIX + "PRESET", PRESET)
    alerts = attach_from_settings(orchestrator, load_settings(preset=preset))
    print(f"Alerts: {{preset}} on {{', '.join(alerts.dispatcher.channels)}}", flush=True)
    return alerts
'''

_STARTER = '''"""Start {name}: python starter.py [--daemon] [--fail]"""

from __future__ import annotations

import argparse
import logging

from configurations.alerts import attach_alerts
from configurations.settings import build_config
from models.agents import Worker

from pyorchestrate.core.orchestrator import Orchestrator
from pyorchestrate.core.utilities.event import OrchestratorEvent


def on_error(agent_name: str, error_message: str) -> None:
    print(f"ERROR: {{agent_name}} failed: {{error_message}}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="{name}")
    parser.add_argument("--daemon", action="store_true", help="stay up until Ctrl+C")
    parser.add_argument("--fail", action="store_true", help="fail once: see an alert")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    orchestrator = Orchestrator("{name}", config=build_config(daemon=args.daemon))
    worker_config = {{"fail_at": 3}} if args.fail else None
    orchestrator.register_agent(Worker, "worker", custom_config=worker_config)
    orchestrator.register_event(OrchestratorEvent.AGENT_ERROR, on_error)
    alerts = attach_alerts(orchestrator)
    orchestrator.start()
    print(f"{name} is running; socket: {{orchestrator.command_socket_path}}", flush=True)
    orchestrator.join()
    if alerts is not None:
        alerts.detach()  # flushes the alerts still on their way
    print("{name} finished", flush=True)
    return orchestrator.exit_code  # 0 ok, 1 an agent failed, 130/143 interrupted


if __name__ == "__main__":
    raise SystemExit(main())
'''

_TEST = '''"""{name}'s own tests: the agent runs under a real orchestrator, and a failure is
alerted (to a local fake webhook). That test needs ``notifiers.testing``, which needs
the demo extra (the notify channels and aiosmtpd); without it, it is skipped."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from configurations.alerts import attach_alerts  # noqa: E402
from models.agents import Worker  # noqa: E402

from pyorchestrate.core.orchestrator import Orchestrator  # noqa: E402
from pyorchestrate.core.utilities.event import OrchestratorEvent  # noqa: E402


@pytest.fixture(autouse=True)
def no_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    """No alert channel from the environment the tests happen to run in."""
    for name in list(os.environ):
        if name.startswith("PYORCHESTRATE_NOTIFY_"):
            monkeypatch.delenv(name)


def test_the_worker_runs_and_terminates_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    orchestrator = Orchestrator("{name}-test", {{"enable_command_interface": False}})
    errors: list[str] = []
    orchestrator.register_event(
        OrchestratorEvent.AGENT_ERROR, lambda error_message: errors.append(error_message)
    )
    orchestrator.register_agent(Worker, "worker", custom_config={{"pause": 0.0}})
    assert attach_alerts(orchestrator) is None  # no channel: runs without alerts
    assert "No alert channel configured" in capsys.readouterr().out
    orchestrator.start()
    assert orchestrator.join() == []
    assert errors == []
    states = {{a["name"]: a["lifecycle_state"] for a in orchestrator.report()["agents"]}}
    assert states == {{"worker": "TERMINATED"}}


def test_a_failure_is_alerted(monkeypatch: pytest.MonkeyPatch) -> None:
    testing = pytest.importorskip(
        "notifiers.testing", reason={testing_reason!r}
    )
    with testing.WebhookSink() as sink:
        monkeypatch.setenv("PYORCHESTRATE_NOTIFY_WEBHOOK__URL", sink.json_url("/alerts"))
        monkeypatch.setenv("PYORCHESTRATE_NOTIFY_STATE_PATH", "none")
        orchestrator = Orchestrator("{name}-test", {{"enable_command_interface": False}})
        orchestrator.register_agent(
            Worker, "worker", custom_config={{"pause": 0.0, "fail_at": 2}}
        )
        alerts = attach_alerts(orchestrator)
        assert alerts is not None
        orchestrator.start()
        orchestrator.join()
        alerts.detach()
        requests = sink.wait_for(1)
    assert "worker failed" in requests[0].json["title"]
    assert "unit 2 failed" in requests[0].json["message"]
'''


def _checkout_of(package_dir: Path) -> Path | None:
    """The source checkout that ``package_dir`` (``pyorchestrate/``) lives in, if any."""
    root = package_dir.parent
    try:
        pyproject = (root / "pyproject.toml").read_text("utf-8")
    except OSError:
        return None
    return root if 'name = "pyorchestrate"' in pyproject else None


def install_command(extra: str, *, package_dir: Path | None = None) -> str:
    """The ``pip install`` line that adds ``extra`` to this pyorchestrate.

    Imported from a checkout (an editable install, or ``PYTHONPATH``):
    ``pip install -e '/path/to/checkout[extra]'``. Installed from a directory or a VCS
    URL: that source, as pip recorded it (``direct_url.json``, PEP 610). Otherwise the
    project's name.
    """
    if package_dir is None:
        package_dir = Path(__file__).resolve().parents[1]
    checkout = _checkout_of(package_dir)
    if checkout is not None:
        return f"pip install -e {shlex.quote(f'{checkout}[{extra}]')}"
    requirement = f"pyorchestrate[{extra}]"
    try:
        recorded = importlib.metadata.distribution("pyorchestrate").read_text(
            "direct_url.json"
        )
        origin = json.loads(recorded or "{}")
    except (importlib.metadata.PackageNotFoundError, ValueError):
        origin = {}
    url = origin.get("url", "") if isinstance(origin, dict) else ""
    vcs = origin.get("vcs_info") if isinstance(origin, dict) else None
    if isinstance(vcs, dict) and vcs.get("vcs"):
        requirement = f"{requirement} @ {vcs['vcs']}+{url}"
    elif url.startswith("file://"):
        requirement = f"{unquote(urlsplit(url).path)}[{extra}]"
    return f"pip install {shlex.quote(requirement)}"


@dataclass
class ScaffoldReport:
    """What :func:`create_app` did: ``{relative path: "created"|"kept"|"replaced"}``."""

    root: Path
    files: dict[str, str] = field(default_factory=dict)

    def next_steps(self) -> list[str]:
        """What to run next, as plain text lines (install lines from :func:`install_command`)."""
        go = f"cd {shlex.quote(str(self.root))}"
        return [
            f"Next: {go} && python starter.py   (runs the worker once, then exits)",
            "      python starter.py --daemon   (stays up until Ctrl+C; then, in "
            "another shell: pyorchestrate ps)",
            f"Alerts: {install_command('notify')}, then set PYORCHESTRATE_NOTIFY_* "
            "(python starter.py --fail sends one)",
            f"Tests: {install_command('demo')}, then python -m pytest tests",
        ]


def create_app(root: Path, *, force: bool = False) -> ScaffoldReport:
    """Write the application skeleton under ``root``.

    Raises:
        ValueError: ``root`` exists and is not a directory, or its name is unusable.
    """
    name = root.name
    if (
        not name
        or not (name.replace("-", "_").isidentifier())
        or keyword.iskeyword(name)
    ):
        raise ValueError(
            f"{name!r} is not a usable application name (letters, digits, _ and -)"
        )
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root} exists and is not a directory")
    files = {
        "models/__init__.py": '"""Agents."""\n',
        "models/agents.py": _MODELS.format(name=name),
        "configurations/__init__.py": '"""Settings."""\n',
        "configurations/settings.py": _SETTINGS.format(name=name),
        # The core's sources never name notifiers as an import (tests/test_architecture).
        "configurations/alerts.py": _ALERTS.format(
            name=name, notifiers="notifiers", install_notify=install_command("notify")
        ),
        "starter.py": _STARTER.format(name=name),
        "tests/test_app.py": _TEST.format(
            name=name,
            testing_reason="needs notifiers.testing (the demo extra: aiosmtpd, the "
            f"notify channels): {install_command('demo')}",
        ),
    }
    report = ScaffoldReport(root)
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and not force:
            report.files[relative] = "kept"
            continue
        action = "replaced" if path.exists() else "created"
        path.write_text(text)
        report.files[relative] = action
    return report
