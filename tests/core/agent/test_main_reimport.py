"""What docs/getting-started.md says of the script that starts process agents: its
top-level code runs again in every process agent, the guarded part does not."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
from multiprocessing import forkserver
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import os
    from pathlib import Path

    Path(os.environ["LOG"]).open("a").write(f"top-level {os.getpid()}\\n")

    from pyorchestrate import Orchestrator, OrchestratorConfig
    from tests.agents import agent

    if __name__ == "__main__":
        Path(os.environ["LOG"]).open("a").write("guarded\\n")
        orchestrator = Orchestrator("m", OrchestratorConfig(enable_command_interface=False))
        for n in range(3):
            orchestrator.register_agent(agent("quick", "process"), f"a{n}")
        orchestrator.start()
        assert orchestrator.join() == []
    """
)


@pytest.mark.process
@pytest.mark.slow
@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_the_scripts_top_level_runs_in_every_process_agent(
    tmp_path: Path, method: str
) -> None:
    script = tmp_path / "starter.py"
    script.write_text(
        SCRIPT.replace(
            "enable_command_interface=False",
            f"enable_command_interface=False, start_method={method!r}",
        )
    )
    log = tmp_path / "log"
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            "LOG": str(log),
            "XDG_STATE_HOME": os.environ["XDG_STATE_HOME"],  # its log files
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = log.read_text().splitlines()
    assert lines.count("guarded") == 1
    top = [line for line in lines if line.startswith("top-level")]
    # Once in each process agent, or once in the forkserver where it preloads scripts.
    again = 1 if method == "forkserver" and _forkserver_preloads_main() else 3
    assert len(top) == 1 + again  # the script itself, then again
    assert len(set(top)) == 1 + again  # each time in a process of its own


def _forkserver_preloads_main() -> bool:
    """Whether this Python's forkserver receives the script's path, so that preloading
    ``__main__`` works (the fix of CPython gh-126631)."""
    source = inspect.getsource(forkserver.ForkServer.ensure_running)
    return "init_main_from_path" in source
