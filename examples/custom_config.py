"""Custom configs: one for the orchestrator, and one per agent where you want it.

Run: python examples/custom_config.py
"""

import sys

from my_project.models import Publisher

from pyorchestrate.core.orchestrator import Orchestrator, RunMode

if __name__ == "__main__":
    config = Orchestrator.Config(
        run_mode=RunMode.STOP_ON_EMPTY,
        check_interval=0.25,
        max_workers=2,  # the third publisher waits for a free slot
    )
    orchestrator = Orchestrator("Orchestrator", config=config)

    custom_config = Publisher.Config(output_file="custom_file.txt", limit=3)

    orchestrator.register_agent(
        Publisher, "Pub1", custom_config={"output_file": "pub1.txt"}
    )
    orchestrator.register_agent(
        Publisher, "Pub2", custom_config={"output_file": "pub2.txt"}
    )
    orchestrator.register_agent(Publisher, "Pub3", custom_config=custom_config)

    orchestrator.start()
    orchestrator.join()

    for agent in orchestrator.report()["agents"]:
        output = agent["config"]["output_file"]
        print(f"{agent['name']}: {agent['lifecycle_state']}, wrote {output}")
    sys.exit(orchestrator.exit_code)  # 0 if every agent succeeded, else 1
