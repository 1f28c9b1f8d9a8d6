"""PoolAgent lives above the orchestrator (``pyorchestrate.core.pool``); every old
import path still gives the same classes, and importing the agents loads no
orchestrator module."""

from __future__ import annotations

import subprocess
import sys

import pyorchestrate
import pyorchestrate.core.agent
import pyorchestrate.core.agent.pool
import pyorchestrate.core.pool


def test_every_import_path_gives_the_same_classes() -> None:
    home = pyorchestrate.core.pool
    for name in ("PoolAgent", "PoolAgentConfig", "PoolProcessAgent", "PoolThreadAgent"):
        assert getattr(pyorchestrate.core.agent, name) is getattr(home, name)
        assert name in dir(pyorchestrate.core.agent)
    for name in ("PoolProcessAgent", "PoolThreadAgent"):
        assert getattr(pyorchestrate, name) is getattr(home, name)
    for name in ("PoolAgent", "PoolAgentConfig"):
        assert getattr(pyorchestrate.core.agent.pool, name) is getattr(home, name)
    assert home.PoolProcessAgent.__module__ == "pyorchestrate.core.pool"


_PROBE = """
import sys
import pyorchestrate.core.agent
from pyorchestrate.core.agent import (
    base, flags, flavours, looping, oneshot, periodic, plugins, status,
)
print("LOADED", sorted(m for m in sys.modules
                       if m.startswith(("pyorchestrate.core.orchestrator",
                                        "pyorchestrate.core.pool"))))
"""


def test_importing_the_agents_loads_no_orchestrator() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "LOADED []" in result.stdout, result.stdout
