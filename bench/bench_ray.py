"""Ray agents beside process agents and bare Ray, in one run, on a local cluster.

The orchestrator starts (and at the end stops) a local Ray cluster of its own on
127.0.0.1 (``ray_num_cpus=2``). Rows, each beside its baseline measured in the same
run, interleaved:

* **kill -9 -> AGENT_ERROR**: SIGKILL of a READY Ray agent's worker process until the
  AGENT_ERROR callback (``reason="process_lost"``) has run. Baseline: Ray's own death
  notice, SIGKILL of a bare actor's worker until ``ray.wait`` on its running
  method's ObjectRef returns. Target (issue 18): p50 within 2x the baseline's.
  Beside it, the same for a process agent (``reason="killed"``).
* **N agents start -> all READY**: ``start_agent`` of N idle Ray agents until the last
  AGENT_READY callback; baseline: N bare actors created until each answered a call.
  Beside it, N process agents.
* **stop all**: ``stop_agent`` of those N until the last AGENT_TERMINATED; baseline:
  ``ray.kill`` of the N bare actors until each one's pending call failed.
* **messages/s to the router**: one agent sends M messages as fast as it can; from
  its READY until the router has read them all. Baseline: a process agent (its pipe).

N is 20 (2 with ``--quick``): 20 actors take about 1.4 GB (70 MB each).

Run: ``python bench/bench_ray.py [--quick] [--agents N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _stats

KILL_RATIO = 2.0  # issue 18: within 2x Ray's own death notice (p50)


class Counter:
    """Counts events of one kind (an event callback) and wakes a waiter at a number."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.count = 0
        self.at = 0.0
        self.last: dict[str, Any] = {}

    def __call__(self, **kwargs: Any) -> None:
        with self._cond:
            self.count += 1
            self.at = time.perf_counter()
            self.last = kwargs
            self._cond.notify_all()

    def wait(self, count: int, what: str) -> float:
        deadline = time.monotonic() + 60
        with self._cond:
            while self.count < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{what}: {self.count} of {count} in 60 s")
                self._cond.wait(left)
            return self.at


