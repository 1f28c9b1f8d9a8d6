"""DAEMON mode: the orchestrator stays up until Ctrl+C, SIGTERM or `pyorchestrate shutdown`.

Run: python examples/daemon_mode.py   (then, in another shell: pyorchestrate ps)
"""

import sys

from pyorchestrate.core.agent import PeriodicThreadAgent
from pyorchestrate.core.orchestrator import Orchestrator, RunMode
from pyorchestrate.core.utilities.event import OrchestratorEvent


class Clock(PeriodicThreadAgent):
    class Config(PeriodicThreadAgent.Config):
        execution_interval: float = 0.5

    def runner(self) -> None:
        print(f"tick {self.cycles_done}", flush=True)


if __name__ == "__main__":
    config = Orchestrator.Config(
        run_mode=RunMode.DAEMON,
        check_interval=0.25,
        enable_command_interface=True,  # pyorchestrate ps / history / shutdown
    )
    orchestrator = Orchestrator("Daemon", config=config)
    orchestrator.register_agent(Clock)
    orchestrator.register_event(
        OrchestratorEvent.AGENT_READY,
        lambda agent_name: print(
            f"{agent_name} ready; press Ctrl+C to stop", flush=True
        ),
    )
    orchestrator.start()
    print(f"command socket: {orchestrator.command_socket_path}", flush=True)
    survivors = orchestrator.join()
    print(f"shut down cleanly, survivors: {survivors}", flush=True)
    # 0 after `pyorchestrate shutdown`, 130 after Ctrl+C, 143 after SIGTERM
    sys.exit(orchestrator.exit_code)
