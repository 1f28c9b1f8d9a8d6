"""Supervision against supervisord: start 100, kill -9 and restart, stop all.

One workload on both sides: 100 long-running processes of the same Python, each idle
until it is told to stop. Ours are 100 process agents (``_agents.IdleProcess``,
forkserver, ``supervision={"restart": "on-failure", ...}``) under one DAEMON
orchestrator; the anchor is supervisord 4.x (``_supervisord.py``, a private venv) with
100 programs that run ``sys.executable worker.py`` (sleep until SIGTERM).

Each cycle (a fresh orchestrator each, one supervisord for the whole run) measures:

* **start**: ``orchestrator.start()`` until the AGENT_READY callback has run for all
  100 agents, against supervisord's ``startAllProcesses`` until all are RUNNING with
  ``startsecs=0``, i.e. merely forked (supervisord never waits for the worker's
  interpreter; our READY is sent by the agent's own code, after its ``setup()``);
* **kill -9**: ``os.kill(pid, SIGKILL)`` of one READY agent until the AGENT_ERROR
  callback (``reason="killed"``: detection) and until the AGENT_READY callback of the
  next generation (restarted and ready again). Half the agents have the default
  policy (the first restart comes at once), the other half ``immediate_restarts=0``
  (the 0.1 s ± 10 % backoff that a second crash in a row gets); kills alternate between the two, each on an agent not
  killed before in that cycle (flap detection never comes into play). supervisord's
  kills alternate between two ways of waiting: RPC-polled every 5 ms (flattering:
  the polls wake its 1-second main loop) and unpolled, read from its own log stamps
  (what a user gets): ``exited`` (detection), ``spawned`` (forked again) and RUNNING;
* **stop all**: ``orchestrator.shutdown()`` until every agent process is gone (the
  agents stop cooperatively, on their stop event), against ``stopAllProcesses``
  until every program is STOPPED and its process gone (SIGTERM; the worker just dies).

Cycles alternate, ours then supervisord's, so both see the same machine load (only
one side's processes run at a time). One warm-up cycle each is dropped.

supervisord comes from ``_supervisord.ensure_supervisor()`` (pip, first run only).
With ``--quick`` it is used only if that private venv is already there (``--supervisord
auto``): the smoke test must not reach a package index, and then prints our half only.

Run through ``bench/bench_supervision.py`` (see there); this module holds the code
so that the script the agents' children re-run stays tiny.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _stats

if TYPE_CHECKING:
    from collections.abc import Iterable

    from bench._supervisord import Supervisord
    from pyorchestrate import Orchestrator

# pyorchestrate (and the supervisord helpers) are imported inside functions, as in the
# other benchmarks, although forkserver children re-run only bench_supervision.py.

RESTART_TARGET = 0.100  # detection and restart: 10x faster than supervisord's ~1 s
PAUSE = 0.05  # untimed, between two kills (as _supervisord.kill_restart)


@dataclasses.dataclass
class Figures:
    """Samples in seconds, ours and supervisord's, gathered over the cycles."""

    start: list[float] = dataclasses.field(default_factory=list)
    detect: list[float] = dataclasses.field(default_factory=list)
    restart_default: list[float] = dataclasses.field(default_factory=list)
    restart_backoff: list[float] = dataclasses.field(default_factory=list)
    stop: list[float] = dataclasses.field(default_factory=list)
    sv_start: list[float] = dataclasses.field(default_factory=list)
    sv_polled: list[float] = dataclasses.field(default_factory=list)
    sv_exited: list[float] = dataclasses.field(default_factory=list)
    sv_spawned: list[float] = dataclasses.field(default_factory=list)
    sv_running: list[float] = dataclasses.field(default_factory=list)
    sv_stop: list[float] = dataclasses.field(default_factory=list)


