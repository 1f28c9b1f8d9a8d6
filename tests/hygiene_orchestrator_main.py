"""An orchestrator to run as a process of its own, for the process-hygiene tests.

``python -m tests.hygiene_orchestrator_main MODE WORKDIR MARKER`` (cwd the repository
root, ``PYTHONPATH`` naming it) starts a DAEMON orchestrator, without the command
interface, with three :class:`~tests.agents.HygieneProcess` agents whose
grandchildren carry ``MARKER``; prints ``READY {"agent": pid, ...}`` once every agent
is READY and ``join()`` has its signal handlers in place, then joins. MODE:

* ``orphan``: ``plain`` (one grandchild), ``mixed`` (two grandchildren, one ignoring
  SIGTERM) and ``stubborn`` (two grandchildren; the agent itself ignores the stop
  event and catches SIGTERM): the test SIGKILLs this process and expects the agents'
  parent watch to end all of them;
* ``sigint``: three agents with one grandchild each that record every SIGINT they get
  in ``WORKDIR/<name>.log``: the test sends SIGINT to this process's group.

When ``join()`` returns it prints ``SHUTDOWN {...}`` (survivors, exit codes).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from pyorchestrate import Orchestrator, OrchestratorEvent, RunMode
from pyorchestrate.testing import EventRecorder, wait_until
from tests.agents import HygieneProcess


def agents_for(mode: str, workdir: Path, marker: str) -> dict[str, dict[str, Any]]:
    """The keyword arguments of each agent of ``mode``, by name."""
    if mode == "orphan":
        return {
            "plain": {"marker": marker, "children": 1},
            "mixed": {"marker": marker, "children": 2},
            "stubborn": {
                "marker": marker,
                "children": 2,
                "ignore_stop": True,
                "catch": ("SIGTERM",),
                "log": str(workdir / "stubborn.log"),
            },
        }
    if mode == "sigint":
        return {
            name: {
                "marker": marker,
                "children": 1,
                "catch": ("SIGINT",),
                "log": str(workdir / f"{name}.log"),
            }
            for name in ("a", "b", "c")
        }
    raise SystemExit(f"unknown mode {mode!r}")


def handlers_installed() -> bool:
    """Whether ``join()`` has put its SIGINT and SIGTERM handlers in place."""
    return (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        and signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    )


def main(argv: list[str]) -> int:
    mode, workdir, marker = argv[0], Path(argv[1]), argv[2]
    orchestrator = Orchestrator(
        "hygiene",
        Orchestrator.Config(
            run_mode=RunMode.DAEMON,
            enable_command_interface=False,
            check_interval=0.05,
            agent_start_timeout=20.0,
            agent_stop_timeout=2.0,
            termination_grace=0.5,
        ),
    )
    recorder = EventRecorder().attach(orchestrator)
    specs = agents_for(mode, workdir, marker)
    for name, kwargs in specs.items():
        orchestrator.register_agent(HygieneProcess, name, **kwargs)
    orchestrator.start()
    for name in specs:
        recorder.wait_for(OrchestratorEvent.AGENT_READY, name, timeout=30)
    pids = {name: orchestrator.get_agent(name).pid for name in specs}

    def announce() -> None:
        if wait_until(handlers_installed, timeout=20):
            print("READY", json.dumps(pids), flush=True)
        else:
            print("NO-HANDLERS", flush=True)

    threading.Thread(target=announce, daemon=True).start()
    survivors = orchestrator.join()
    codes = {name: orchestrator.get_agent(name).exit_code for name in specs}
    print("SHUTDOWN", json.dumps({"survivors": survivors, "exit_codes": codes}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