class BareSleeper:
    """A bare actor: ``block`` runs until the worker dies, ``pid`` answers at once."""

    def pid(self) -> int:
        return os.getpid()

    def block(self) -> None:
        time.sleep(3600)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples (smoke run)")
    parser.add_argument("--agents", type=int, help="agents started at once (20)")
    parser.add_argument("--rounds", type=int, help="rounds of each row")
    args = parser.parse_args(argv)
    quick = args.quick
    agents = args.agents or (2 if quick else 20)
    kills = args.rounds or (1 if quick else 20)
    starts = args.rounds or (1 if quick else 3)
    messages = 1_000 if quick else 20_000

    _stats.print_title(
        "Ray agents: death notice, start, stop, messages",
        agents=agents,
        kill_samples=kills,
        start_rounds=starts,
        messages=messages,
    )
    # Not imported here: pyorchestrate imports ray once the loopback settings are in
    # the environment (Ray reads them at import).
    if importlib.util.find_spec("ray") is None:
        print("ray is not installed: pip install 'pyorchestrate[ray]'")
        _stats.print_header()
        _stats.print_row("(skipped: no ray)", "-", "-", "-", "-", "none")
        return _stats.finish()

    from bench._agents import ChattyProcess, ChattyThread, IdleProcess, IdleThread
    from pyorchestrate import Orchestrator, OrchestratorEvent

    E = OrchestratorEvent
    config = Orchestrator.Config(
        enable_command_interface=False,
        logs_dir=None,
        max_workers=2 * agents + 4,
        agent_stop_timeout=10.0,
        ray_num_cpus=2,
    )
    began = time.perf_counter()
    orch = Orchestrator("bench-ray", config)
    counters = {e: {} for e in (E.AGENT_READY, E.AGENT_ERROR, E.AGENT_TERMINATED)}

    def on(event: OrchestratorEvent) -> Any:
        def callback(**kwargs: Any) -> None:
            found = counters[event].setdefault(kwargs["agent_name"], Counter())
            found(**kwargs)

        return callback

    for event in counters:
        orch.register_event(event, on(event))

    def counter(event: OrchestratorEvent, name: str) -> Counter:
        return counters[event].setdefault(name, Counter())

    try:
        ray_names = [f"ray{i}" for i in range(agents)]
        proc_names = [f"proc{i}" for i in range(agents)]
        orch.register_agent(IdleThread, "victim", backend="ray")
        orch.register_agent(IdleProcess, "pvictim")
        for name in ray_names:
            orch.register_agent(IdleThread, name, backend="ray")
        for name in proc_names:
            orch.register_agent(IdleProcess, name)
        orch.register_agent(ChattyThread, "chatty", backend="ray", count=messages)
        orch.register_agent(ChattyProcess, "pchatty", count=messages)
        t0 = time.perf_counter()
        orch.lifecycle.ray.connect()
        cluster_start = time.perf_counter() - t0
        import ray

        bare_class = ray.remote(BareSleeper).options(max_concurrency=2)

        # ---------------------------------------------------------- kill -9
        def kill_agent(name: str, reason: str) -> float:
            n = counter(E.AGENT_READY, name).count
            orch.start_agent(name)
            counter(E.AGENT_READY, name).wait(n + 1, f"{name} READY")
            pid = counter(E.AGENT_READY, name).last["pid"]
            errors = counter(E.AGENT_ERROR, name)
            ended = counter(E.AGENT_TERMINATED, name)
            e, t = errors.count, ended.count
            os.kill(pid, signal.SIGKILL)
            t0 = time.perf_counter()
            t1 = errors.wait(e + 1, f"{name} AGENT_ERROR")
            ended.wait(t + 1, f"{name} TERMINATED")
            got = errors.last.get("reason")
            if got != reason:
                raise RuntimeError(f"{name}: AGENT_ERROR {got!r}, not {reason!r}")
            return t1 - t0

        def kill_bare() -> float:
            actor = bare_class.remote()
            pid = ray.get(actor.pid.remote(), timeout=30)
            ref = actor.block.remote()
            time.sleep(0.05)  # block() is running
            os.kill(pid, signal.SIGKILL)
            t0 = time.perf_counter()
            done, _ = ray.wait([ref], timeout=30)
            t1 = time.perf_counter()
            if not done:
                raise TimeoutError("no death notice from Ray in 30 s")
            return t1 - t0

        ray_kill, bare_kill, proc_kill = _stats.interleave(
            kills,
            0 if quick else 1,
            lambda: kill_agent("victim", "process_lost"),
            kill_bare,
            lambda: kill_agent("pvictim", "killed"),
        )

        # ---------------------------------------------------------- start, stop
        def start_all(names: list[str]) -> float:
            ready = [counter(E.AGENT_READY, n) for n in names]
            wanted = [c.count + 1 for c in ready]
            t0 = time.perf_counter()
            for name in names:
                orch.start_agent(name)
            last = max(c.wait(w, "READY") for c, w in zip(ready, wanted, strict=True))
            return last - t0

        def stop_all(names: list[str]) -> float:
            ended = [counter(E.AGENT_TERMINATED, n) for n in names]
            wanted = [c.count + 1 for c in ended]
            t0 = time.perf_counter()
            for name in names:
                orch.stop_agent(name)
            last = max(
                c.wait(w, "TERMINATED") for c, w in zip(ended, wanted, strict=True)
            )
            return last - t0

        bare_actors: list[Any] = []

        def bare_start() -> float:
            t0 = time.perf_counter()
            bare_actors[:] = [bare_class.remote() for _ in range(agents)]
            ray.get([a.pid.remote() for a in bare_actors], timeout=60)
            return time.perf_counter() - t0

        def bare_stop() -> float:
            pending = [a.block.remote() for a in bare_actors]
            t0 = time.perf_counter()
            for actor in bare_actors:
                ray.kill(actor)
            ray.wait(pending, num_returns=len(pending), timeout=60)
            bare_actors.clear()
            return time.perf_counter() - t0

        ray_start, ray_stop, bare_up, bare_down, proc_start, proc_stop = (
            [],
            [],
            [],
            [],
            [],
            [],
        )
        for _ in range(starts):
            ray_start.append(start_all(ray_names))
            ray_stop.append(stop_all(ray_names))
            bare_up.append(bare_start())
            bare_down.append(bare_stop())
            proc_start.append(start_all(proc_names))
            proc_stop.append(stop_all(proc_names))

        # ---------------------------------------------------------- messages
        def flood(name: str) -> float:
            ready = counter(E.AGENT_READY, name)
            n = ready.count
            base = orch.router.messages
            orch.start_agent(name)
            t0 = ready.wait(n + 1, f"{name} READY")
            # START and READY are read before the flood; the messages follow them.
            target = base + 2 + messages
            deadline = time.monotonic() + 60
            while orch.router.messages < target:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name}: {orch.router.messages - base} read")
                time.sleep(0.0005)
            t1 = time.perf_counter()
            stop_all([name])
            return (t1 - t0) / messages

        ray_rate, proc_rate = _stats.interleave(
            1 if quick else 3, 0, lambda: flood("chatty"), lambda: flood("pchatty")
        )
    finally:
        t0 = time.perf_counter()
        orch.shutdown()
        shutdown = time.perf_counter() - t0

    _stats.print_header()
    ratio = _stats.ratio_row(
        "kill -9 -> AGENT_ERROR (Ray agent)", ray_kill, bare_kill, KILL_RATIO
    )
    _none("kill -9 -> AGENT_ERROR (process agent)", proc_kill, bare_kill)
    _none(f"{agents} Ray agents start -> all READY", ray_start, bare_up)
    _none(f"{agents} process agents start -> all READY", proc_start, bare_up)
    _none(f"stop all {agents} Ray agents", ray_stop, bare_down)
    _none(f"stop all {agents} process agents", proc_stop, bare_down)
    p50, p95 = _stats.p50_p95(ray_rate)
    b50, b95 = _stats.p50_p95(proc_rate)
    _stats.print_row(
        "messages/s, one Ray agent -> router",
        _stats.fmt_rate(1 / p50),
        _stats.fmt_rate(1 / p95),
        _stats.fmt_rate(1 / b50),
        _stats.fmt_rate(1 / b95),
        "none set",
    )
    print()
    print("baselines: kill rows: Ray's own death notice (bare actor, ray.wait on its")
    print("  running call); start rows: bare actors created until each answered; stop")
    print(
        "  rows: ray.kill of bare actors until their calls failed; messages: the same"
    )
    print("  flood from a process agent (a pipe), as messages/s.")
    print(f"Ray agent death notice: p50 is {ratio:.2f}x Ray's own")
    print(
        f"local cluster start (ray.init) {cluster_start:.1f} s, orchestrator shutdown "
        f"with the cluster {shutdown:.1f} s, whole run {time.perf_counter() - began:.1f} s"
    )
    return _stats.finish()


def _none(name: str, samples: list[float], baseline: list[float]) -> None:
    p50, p95 = _stats.p50_p95(samples)
    b50, b95 = _stats.p50_p95(baseline)
    _stats.print_row(
        name,
        _stats.fmt_ms(p50),
        _stats.fmt_ms(p95),
        _stats.fmt_ms(b50),
        _stats.fmt_ms(b95),
        "none set",
    )


if __name__ == "__main__":
    sys.exit(main())
