"""Commands as agents: programs (shell, Python, any binary) supervised like Python
agents, with dependencies, restarts, readiness and their output in every alert.

Run: python examples/commands.py
"""

import sys
import tempfile

from pyorchestrate import CommandAgent, Orchestrator, OrchestratorEvent


def on_ready(agent_name):
    print(f"{agent_name}: READY", flush=True)


def on_error(agent_name, reason, error_message, output_tail):
    print(f"ERROR {agent_name} ({reason}): {error_message}; printed {output_tail!r}")


def on_terminated(agent_name, exit_code):
    print(f"{agent_name}: TERMINATED with exit code {exit_code}", flush=True)


def main(workdir: str) -> int:
    orchestrator = Orchestrator(
        "nightly", Orchestrator.Config(enable_command_interface=False, logs_dir=None)
    )
    orchestrator.register_event(OrchestratorEvent.AGENT_READY, on_ready)
    orchestrator.register_event(OrchestratorEvent.AGENT_ERROR, on_error)
    orchestrator.register_event(OrchestratorEvent.AGENT_TERMINATED, on_terminated)
    # A shell step, READY once it printed its banner; the others wait for it.
    orchestrator.register_agent(
        CommandAgent,
        "prepare",
        command="echo preparing; sleep 0.2; echo 'work dir ready'; sleep 0.2",
        shell=True,
        cwd=workdir,
        ready_pattern="work dir ready",
    )
    # A Python program (its own interpreter: the orchestrator runs none for it).
    orchestrator.register_agent(
        CommandAgent,
        "report",
        command=[sys.executable, "-c", "print('rows:', 6 * 7)"],
    )
    # Fails on its first run, succeeds on the second: the restart policy retries.
    orchestrator.register_agent(
        CommandAgent,
        "upload",
        command=[
            "sh",
            "-c",
            "if [ -e tried ]; then echo uploaded; else touch tried; "
            "echo 'server busy' >&2; exit 75; fi",
        ],
        cwd=workdir,
        env={"UPLOAD_TOKEN": "not-shown-in-status"},
        supervision={"restart": "on-failure", "backoff_initial": 0.1},
    )
    orchestrator.add_dependency("report", "prepare")
    orchestrator.add_dependency("upload", "prepare")
    orchestrator.start()
    orchestrator.join()
    print("upload env as shown:", orchestrator.agent_details("upload").config["env"])
    print("outcome:", orchestrator.outcome())
    return orchestrator.exit_code


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="nightly-") as workdir:
        sys.exit(main(workdir))
