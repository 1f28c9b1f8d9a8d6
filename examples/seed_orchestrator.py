"""The seed page's example, as written (run: python examples/seed_orchestrator.py)."""

import sys

from my_project.models import Publisher, Subscriber

from pyorchestrate.core.orchestrator import Orchestrator

if __name__ == "__main__":
    orchestrator = Orchestrator("Orchestrator")

    # register agents
    orchestrator.register_agent(Publisher, "Publisher")
    orchestrator.register_agent(Subscriber, "Subscriber")

    # start agent
    orchestrator.start()

    # wait for agent to complete
    orchestrator.join()

    # end the process with the run's exit code (0: every agent succeeded)
    sys.exit(orchestrator.exit_code)
