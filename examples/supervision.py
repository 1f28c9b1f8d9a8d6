"""Supervision: a crashing worker comes back by itself, a hung one is caught by the
watchdog, and a crash loop goes FATAL with one alert instead of a thousand.

Run: python examples/supervision.py
"""

import sys
import time
from pathlib import Path

from pyorchestrate import (
    LoopingProcessAgent,
    OneShotProcessAgent,
    Orchestrator,
    OrchestratorEvent,
    SupervisionConfig,
)


class FlakyImport(OneShotProcessAgent):
    """Fails on its first two starts (the database is 'down'), then succeeds."""

    def task(self) -> None:
        tries = Path("flaky-tries.txt")
        attempt = int(tries.read_text()) + 1 if tries.exists() else 1
        tries.write_text(str(attempt))
        if attempt < 3:
            raise ConnectionError(f"database unreachable (try {attempt})")
        print(f"FlakyImport: imported on try {attempt}", flush=True)


class Poller(LoopingProcessAgent):
    """Beats automatically every cycle, until its third cycle hangs."""

    def cycle(self) -> None:
        if self.cycles_done == 2:
            time.sleep(3600)  # a hung network call: no more heartbeats
        self.wait(0.05)


class BrokenConfig(OneShotProcessAgent):
    """Crashes at once, every time: a crash loop."""

    def task(self) -> None:
        raise KeyError("DATABASE_URL")


def on_restarting(agent_name, attempt, delay, reason):
    print(f"restarting {agent_name} (attempt {attempt}) in {delay:.2f} s: {reason}")


def on_fatal(agent_name, error_message):
    print(f"FATAL {agent_name}: {error_message}")


def on_watchdog(agent_name, timeout):
    print(f"watchdog: {agent_name} sent no heartbeat for {timeout:g} s")


if __name__ == "__main__":
    # logs_dir=None: the agents' output shows here, after "[agent] ", not in files.
    orchestrator = Orchestrator(
        "Supervised", Orchestrator.Config(max_workers=10, logs_dir=None)
    )
    orchestrator.register_event(OrchestratorEvent.AGENT_RESTARTING, on_restarting)
    orchestrator.register_event(OrchestratorEvent.AGENT_FATAL, on_fatal)
    orchestrator.register_event(OrchestratorEvent.AGENT_WATCHDOG_TIMEOUT, on_watchdog)
    orchestrator.register_agent(
        FlakyImport,
        "importer",
        supervision=SupervisionConfig(restart="on-failure", backoff_initial=0.2),
    )
    orchestrator.register_agent(
        Poller,
        "poller",
        supervision={
            "restart": "on-failure",
            "heartbeat_timeout": 0.5,
            "max_restarts": 1,
        },
    )
    orchestrator.register_agent(
        BrokenConfig,
        "broken",
        supervision={"restart": "always", "backoff_initial": 0.05, "flap_restarts": 3},
    )
    orchestrator.start()
    orchestrator.join()  # STOP_ON_EMPTY: returns once nothing will run again
    for name in ("importer", "poller", "broken"):
        status = orchestrator.agent_status(name)
        print(
            f"{name}: {status['lifecycle_state']} after {status['restarts']} restarts"
            f" ({status['fatal_reason'] or status['termination_status']})"
        )
    sys.exit(orchestrator.exit_code)  # 1: poller and broken went FATAL on purpose
