"""Callbacks on events: a message when an agent starts, fails or terminates.

Run: python examples/events.py
"""

import sys

from pyorchestrate.core.agent import OneShotThreadAgent
from pyorchestrate.core.orchestrator import Orchestrator
from pyorchestrate.core.utilities.event import OrchestratorEvent


class Flaky(OneShotThreadAgent):
    def task(self) -> None:
        raise ConnectionError("database unreachable")


class Report(OneShotThreadAgent):
    def task(self) -> None:
        print("report written", flush=True)


def send_telegram_message(event_date, event_time, agent_name):
    # Your logic to send a message on Telegram
    print(f"Agent {agent_name} started at {event_time}", flush=True)


def on_error(agent_name, error_message, **context):
    print(
        f"ALERT {agent_name} failed: {error_message} (generation {context['generation_id']})"
    )


def on_terminated(agent_name, termination_status):
    print(f"Agent {agent_name} terminated: {termination_status}", flush=True)


if __name__ == "__main__":
    orchestrator = Orchestrator("Orchestrator")
    orchestrator.register_event(OrchestratorEvent.AGENT_STARTED, send_telegram_message)
    orchestrator.register_event(OrchestratorEvent.AGENT_ERROR, on_error)
    orchestrator.register_event(OrchestratorEvent.AGENT_TERMINATED, on_terminated)
    orchestrator.register_agent(Report)
    orchestrator.register_agent(Flaky)
    orchestrator.start()
    orchestrator.join()
    outcome = orchestrator.outcome()
    print(f"outcome: {outcome}")
    sys.exit(outcome.exit_code)  # 1 here: Flaky fails on purpose
