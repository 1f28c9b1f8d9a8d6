"""Reloading a fleet file: 200 command agents, one of them changed.

Each cycle edits one agent's ``env`` in a 200-agent file and reloads it with
``FleetRunner.reload()`` (from the SIGHUP/``reload`` request to the changed agent
started again); the baseline is a reload of the same file unchanged (read, validate,
compare: the part every reload pays). After each cycle the agents' pids are compared:
the agents touched must be exactly the one that changed.

Run: ``python bench/bench_fleet.py [--quick] [--agents N] [--cycles N]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _stats


def fleet_file(agents: int, changed: int, level: int) -> str:
    lines = [
        "[orchestrator]",
        "enable_command_interface = false",
        f"max_workers = {agents + 1}",
        "check_interval = 0.5",
    ]
    for index in range(agents):
        lines += [
            f"[agents.job{index:03d}]",
            'command = ["sleep", "1000"]',
            f'env = {{ LEVEL = "{level if index == changed else 0}" }}',
        ]
    return "\n".join(lines) + "\n"


def pids(runner: object) -> dict[str, int | None]:
    from pyorchestrate.fleet import FleetRunner

    assert isinstance(runner, FleetRunner)
    return {name: entry.pid for name, entry in runner.orchestrator.agents.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20 agents, 5 cycles")
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=20)
    args = parser.parse_args(argv)
    agents, cycles = (20, 5) if args.quick else (args.agents, args.cycles)

    from pyorchestrate.fleet import FleetRunner, load_fleet

    with tempfile.TemporaryDirectory(prefix="po-bench-fleet-") as tmp:
        path = Path(tmp) / "fleet.toml"
        path.write_text(fleet_file(agents, changed=agents // 2, level=0))
        runner = FleetRunner(load_fleet(path))
        try:
            runner.start()
            deadline = time.monotonic() + 60
            while None in pids(runner).values() and time.monotonic() < deadline:
                time.sleep(0.05)
            unchanged: list[float] = []
            changed: list[float] = []
            touched: list[int] = []
            moved: list[int] = []
            for cycle in range(1, cycles + 1):
                before = pids(runner)
                started = time.perf_counter()
                runner.reload(timeout=60)
                unchanged.append(time.perf_counter() - started)

                path.write_text(fleet_file(agents, changed=agents // 2, level=cycle))
                started = time.perf_counter()
                plan = runner.reload(timeout=60)
                changed.append(time.perf_counter() - started)
                touched.append(len(plan.touched))
                after = pids(runner)
                moved.append(sum(before[n] != after[n] for n in before))
        finally:
            runner.close()

    _stats.print_title(
        "Fleet reload: one agent changed in a file of N command agents",
        agents=agents,
        cycles=cycles,
    )
    _stats.print_header()
    _stats.latency_row(
        f"reload, 1 of {agents} changed (applied)", changed, unchanged, target=1.0
    )
    print(
        f"\nagents touched per reload: {sorted(set(touched))} (must be [1]); "
        f"pids changed per reload: {sorted(set(moved))} (must be [1])"
    )
    code = _stats.finish()
    return code if set(touched) == {1} and set(moved) == {1} else 1


if __name__ == "__main__":
    sys.exit(main())