class Stamps:
    """An event callback that stamps each (event, agent, generation) when it ran.

    Register it for AGENT_READY, AGENT_ERROR and AGENT_FATAL; :meth:`wait` returns the
    latest stamp of a set of keys, and fails at once if an agent went FATAL.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.at: dict[tuple[str, str, int], float] = {}
        self.kwargs: dict[tuple[str, str, int], dict[str, Any]] = {}
        self.fatal: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> None:
        at = time.perf_counter()
        key = (kwargs["event"].name, kwargs["agent_name"], kwargs["generation_id"])
        with self._changed:
            if kwargs["event"].name == "AGENT_FATAL":
                self.fatal.append(kwargs)
            self.at.setdefault(key, at)
            self.kwargs.setdefault(key, kwargs)
            self._changed.notify_all()

    def wait(self, keys: Iterable[tuple[str, str, int]], what: str) -> float:
        """The latest stamp of ``keys`` once all have one; ``TimeoutError`` after
        ``_stats.WAIT_TIMEOUT`` (30 s for a whole start)."""
        wanted = list(keys)
        timeout = max(_stats.WAIT_TIMEOUT, 30.0 if len(wanted) > 1 else 0.0)
        with self._changed:
            done = self._changed.wait_for(
                lambda: self.fatal or all(key in self.at for key in wanted), timeout
            )
            if self.fatal:
                raise RuntimeError(f"an agent went FATAL: {self.fatal[0]}")
            if not done:
                missing = [key for key in wanted if key not in self.at]
                raise TimeoutError(f"{what}: {len(missing)} missing, e.g. {missing[0]}")
            return max(self.at[key] for key in wanted)


# --------------------------------------------------------------------- our side


@dataclasses.dataclass
class _Cycle:
    start: float = 0.0
    detect: list[float] = dataclasses.field(default_factory=list)
    restart_default: list[float] = dataclasses.field(default_factory=list)
    restart_backoff: list[float] = dataclasses.field(default_factory=list)
    stop: float = 0.0


def orchestrator_cycle(agents: int, kills: int) -> _Cycle:
    """Start ``agents`` process agents, kill ``kills`` of each policy, shut down.

    Even-numbered agents have the default restart policy (the first restart at once),
    odd ones ``immediate_restarts=0`` (the 0.1 s backoff a second crash in a row
    gets). The orchestrator is shut down on the way out, whatever
    happens (``with``); the timed shutdown is the same call, made earlier.
    """
    import psutil

    from bench._agents import IdleProcess
    from pyorchestrate import Orchestrator, OrchestratorEvent, SupervisionConfig

    default = SupervisionConfig(restart="on-failure")
    # A second crash in a row: what a crash loop gets (0.1 s backoff, +-10 % jitter).
    backed_off = SupervisionConfig(restart="on-failure", immediate_restarts=0)
    config = Orchestrator.Config(
        max_workers=200, enable_command_interface=False, run_mode="daemon"
    )
    stamps = Stamps()
    result = _Cycle()
    names = [f"agent-{i:03d}" for i in range(agents)]
    with Orchestrator("bench", config) as orchestrator:
        for event in (
            OrchestratorEvent.AGENT_READY,
            OrchestratorEvent.AGENT_ERROR,
            OrchestratorEvent.AGENT_FATAL,
        ):
            orchestrator.register_event(event, stamps)
        for i, name in enumerate(names):
            policy = backed_off if i % 2 else default
            orchestrator.register_agent(IdleProcess, name, supervision=policy)

        t0 = time.perf_counter()
        orchestrator.start()
        t1 = stamps.wait((("AGENT_READY", name, 1) for name in names), "all READY")
        result.start = t1 - t0

        for j in range(kills):
            for name, into in (
                (names[2 * j], result.restart_default),
                (names[2 * j + 1], result.restart_backoff),
            ):
                detect, restart = kill_agent(orchestrator, stamps, name)
                result.detect.append(detect)
                into.append(restart)
                time.sleep(PAUSE)

        processes = [psutil.Process(_pid(orchestrator, name)) for name in names]
        t0 = time.perf_counter()
        survivors = orchestrator.shutdown()
        t1 = _all_gone(processes)
        result.stop = t1 - t0
        if survivors:
            raise RuntimeError(f"shutdown left survivors: {survivors}")
    return result


def _pid(orchestrator: Orchestrator, name: str) -> int:
    pid = orchestrator.get_agent(name).pid
    if pid is None or pid == os.getpid():
        raise RuntimeError(f"agent {name} has no child pid (got {pid})")
    return pid


def kill_agent(
    orchestrator: Orchestrator, stamps: Stamps, name: str
) -> tuple[float, float]:
    """SIGKILL a READY agent; seconds until AGENT_ERROR and until the next READY."""
    entry = orchestrator.get_agent(name)
    generation = entry.generation_id
    pid = _pid(orchestrator, name)
    ready = stamps.kwargs.get(("AGENT_READY", name, generation))
    if ready is None or ready["pid"] != pid:
        raise RuntimeError(f"{name} generation {generation} is not READY as pid {pid}")
    t0 = time.perf_counter()
    os.kill(pid, signal.SIGKILL)
    detected = stamps.wait([("AGENT_ERROR", name, generation)], "AGENT_ERROR")
    back = stamps.wait([("AGENT_READY", name, generation + 1)], "READY again")
    error = stamps.kwargs[("AGENT_ERROR", name, generation)]
    if error.get("reason") != "killed":
        raise RuntimeError(f"unexpected AGENT_ERROR: {error}")
    if stamps.kwargs[("AGENT_READY", name, generation + 1)]["pid"] == pid:
        raise RuntimeError(f"{name} came back with its old pid {pid}")
    return detected - t0, back - t0


def _all_gone(processes: list[Any]) -> float:
    """Wait until none of ``processes`` (psutil) exists; return the clock then."""
    import psutil

    deadline = time.monotonic() + _stats.WAIT_TIMEOUT

    def alive(process: Any) -> bool:
        try:
            return bool(process.is_running()) and (
                process.status() != psutil.STATUS_ZOMBIE
            )
        except psutil.NoSuchProcess:
            return False

    while any(alive(process) for process in processes):
        if time.monotonic() > deadline:
            raise TimeoutError("agent processes still alive after shutdown")
        time.sleep(0.001)
    return time.perf_counter()


# ------------------------------------------------------------ supervisord's side


def supervisord_cycle(
    handle: Supervisord, polled: int, unpolled: int, into: Figures | None
) -> None:
    """start_all, ``polled`` and ``unpolled`` kills (alternating), stop_all."""
    from bench import _supervisord

    start = _supervisord.start_all(handle)
    quick_kills: list[float] = []
    milestones: list[dict[str, float]] = []
    for i in range(max(polled, unpolled)):
        if i < polled:
            quick_kills += _supervisord.kill_restart(handle, 1, PAUSE)
        if i < unpolled:
            _supervisord.kill_restart_unpolled(handle, 1, PAUSE, milestones=milestones)
    stop = _supervisord.stop_all(handle)
    if into is not None:
        into.sv_start.append(start)
        into.sv_polled += quick_kills
        into.sv_exited += [m["exited"] for m in milestones]
        into.sv_spawned += [m["spawned"] for m in milestones]
        into.sv_running += [m["running"] for m in milestones]
        into.sv_stop.append(stop)


def supervisor_bin(mode: str) -> Path | None:
    """supervisord's bin dir per ``--supervisord``: install it (``always``), use it if
    already installed (``auto``), or not at all (``never``)."""
    from bench import _supervisord

    if mode == "never":
        return None
    if mode == "auto":
        return _supervisord.cached_supervisor()
    return _supervisord.ensure_supervisor()


@dataclasses.dataclass
class _NoSupervisord:
    version: str = "not run"
    leftovers: list[int] = dataclasses.field(default_factory=list)


# --------------------------------------------------------------------- the table


def _cells(samples: list[float]) -> tuple[str, str]:
    if not samples:
        return "n/a", "n/a"
    p50, p95 = _stats.p50_p95(samples)
    return _stats.fmt_ms(p50), _stats.fmt_ms(p95)


def absolute_row(
    name: str, samples: list[float], baseline: list[float], target: float | None
) -> None:
    """A row judged on our p95 against ``target`` seconds (``None``: shown only)."""
    if target is None:
        judged = "- (a backoff, by design)"
    else:
        verdict = "met" if _stats.percentile(samples, 95) < target else "MISSED"
        judged = f"p95 < {target * 1e3:g} ms: {verdict}"
    _stats.print_row(name, *_cells(samples), *_cells(baseline), judged)


def relative_row(name: str, samples: list[float], baseline: list[float]) -> None:
    """A row judged "no slower than supervisord": our p95 against its p95."""
    if baseline:
        ours, theirs = _stats.percentile(samples, 95), _stats.percentile(baseline, 95)
        target = f"p95 <= sv p95: {'met' if ours <= theirs else 'MISSED'}"
    else:
        target = "<= supervisord: no baseline"
    _stats.print_row(name, *_cells(samples), *_cells(baseline), target)


def _ratio(theirs: list[float], ours: list[float]) -> str:
    if not theirs:
        return "n/a"
    return f"{_stats.percentile(theirs, 50) / _stats.percentile(ours, 50):.0f}x"


def print_table(figures: Figures, agents: int) -> None:
    f = figures
    _stats.print_header()
    relative_row(f"start {agents} agents -> all READY", f.start, f.sv_start)
    absolute_row(
        "kill -9 -> AGENT_ERROR vs sv 'exited'", f.detect, f.sv_exited, RESTART_TARGET
    )
    for label, ours in (("default", f.restart_default), ("0.1 s", f.restart_backoff)):
        absolute_row(
            f"kill -9 -> READY, {label} vs unpolled",
            ours,
            f.sv_running,
            RESTART_TARGET if label == "default" else None,
        )
    for label, ours in (("default", f.restart_default), ("0.1 s", f.restart_backoff)):
        absolute_row(
            f"kill -9 -> READY, {label} vs polled",
            ours,
            f.sv_polled,
            RESTART_TARGET if label == "default" else None,
        )
    relative_row(f"stop {agents} agents -> processes gone", f.stop, f.sv_stop)
    print()
    print("baselines, supervisord (sv) on the same workload, same run:")
    print("  start: startAllProcesses until all RUNNING with startsecs=0, i.e. forked,")
    print("    not ready (its workers' interpreters may still be starting);")
    print("  'exited': its log stamp of reaping the killed process (detection);")
    print(
        "  unpolled: its log stamp of RUNNING again, nobody polling (what users get);"
    )
    print(
        "  polled: RUNNING again with a new pid, RPC-polled every 5 ms (the polls wake"
    )
    print("    its 1 s main loop: flattering);")
    print("  stop: stopAllProcesses until all STOPPED and their processes gone.")
    print("our detection row pools the kills of both policies.")
    if f.sv_spawned:
        p50, p95 = _cells(f.sv_spawned)
        print(f"sv unpolled kill -9 -> 'spawned' (forked again): p50 {p50}, p95 {p95}")
        print(
            "restart p50, supervisord unpolled RUNNING / ours: "
            f"{_ratio(f.sv_running, f.restart_default)} (default policy), "
            f"{_ratio(f.sv_running, f.restart_backoff)} (after a 0.1 s backoff); "
            f"vs 'spawned': {_ratio(f.sv_spawned, f.restart_default)}, "
            f"{_ratio(f.sv_spawned, f.restart_backoff)}"
        )


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small and short (smoke run)"
    )
    parser.add_argument(
        "--agents", type=int, help="agents/programs (default 100, quick 10)"
    )
    parser.add_argument(
        "--cycles", type=int, help="measured cycles (default 10, quick 1)"
    )
    parser.add_argument(
        "--kills", type=int, help="kills per policy in all (default 20, quick 2)"
    )
    parser.add_argument(
        "--supervisord",
        choices=("always", "auto", "never"),
        help="run the anchor: always (pip-installs it once), auto (only if already "
        "installed), never; default always, quick auto",
    )
    args = parser.parse_args(argv)
    agents = args.agents or (10 if args.quick else 100)
    cycles = args.cycles or (1 if args.quick else 10)
    kills = args.kills or (2 if args.quick else 20)
    warmup = 1
    mode = args.supervisord or ("auto" if args.quick else "always")
    per_cycle = -(-kills // cycles)  # ceil: the last cycles may kill fewer
    if 2 * per_cycle > agents:
        parser.error(f"{kills} kills per policy over {cycles} cycles need more agents")

    wall = time.perf_counter()
    bin_dir = supervisor_bin(mode)
    figures = Figures()
    with (
        tempfile.TemporaryDirectory(prefix="bench-sup-") as work,
        _maybe_supervisord(bin_dir, agents, Path(work)) as handle,
    ):
        _stats.print_title(
            f"supervision: {agents} process agents vs supervisord, same workload",
            agents=agents,
            cycles=cycles,
            warmup=warmup,
            kills_per_policy=kills,
            supervisord=handle.version,
            load=_load(),
        )
        left = kills
        for cycle in range(warmup + cycles):
            measured = cycle >= warmup
            now = min(per_cycle, left) if measured else 1
            ours = orchestrator_cycle(agents, now)
            if measured:
                left -= now
                figures.start.append(ours.start)
                figures.detect += ours.detect
                figures.restart_default += ours.restart_default
                figures.restart_backoff += ours.restart_backoff
                figures.stop.append(ours.stop)
            if isinstance(handle, _NoSupervisord):
                continue
            # The warm-up cycle makes no unpolled kill: each takes ~2 s.
            supervisord_cycle(
                handle, now, now if measured else 0, figures if measured else None
            )
    print_table(figures, agents)
    if bin_dir is None:
        why = "--supervisord never" if mode == "never" else "not installed yet"
        print(f"supervisord: not run ({why}; `--supervisord always` installs it)")
    print(f"wall time: {time.perf_counter() - wall:.1f} s; load average now {_load()}")
    if handle.leftovers:
        print(f"supervisord left children behind: {handle.leftovers}", file=sys.stderr)
        return 1
    return _stats.finish()


def _load() -> str:
    """The 1, 5 and 15 minute load averages (other work on the machine skews both
    sides alike, cycles alternating, but it shows in every figure)."""
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def _maybe_supervisord(
    bin_dir: Path | None, programs: int, workdir: Path
) -> contextlib.AbstractContextManager[Supervisord | _NoSupervisord]:
    from bench import _supervisord

    if bin_dir is None:
        return contextlib.nullcontext(_NoSupervisord())
    return _supervisord.supervisord(programs, workdir, bin_dir=bin_dir)


if __name__ == "__main__":
    sys.exit(main())
