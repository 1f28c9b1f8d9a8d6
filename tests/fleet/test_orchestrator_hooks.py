"""What the fleet needs from the core: unregister_agent, and the reload command."""

from __future__ import annotations

import pytest

from pyorchestrate import CommandAgent, Orchestrator
from pyorchestrate.core.errors import CommandFailed, LifecycleError, RegistrationError

pytestmark = pytest.mark.process  # real child processes


def test_unregister_refuses_a_live_agent_and_forgets_an_ended_one() -> None:
    orchestrator = Orchestrator(
        "hooks", {"enable_command_interface": False, "check_interval": 0.05}
    )
    try:
        orchestrator.register_agent(CommandAgent, "job", command=["sleep", "1000"])
        orchestrator.register_agent(CommandAgent, "after", command=["true"])
        orchestrator.add_dependency("after", "job")
        orchestrator.start()
        with pytest.raises(LifecycleError, match="stop it before"):
            orchestrator.unregister_agent("job")
        orchestrator.stop_agent("job")
        orchestrator.stop_agent("after")
        with orchestrator.lifecycle.lock:
            while not all(
                orchestrator.get_agent(name).state.value == "TERMINATED"
                for name in ("job", "after")
            ):
                orchestrator.lifecycle.changed.wait(1.0)
        orchestrator.unregister_agent("after")
        orchestrator.unregister_agent("job")
        assert not orchestrator.has_agent("job")
        assert orchestrator.snapshot().dependencies == {}
        with pytest.raises(RegistrationError):
            orchestrator.unregister_agent("job")
        assert orchestrator.events(agent="job")[-1].event_name == "UNREGISTERED"
        orchestrator.register_agent(CommandAgent, "job", command=["true"])  # again
    finally:
        orchestrator.shutdown()


def test_reload_without_a_file_says_so() -> None:
    orchestrator = Orchestrator("hooks", {"enable_command_interface": False})
    with pytest.raises(CommandFailed, match="not started from a file"):
        orchestrator.reload()
    orchestrator.reloader = lambda: {"message": "ok"}
    assert orchestrator.reload() == {"message": "ok"}
    orchestrator.shutdown()
