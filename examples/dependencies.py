"""Dependencies: an agent starts only after the agents it depends on have started.

Run: python examples/dependencies.py
"""

import sys

from pyorchestrate.core.agent import OneShotThreadAgent
from pyorchestrate.core.orchestrator import Orchestrator
from pyorchestrate.core.utilities.event import OrchestratorEvent


class Step(OneShotThreadAgent):
    def task(self) -> None:
        self.wait(0.05)


def announce(agent_name, event_time):
    print(f"{event_time} started {agent_name}", flush=True)


if __name__ == "__main__":
    orchestrator = Orchestrator("Pipeline")
    orchestrator.register_event(OrchestratorEvent.AGENT_STARTED, announce)
    for name in ("Load", "Transform", "Extract"):
        orchestrator.register_agent(Step, name)
    orchestrator.add_dependency("Transform", ["Extract"])
    orchestrator.add_dependency("Load", ["Transform"])
    orchestrator.start()
    orchestrator.join()
    started = [r.agent for r in orchestrator.events(event_name="agent_started")]
    print("start order:", " -> ".join(started))
    sys.exit(orchestrator.exit_code)
