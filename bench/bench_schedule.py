"""Scheduling accuracy: the start lag of 1,000 due runs, beside bare timer wake-ups.

1,000 scheduled one-shot thread agents (``schedule={"every": ...}``), each with its own
interval, so their first due times are spread evenly over a window (5 s by default:
200 due runs a second, 5 ms apart), and no second run is due before the last first
one. Each run stamps ``time.time()`` as its ``task()``
begins; its lag is that stamp minus its due time (the scheduler's ``anchor + every``,
read from the orchestrator's scheduler). So a sample is everything a user waits for:
the router's wake-up at the due time, the start request, the launch of the agent's
thread, and its first line. Only each agent's first run counts.

The baseline, in the same run and at the same time: one bare thread sleeps in a
``selectors`` wait (what the router sleeps in) until each of 1,000 deadlines spread
over the same window (offset by half a spacing), and records how late it woke.

Run: ``python bench/bench_schedule.py [--quick] [--runs N] [--window SECONDS]``.
"""

from __future__ import annotations

import argparse
import selectors
import sys
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _stats

LAG_TARGET = 0.050  # a due run's task starts within 50 ms (p99)
LEAD = 0.5  # seconds from the orchestrator's start to the first due time, past the
# window: every agent's second run is then due after the last first run


def bare_timer_lags(deadlines: list[float], out: list[float]) -> None:
    """Sleep in a selector until each wall-clock deadline; record how late it woke."""
    with selectors.DefaultSelector() as selector:
        for deadline in deadlines:
            remaining = deadline - time.time()
            while remaining > 0:
                selector.select(remaining)
                remaining = deadline - time.time()
            out.append(time.time() - deadline)


def scheduled_lags(runs: int, window: float) -> tuple[list[float], list[float]]:
    """Run ``runs`` scheduled agents once each; return their start lags and the
    bare timer's lags, measured at the same time."""
    from pyorchestrate import OneShotThreadAgent, Orchestrator, RunMode

    class Stamp(OneShotThreadAgent):
        stamps: ClassVar[dict[str, float]] = {}

        def task(self) -> Any:
            Stamp.stamps.setdefault(self.name, time.time())

    spacing = window / runs
    config = Orchestrator.Config(
        enable_command_interface=False,
        run_mode=RunMode.DAEMON,
        max_workers=runs,
        agent_stop_timeout=5.0,
    )
    baseline: list[float] = []
    with Orchestrator("bench-schedule", config, schedule_state=None) as orchestrator:
        for i in range(runs):
            orchestrator.register_agent(
                Stamp,
                f"job{i}",
                schedule={"every": window + LEAD + i * spacing, "grace": 3_600},
            )
        orchestrator.start()
        slots = orchestrator.lifecycle.scheduler.slots
        due = {name: slot.anchor + slot.schedule.every for name, slot in slots.items()}
        first = min(due.values())
        deadlines = [first + (i + 0.5) * spacing for i in range(runs)]
        timer = threading.Thread(
            target=bare_timer_lags, args=(deadlines, baseline), name="bench-timer"
        )
        timer.start()
        end = max(due.values()) + _stats.WAIT_TIMEOUT
        while len(Stamp.stamps) < runs and time.time() < end:
            time.sleep(0.05)
        timer.join(_stats.WAIT_TIMEOUT + window)
        if len(Stamp.stamps) < runs:
            raise RuntimeError(f"only {len(Stamp.stamps)} of {runs} runs started")
        lags = [Stamp.stamps[name] - due[name] for name in due]
    return lags, baseline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 runs (smoke run)")
    parser.add_argument("--runs", type=int, help="due runs (default 1000, quick 100)")
    parser.add_argument(
        "--window", type=float, help="seconds the due times spread over (default 5)"
    )
    args = parser.parse_args(argv)
    runs = args.runs or (100 if args.quick else 1_000)
    window = args.window or (1.0 if args.quick else 5.0)
    _stats.print_title(
        "scheduled runs: due time -> the run's task() begins",
        runs=runs,
        window=f"{window:g} s",
    )
    lags, baseline = scheduled_lags(runs, window)
    _stats.print_header(high=99)
    _stats.latency_row(
        f"start lag of {runs} due runs", lags, baseline, LAG_TARGET, high=99
    )
    print()
    print("baseline: a bare thread in selector.select() until each of as many")
    print("  deadlines over the same window, woken how late (at the same time).")
    print(f"earliest start: {min(lags) * 1e3:.3f} ms after due (never before: >= 0)")
    return _stats.finish()


if __name__ == "__main__":
    sys.exit(main())
