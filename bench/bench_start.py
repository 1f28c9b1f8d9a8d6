"""Start latency: ``start_agent()`` until the AGENT_STARTED callback has run.

Measured beside bare starts in the same run, sample by sample (interleaved):

* thread agent vs ``threading.Thread.start()`` until the thread's first line runs;
* process agent, per start method (forkserver, spawn), vs ``Process.start()`` of the
  same multiprocessing context until the child's first line has signalled back through
  a ``Pipe``.

Run: ``python bench/bench_start.py [--quick] [--samples N]`` from any directory.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _bare, _stats

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from multiprocessing.context import BaseContext

    from pyorchestrate import BaseAgent

# pyorchestrate is imported inside functions: spawn and forkserver children re-run this
# file's top level, and a bare child must not pay for importing pyorchestrate.

THREAD_TARGET = 0.005  # thread agent start under 5 ms p95
METHODS = ("forkserver", "spawn")


@contextlib.contextmanager
def agent_starts(
    agent_class: type[BaseAgent], start_method: str | None
) -> Iterator[Callable[[], float]]:
    """Yield a sampler that starts one registered agent, times it and stops it again.

    The orchestrator is shut down on the way out, whatever happens.
    """
    from pyorchestrate import Orchestrator, OrchestratorEvent

    config = Orchestrator.Config(
        enable_command_interface=False,
        agent_stop_timeout=5.0,
        **({"start_method": start_method} if start_method else {}),
    )
    started, ended = _stats.Arrival(), _stats.Arrival()
    with Orchestrator("bench-start", config) as orchestrator:
        orchestrator.register_event(OrchestratorEvent.AGENT_STARTED, started)
        orchestrator.register_event(OrchestratorEvent.AGENT_TERMINATED, ended)
        orchestrator.register_agent(agent_class, "idle")

        def sample() -> float:
            started.clear()
            ended.clear()
            t0 = time.perf_counter()
            orchestrator.start_agent("idle")
            t1 = started.wait("AGENT_STARTED")
            orchestrator.stop_agent("idle")
            ended.wait("AGENT_TERMINATED")
            return t1 - t0

        yield sample


def bare_thread_start() -> float:
    """``Thread.start()`` until the thread's first line runs (stamped there)."""
    ran = threading.Event()
    stamp: list[float] = []

    def first_line() -> None:
        stamp.append(time.perf_counter())
        ran.set()

    thread = threading.Thread(target=first_line, name="bench-bare", daemon=True)
    t0 = time.perf_counter()
    thread.start()
    if not ran.wait(_stats.WAIT_TIMEOUT):
        raise TimeoutError("bare thread did not run")
    thread.join()
    return stamp[0] - t0


def bare_process_start(ctx: BaseContext) -> float:
    """``Process.start()`` until the child's first line has signalled through a Pipe."""
    t0 = time.perf_counter()
    reader, writer = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_bare.signal_back, args=(writer,), daemon=True)  # type: ignore[attr-defined]
    try:
        try:
            process.start()
        finally:
            writer.close()
        try:
            if not reader.poll(_stats.WAIT_TIMEOUT):
                raise TimeoutError("bare child did not signal back")
            reader.recv_bytes()
            t1 = time.perf_counter()
        finally:
            _stats.reap(process)
    finally:
        reader.close()
    return t1 - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples (smoke run)")
    parser.add_argument("--samples", type=int, help="samples per row (overrides)")
    args = parser.parse_args(argv)

    from bench._agents import IdleProcess, IdleThread
    from pyorchestrate.core.agent.flavours import process_context

    counts = {"thread": 200, "forkserver": 100, "spawn": 30}
    if args.quick:
        counts = {"thread": 20, "forkserver": 5, "spawn": 3}
    if args.samples:
        counts = dict.fromkeys(counts, args.samples)

    _stats.print_title(
        "Agent start -> AGENT_STARTED callback",
        samples=",".join(f"{k}:{v}" for k, v in counts.items()),
    )
    rows: list[tuple[str, list[float], list[float], float | None]] = []

    with agent_starts(IdleThread, None) as sample:
        agent, bare = _stats.interleave(counts["thread"], 5, sample, bare_thread_start)
    rows.append(("thread agent start", agent, bare, THREAD_TARGET))

    for method in METHODS:
        # The orchestrator's own context: for forkserver, the one shared server, which
        # preloads pyorchestrate; the bare children start from it too.
        ctx = process_context(method)  # type: ignore[arg-type]
        warmup = 3 if method == "forkserver" else 1
        with agent_starts(IdleProcess, method) as sample:
            agent, bare = _stats.interleave(
                counts[method],
                warmup,
                sample,
                functools.partial(bare_process_start, ctx),
            )
        rows.append((f"process agent start ({method})", agent, bare, None))

    _stats.print_header()
    for name, agent, bare, target in rows:
        if target is not None:
            _stats.latency_row(name, agent, bare, target)
        else:
            p50, p95 = _stats.p50_p95(agent)
            b50, b95 = _stats.p50_p95(bare)
            _stats.print_row(
                name,
                _stats.fmt_ms(p50),
                _stats.fmt_ms(p95),
                _stats.fmt_ms(b50),
                _stats.fmt_ms(b95),
                "none set",
            )
    print()
    print("baselines: thread: bare threading.Thread.start() -> its first line runs;")
    print("  process: bare Process.start() of the same context -> the child's first")
    print("  line has signalled back through a Pipe.")
    for name, agent, bare, _ in rows:
        ratio = _stats.percentile(agent, 50) / _stats.percentile(bare, 50)
        print(f"{name}: p50 is {ratio:.1f}x its baseline")
    return _stats.finish()


if __name__ == "__main__":
    sys.exit(main())
