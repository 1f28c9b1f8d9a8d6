"""Process agents hold about ten descriptors each: the soft limit of open files is
raised to the hard limit when the first process agent starts."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    from pyorchestrate import Orchestrator, OrchestratorConfig
    from tests.agents import agent

    if __name__ == "__main__":
        orchestrator = Orchestrator(
            "limits", OrchestratorConfig(enable_command_interface=False)
        )
        before = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        # 40 process agents need about 400 descriptors: more than the 256 we start with.
        for n in range(40):
            orchestrator.register_agent(agent("quick", "process"), f"a{n}")
        orchestrator.start()
        assert orchestrator.join() == []
        failed = [n for n, e in orchestrator.agents.items() if e.last_error]
        print(before, resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard, failed)
    """
)


@pytest.mark.process
@pytest.mark.slow
def test_the_soft_limit_is_raised_so_many_process_agents_fit(tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    before, after, hard, failed = result.stdout.split(maxsplit=3)
    assert before == "256"
    assert after == hard or int(after) >= 1 << 20
    assert failed.strip() == "[]"
