"""``pyorchestrate create APP``: a small application that runs as generated.

Re-running it keeps every file that already exists (``--force`` overwrites).
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ScaffoldReport", "create_app"]

_MODELS = '''"""The agents of {name}. Process agents must live in an importable module like this."""

from __future__ import annotations

from pyorchestrate.core.agent import LoopingProcessAgent, PeriodicThreadAgent


class Heartbeat(PeriodicThreadAgent):
    """Prints a line every ``execution_interval`` seconds, ``limit`` times."""

    class Config(PeriodicThreadAgent.Config):
        execution_interval: float = 0.5
        limit: int = 3

    def runner(self) -> None:
        print(f"{{self.name}}: beat {{self.cycles_done + 1}}", flush=True)


class Worker(LoopingProcessAgent):
    """Does ``limit`` units of work in its own process."""

    class Config(LoopingProcessAgent.Config):
        limit: int = 5
        pause: float = 0.1

    def cycle(self) -> None:
        print(f"{{self.name}}: unit {{self.cycles_done + 1}} of {{self.config.limit}}", flush=True)
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

_STARTER = '''"""Start {name}: python starter.py [--daemon]"""

from __future__ import annotations

import argparse
import logging

from configurations.settings import build_config
from models.agents import Heartbeat, Worker

from pyorchestrate.core.orchestrator import Orchestrator
from pyorchestrate.core.utilities.event import OrchestratorEvent


def on_error(agent_name: str, error_message: str) -> None:
    print(f"ALERT: {{agent_name}} failed: {{error_message}}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="{name}")
    parser.add_argument("--daemon", action="store_true", help="stay up until Ctrl+C")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    orchestrator = Orchestrator("{name}", config=build_config(daemon=args.daemon))
    orchestrator.register_agent(Heartbeat, "heartbeat")
    orchestrator.register_agent(Worker, "worker")
    orchestrator.add_dependency("worker", ["heartbeat"])
    orchestrator.register_event(OrchestratorEvent.AGENT_ERROR, on_error)
    orchestrator.start()
    print(f"{name} is running; socket: {{orchestrator.command_socket_path}}", flush=True)
    orchestrator.join()
    print("{name} finished", flush=True)


if __name__ == "__main__":
    main()
'''

_TEST = '''"""{name}'s own test: the agents run to completion under a real orchestrator."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.agents import Heartbeat, Worker  # noqa: E402

from pyorchestrate.core.orchestrator import Orchestrator  # noqa: E402
from pyorchestrate.core.utilities.event import OrchestratorEvent  # noqa: E402


def test_agents_run_and_terminate_cleanly() -> None:
    orchestrator = Orchestrator("{name}-test", {{"enable_command_interface": False}})
    errors: list[str] = []
    orchestrator.register_event(
        OrchestratorEvent.AGENT_ERROR, lambda error_message: errors.append(error_message)
    )
    orchestrator.register_agent(Heartbeat, "heartbeat", custom_config={{"execution_interval": 0.01}})
    orchestrator.register_agent(Worker, "worker", custom_config={{"pause": 0.0}})
    orchestrator.start()
    assert orchestrator.join() == []
    assert errors == []
    states = {{a["name"]: a["lifecycle_state"] for a in orchestrator.report()["agents"]}}
    assert states == {{"heartbeat": "TERMINATED", "worker": "TERMINATED"}}
'''


@dataclass
class ScaffoldReport:
    """What :func:`create_app` did: ``{relative path: "created"|"kept"|"replaced"}``."""

    root: Path
    files: dict[str, str] = field(default_factory=dict)


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
        "starter.py": _STARTER.format(name=name),
        "tests/test_app.py": _TEST.format(name=name),
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
