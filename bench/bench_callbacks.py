"""Callback throughput: events per second from ``EventBus.emit`` to a callback having run.

Each round makes an orchestrator, registers one AGENT_HEARTBEAT callback and emits N
heartbeats for one agent name through ``orchestrator.event_bus.emit`` from this thread;
the clock stops when the callback has run for the last of them. One agent name means
one callback worker (one agent's callbacks run in order). The baseline, interleaved
round by round: N items through a bare ``queue.Queue``, ``put`` in this thread, ``get``
in another, until the consumer has taken the last.

Run: ``python bench/bench_callbacks.py [--quick] [--events N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _stats

RATE_TARGET = 50_000.0  # at least 50,000 callback events per second
_DRAIN_TIMEOUT = 60.0


class _Counter:
    """The callback: counts calls, stamps the last one, wakes the waiter at ``n``."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.last = 0.0
        self.done = threading.Event()

    def __call__(self, agent_name: str | None) -> None:
        # Runs on the single callback worker of this agent name: no race on count.
        self.count += 1
        self.last = time.perf_counter()
        if self.count >= self.n:
            self.done.set()


def bus_round(n: int, dropped_total: list[int]) -> float:
    """Seconds per event through emit -> callback; dropped calls go to ``dropped_total``."""
    from pyorchestrate import Orchestrator, OrchestratorEvent

    event = OrchestratorEvent.AGENT_HEARTBEAT
    config = Orchestrator.Config(enable_command_interface=False)
    counter = _Counter(n)
    with Orchestrator("bench-callbacks", config) as orchestrator:
        orchestrator.register_event(event, counter)
        emit = orchestrator.event_bus.emit
        context = {"generation_id": 1, "pid": os.getpid()}
        t0 = time.perf_counter()
        for _ in range(n):
            emit(event, agent_name="bench-agent", context=context)
        deadline = time.monotonic() + _DRAIN_TIMEOUT
        while not counter.done.wait(0.05):
            dropped = orchestrator.report()["callbacks"]["dropped"]
            if counter.count + dropped >= n:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {counter.count} of {n} callbacks ran")
        dropped_total.append(orchestrator.report()["callbacks"]["dropped"])
        delivered = counter.count
    return (counter.last - t0) / delivered


def queue_round(n: int) -> float:
    """Seconds per item through a bare ``queue.Queue``, put here, get in a thread."""
    items: queue.Queue[int] = queue.Queue()
    stamp: list[float] = []

    def consume() -> None:
        get = items.get
        for _ in range(n):
            get()
        stamp.append(time.perf_counter())

    consumer = threading.Thread(target=consume, name="bench-consumer", daemon=True)
    consumer.start()
    put = items.put
    t0 = time.perf_counter()
    for i in range(n):
        put(i)
    consumer.join(_DRAIN_TIMEOUT)
    if not stamp:
        raise TimeoutError("the bare consumer did not finish")
    return (stamp[0] - t0) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few events (smoke run)")
    parser.add_argument("--events", type=int, help="events per round (default 200000)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3)")
    args = parser.parse_args(argv)
    events = args.events or (20_000 if args.quick else 200_000)
    rounds = args.rounds or (2 if args.quick else 3)

    _stats.print_title(
        "EventBus.emit -> callback throughput", events=events, rounds=rounds
    )
    dropped: list[int] = []
    agent, bare = _stats.interleave(
        rounds, 0, lambda: bus_round(events, dropped), lambda: queue_round(events)
    )
    _stats.print_header()
    _stats.rate_row("event_bus.emit -> callback (events/s)", agent, bare, RATE_TARGET)
    print()
    print("baseline: bare queue.Queue put -> get between two threads (items/s).")
    print("p50 = median round; p95 = the round at the 95th percentile of time per")
    print("event (the slow side). Target judged on the p95 figure.")
    print(f"callback calls dropped (queue full), per round: {dropped}")
    ratio = _stats.percentile(agent, 50) / _stats.percentile(bare, 50)
    print(f"emit -> callback: p50 rate is 1/{ratio:.1f} of its baseline")
    return _stats.finish()


if __name__ == "__main__":
    sys.exit(main())
