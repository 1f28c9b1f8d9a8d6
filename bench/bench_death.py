"""Death notice: ``kill -9`` of a process agent until the AGENT_ERROR callback has run.

Each sample starts the agent, waits for AGENT_STARTED, takes its pid from
``orchestrator.get_agent(name).pid``, sends SIGKILL and times the AGENT_ERROR callback
(it must say ``reason="killed"``), then waits for AGENT_TERMINATED. The baseline,
interleaved sample by sample: SIGKILL of a bare child of the same multiprocessing
context until ``multiprocessing.connection.wait([process.sentinel])`` returns.

Run: ``python bench/bench_death.py [--quick] [--samples N] [--start-method M]``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import signal
import sys
import time
from multiprocessing.connection import wait
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _bare, _stats

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from multiprocessing.context import BaseContext

# pyorchestrate is imported inside functions: spawn and forkserver children re-run this
# file's top level, and a bare child must not pay for importing pyorchestrate.

DEATH_TARGET = 0.100  # death noticed within 100 ms p95


@contextlib.contextmanager
def agent_kills(start_method: str) -> Iterator[Callable[[], float]]:
    """Yield a sampler: start the agent, SIGKILL it, time AGENT_ERROR, await the end.

    The orchestrator is shut down on the way out, whatever happens.
    """
    from bench._agents import IdleProcess
    from pyorchestrate import Orchestrator, OrchestratorEvent

    config = Orchestrator.Config(
        enable_command_interface=False,
        agent_stop_timeout=5.0,
        start_method=start_method,
    )
    started, error, ended = _stats.Arrival(), _stats.Arrival(), _stats.Arrival()
    with Orchestrator("bench-death", config) as orchestrator:
        orchestrator.register_event(OrchestratorEvent.AGENT_STARTED, started)
        orchestrator.register_event(OrchestratorEvent.AGENT_ERROR, error)
        orchestrator.register_event(OrchestratorEvent.AGENT_TERMINATED, ended)
        orchestrator.register_agent(IdleProcess, "victim")

        def sample() -> float:
            started.clear()
            error.clear()
            ended.clear()
            orchestrator.start_agent("victim")
            started.wait("AGENT_STARTED")
            pid = orchestrator.get_agent("victim").pid
            if pid is None or pid == os.getpid():
                raise RuntimeError(f"no child pid to kill (got {pid})")
            t0 = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            t1 = error.wait("AGENT_ERROR")
            ended.wait("AGENT_TERMINATED")
            if error.kwargs.get("reason") != "killed":
                raise RuntimeError(f"unexpected AGENT_ERROR: {error.kwargs}")
            return t1 - t0

        yield sample


def bare_kill(ctx: BaseContext) -> float:
    """SIGKILL a bare child that has signalled it runs; time until its sentinel is ready."""
    reader, writer = ctx.Pipe(duplex=False)
    process = ctx.Process(  # type: ignore[attr-defined]
        target=_bare.sleep_until_killed, args=(writer,), daemon=True
    )
    try:
        try:
            process.start()
        finally:
            writer.close()
        try:
            if not reader.poll(_stats.WAIT_TIMEOUT):
                raise TimeoutError("bare child did not signal back")
            reader.recv_bytes()
            t0 = time.perf_counter()
            os.kill(process.pid, signal.SIGKILL)
            if not wait([process.sentinel], _stats.WAIT_TIMEOUT):
                raise TimeoutError("bare child's sentinel did not become ready")
            t1 = time.perf_counter()
        finally:
            _stats.reap(process)
    finally:
        reader.close()
    return t1 - t0


def main(argv: list[str] | None = None) -> int:
    from pyorchestrate.core.agent.flavours import DEFAULT_START_METHOD, process_context

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples (smoke run)")
    parser.add_argument("--samples", type=int, help="samples (default 200, quick 5)")
    parser.add_argument(
        "--start-method",
        choices=("forkserver", "spawn"),
        default=DEFAULT_START_METHOD,
        help=f"how the agent and the bare child start (default {DEFAULT_START_METHOD})",
    )
    args = parser.parse_args(argv)
    samples = args.samples or (5 if args.quick else 200)
    method = args.start_method

    _stats.print_title(
        "kill -9 of a process agent -> AGENT_ERROR callback",
        samples=samples,
        start_method=method,
    )
    ctx = process_context(method)
    with agent_kills(method) as sample:
        agent, bare = _stats.interleave(
            samples, 2, sample, functools.partial(bare_kill, ctx)
        )
    _stats.print_header()
    _stats.latency_row(f"kill -9 -> AGENT_ERROR ({method})", agent, bare, DEATH_TARGET)
    print()
    print("baseline: SIGKILL of a bare child -> multiprocessing.connection.wait()")
    print("  on its sentinel returns.")
    ratio = _stats.percentile(agent, 50) / _stats.percentile(bare, 50)
    print(f"kill -9 -> AGENT_ERROR: p50 is {ratio:.1f}x its baseline")
    return _stats.finish()


if __name__ == "__main__":
    sys.exit(main())
