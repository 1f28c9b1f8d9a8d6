"""Commands as agents against supervisord: the same 100 programs (``sleep 1000``).

100 ``CommandAgent``s under one orchestrator against supervisord 4.x running the same
100 programs, on the same machine in the same run (issue 15's benchmark):

* **start**: ``orchestrator.start()`` until the AGENT_READY callback has run for all
  100, against ``startAllProcesses`` until all are RUNNING (``startsecs=0``);
* **kill -9**: ``os.kill(pid, SIGKILL)`` of one program until the AGENT_ERROR callback
  (``reason="killed"``: detected) and until the AGENT_READY callback of the next
  generation (restarted; default policy, the first restart at once), against
  supervisord's own log stamps (``exited``: reaped; RUNNING again, nobody polling) and
  RUNNING again with a new pid while RPC-polled every 5 ms;
* **stop all**: ``orchestrator.shutdown()`` until every program's process is gone,
  against ``stopAllProcesses`` until all are STOPPED and gone (SIGTERM: sleep dies).

Cycles alternate, ours then supervisord's (a fresh orchestrator each cycle, one
supervisord for the run), so both see the same load and only one side's programs run
at a time; one warm-up cycle each is dropped.

Then, in a separate orchestrator **process** (this script with ``--host``: a DAEMON
orchestrator, its command interface on a unix socket, the same 100 commands):

* **RSS** of the orchestrator's process plus the helper processes it owns (its
  descendants that are not the commands: the process-group guard ``sh``), against
  supervisord's process alone; programs are excluded on both sides; 100 running;
* **a chatty job**: one more CommandAgent writing at full speed (``yes``, and ``yes``
  with a 100-byte line), captured to its file (no rotation: ``log_max_bytes=0``):
  lines/s and MB/s of what the job wrote (the file's growth without our 25-byte
  timestamps), against supervisord capturing the same command to its
  ``stdout_logfile`` (raw, ``stdout_logfile_maxbytes=0``); meanwhile, from this
  process, ``ps`` round trips (``ControlClient.request("ps")`` on one connection, 2 ms
  apart), against the same round trips with no chatty job (windows alternate).

Targets (issue 15): start, restart and stop all no slower than supervisord (our p95
against its p95); RSS within 2x supervisord's; ``ps`` p99 under 20 ms while a job
writes at full speed. Nothing is asserted: a miss shows as ``MISSED``.

supervisord comes from ``_supervisord.ensure_supervisor()`` (pip, first run only).
With ``--quick`` it is used only if that private venv is already there (``--supervisord
auto``), and the baselines show ``n/a`` otherwise.

Run: ``python bench/bench_commands.py [--quick] [--programs N] [--cycles N]
[--kills N] [--windows N] [--window S] [--supervisord always|auto|never]``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _stats

if TYPE_CHECKING:
    from bench._supervisord import Supervisord

PROGRAM = ["sleep", "1000"]
LONG_LINE = "x" * 99  # with its newline, 100 bytes a line
CHATTY: dict[str, list[str]] = {
    "yes": ["yes"],
    "yes 100 B": ["yes", LONG_LINE],
}
"""The chatty jobs: a label and the command."""

RSS_RATIO = 2.0  # RSS within 2x supervisord's
PS_TARGET = 0.020  # ps p99 under 20 ms while a job writes at full speed
PS_GAP = 0.002  # between two ps requests (untimed)
HIGH = 99  # the upper percentile of the ps table
PAUSE = 0.05  # untimed, between two kills (as _supervision)
SV_WINDOW = 0.5  # supervisord's chatty windows, at most (it writes ~600 MB/s here)


# ------------------------------------------------------------ exit watcher

_WATCHER = """
import os, select, sys, time
fds = {os.pidfd_open(int(pid)) for pid in sys.argv[1:]}
poller = select.poll()
for fd in fds:
    poller.register(fd, select.POLLIN)
print("watching", flush=True)
last = 0.0
while fds:
    for fd, _ in poller.poll():
        if fd in fds:
            last = time.perf_counter()
            fds.discard(fd)
            poller.unregister(fd)
print(last, flush=True)
"""


@contextlib.contextmanager
def exit_watcher(pids: list[int]) -> Iterator[Callable[[], float]]:
    """A separate process that waits on a pidfd of each of ``pids`` (``poll``);
    yields a function returning the ``perf_counter`` (CLOCK_MONOTONIC, the same in
    every process) at which the last of them exited.

    Observed from outside, the moment does not depend on who holds the orchestrator's
    GIL: a poller in the benchmark's process (``_all_gone``) runs only when the
    orchestrator's threads let it, while they handle the very exits it waits for.
    """
    watcher = subprocess.Popen(
        [sys.executable, "-c", _WATCHER, *map(str, pids)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert watcher.stdout is not None
    try:
        if watcher.stdout.readline().strip() != "watching":
            raise RuntimeError("the exit watcher did not start")

        def last_exit() -> float:
            assert watcher.stdout is not None
            line = watcher.stdout.readline()
            if not line:
                raise RuntimeError("the exit watcher ended without an answer")
            return float(line)

        yield last_exit
    finally:
        watcher.kill()
        watcher.wait()
        watcher.stdout.close()


# ------------------------------------------------------------------ our cycles


@dataclasses.dataclass
class Figures:
    """Samples in seconds (bytes for RSS), ours and supervisord's."""

    start: list[float] = dataclasses.field(default_factory=list)
    detect: list[float] = dataclasses.field(default_factory=list)
    restart: list[float] = dataclasses.field(default_factory=list)
    stop: list[float] = dataclasses.field(default_factory=list)
    exited: list[float] = dataclasses.field(default_factory=list)
    sv_exited_all: list[float] = dataclasses.field(default_factory=list)
    sv_start: list[float] = dataclasses.field(default_factory=list)
    sv_polled: list[float] = dataclasses.field(default_factory=list)
    sv_exited: list[float] = dataclasses.field(default_factory=list)
    sv_running: list[float] = dataclasses.field(default_factory=list)
    sv_stop: list[float] = dataclasses.field(default_factory=list)
    rss: list[float] = dataclasses.field(default_factory=list)
    sv_rss: list[float] = dataclasses.field(default_factory=list)
    rss_parts: str = ""
    uss: str = ""


def orchestrator_cycle(programs: int, kills: int, into: Figures | None) -> None:
    """Start ``programs`` commands, kill ``kills`` of them one at a time, shut down."""
    import psutil

    from bench._supervision import Stamps, _all_gone, _pid, kill_agent
    from pyorchestrate import CommandAgent, Orchestrator, OrchestratorEvent

    config = Orchestrator.Config(
        max_workers=2 * programs, enable_command_interface=False, run_mode="daemon"
    )
    stamps = Stamps()
    names = [f"cmd-{i:03d}" for i in range(programs)]
    start = stop = 0.0
    detect: list[float] = []
    restart: list[float] = []
    with Orchestrator("bench-commands", config) as orchestrator:
        for event in (
            OrchestratorEvent.AGENT_READY,
            OrchestratorEvent.AGENT_ERROR,
            OrchestratorEvent.AGENT_FATAL,
        ):
            orchestrator.register_event(event, stamps)
        for name in names:
            orchestrator.register_agent(
                CommandAgent,
                name,
                command=PROGRAM,
                supervision={"restart": "on-failure"},
            )
        t0 = time.perf_counter()
        orchestrator.start()
        t1 = stamps.wait((("AGENT_READY", name, 1) for name in names), "all READY")
        start = t1 - t0
        for name in names[:kills]:
            found, back = kill_agent(orchestrator, stamps, name)
            detect.append(found)
            restart.append(back)
            time.sleep(PAUSE)
        processes = [psutil.Process(_pid(orchestrator, name)) for name in names]
        with exit_watcher([p.pid for p in processes]) as last_exit:
            t0 = time.perf_counter()
            survivors = orchestrator.shutdown()
            stop = _all_gone(processes) - t0
            exited = last_exit() - t0
        if survivors:
            raise RuntimeError(f"shutdown left survivors: {survivors}")
    if into is not None:
        into.start.append(start)
        into.detect += detect
        into.restart += restart
        into.stop.append(stop)
        into.exited.append(exited)


def supervisord_cycle(
    handle: Supervisord, kills: int, into: Figures | None, *, unpolled: bool = True
) -> None:
    """start_all, ``kills`` polled and (``unpolled``) unpolled kills, alternating,
    stop_all. An unpolled kill waits for supervisord's 1 s ticks: about 2 s each."""
    from bench import _supervisord

    start = _supervisord.start_all(handle)
    polled: list[float] = []
    milestones: list[dict[str, float]] = []
    for _ in range(kills):
        polled += _supervisord.kill_restart(handle, 1, PAUSE)
        if unpolled:
            _supervisord.kill_restart_unpolled(handle, 1, PAUSE, milestones=milestones)
    pids = [info["pid"] for info in handle.supervisor.getAllProcessInfo()]
    started: list[float] = []
    with exit_watcher(pids) as last_exit:
        stop = _supervisord.stop_all(handle, started=started)
        exited = last_exit() - started[0]
    if into is not None:
        into.sv_exited_all.append(exited)
        into.sv_start.append(start)
        into.sv_polled += polled
        into.sv_exited += [m["exited"] for m in milestones]
        into.sv_running += [m["running"] for m in milestones]
        into.sv_stop.append(stop)


# ------------------------------------------------------------ the host process


def host(argv: list[str]) -> int:
    """``--host``: a DAEMON orchestrator with ``--programs`` commands, driven by lines
    on stdin (``chatty LABEL``: register and start that chatty job, ``quiet``: stop
    it; end of input: shut down). Answers one JSON line on stdout per step."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", action="store_true")
    parser.add_argument("--programs", type=int, required=True)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--logs", required=True)
    args = parser.parse_args(argv)

    from pyorchestrate import CommandAgent, Orchestrator, OrchestratorEvent

    config = Orchestrator.Config(
        max_workers=2 * args.programs + 10,
        run_mode="daemon",
        command_socket_path=args.socket,
        logs_dir=args.logs,
        log_max_bytes=0,  # no rotation: the benchmark reads the file's growth
    )
    seen: dict[tuple[str, str], int] = {}
    changed = threading.Condition()

    def stamp(**kwargs: Any) -> None:
        with changed:
            key = (kwargs["event"].name, kwargs["agent_name"])
            seen[key] = seen.get(key, 0) + 1
            changed.notify_all()

    def wait_for(*keys: tuple[str, str]) -> None:
        with changed:
            if not changed.wait_for(
                lambda: all(key in seen for key in keys), _stats.WAIT_TIMEOUT * 3
            ):
                raise TimeoutError("the host's orchestrator did not get there")

    def say(**answer: Any) -> None:
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()

    names = [f"cmd-{i:03d}" for i in range(args.programs)]
    with Orchestrator("bench-commands-host", config) as orchestrator:
        for event in (
            OrchestratorEvent.AGENT_READY,
            OrchestratorEvent.AGENT_TERMINATED,
        ):
            orchestrator.register_event(event, stamp)
        for name in names:
            orchestrator.register_agent(CommandAgent, name, command=PROGRAM)
        orchestrator.start()
        wait_for(*(("AGENT_READY", name) for name in names))
        say(ready=True, programs=[orchestrator.get_agent(n).pid for n in names])
        chatty = None
        runs = 0
        for line in sys.stdin:
            word, _, label = line.strip().partition(" ")
            if word == "chatty":
                runs += 1
                chatty = f"chatty-{runs}"
                orchestrator.register_agent(CommandAgent, chatty, command=CHATTY[label])
                orchestrator.start_agent(chatty)
                wait_for(("AGENT_READY", chatty))
                file = orchestrator.log_files(chatty, "stdout")
                say(started=chatty, file=str(file[-1]) if file else None)
            elif word == "quiet" and chatty is not None:
                orchestrator.stop_agent(chatty)
                wait_for(("AGENT_TERMINATED", chatty))
                say(stopped=chatty)
        survivors = orchestrator.shutdown()
    return 1 if survivors else 0


class Host:
    """The ``--host`` process, its socket and logs in a private temporary directory."""

    def __init__(self, programs: int, directory: Path) -> None:
        self.socket = str(directory / "ctl.sock")
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--host",
                "--programs",
                str(programs),
                "--socket",
                self.socket,
                "--logs",
                str(directory / "logs"),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            first = self.read()
        except BaseException:
            self.process.kill()  # it failed to start: do not leave it behind
            self.process.wait()
            raise
        self.programs: set[int] = set(first["programs"])

    def read(self) -> dict[str, Any]:
        stdout: IO[str] | None = self.process.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the host ended ({self.process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def send(self, line: str) -> dict[str, Any]:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(line + "\n")
        stdin.flush()
        return self.read()

    def rss(self) -> tuple[int, list[str]]:
        """RSS of the host and its descendants that are not the commands (bytes),
        and what was counted."""
        import psutil

        me = psutil.Process(self.process.pid)
        counted = [me, *me.children(recursive=True)]
        total = 0
        parts = []
        for proc in counted:
            command = proc.cmdline()[:1] if proc.pid != me.pid else []
            if proc.pid in self.programs or command in (["sleep"], ["yes"]):
                continue  # a command, not the orchestrator's
            rss = proc.memory_info().rss
            total += rss
            parts.append(f"{proc.name()} {rss / 2**20:.1f} MB")
        return total, parts

    def uss(self) -> float:
        import psutil

        return float(psutil.Process(self.process.pid).memory_full_info().uss)

    def close(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            code = self.process.wait(_stats.WAIT_TIMEOUT + 5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise RuntimeError("the host did not shut down") from None
        if self.process.stdout is not None:
            self.process.stdout.close()
        if code != 0:
            raise RuntimeError(f"the host exited with {code}")


@contextlib.contextmanager
def running_host(programs: int, directory: Path) -> Iterator[Host]:
    host = Host(programs, directory)
    try:
        yield host
    finally:
        host.close()


# ------------------------------------------------------------- chatty windows


@dataclasses.dataclass
class Chatty:
    """Per chatty command: ps samples, and per window lines/s and MB/s, both sides."""

    ps: list[float] = dataclasses.field(default_factory=list)
    idle: list[float] = dataclasses.field(default_factory=list)
    lines: list[float] = dataclasses.field(default_factory=list)
    mbs: list[float] = dataclasses.field(default_factory=list)
    sv_lines: list[float] = dataclasses.field(default_factory=list)
    sv_mbs: list[float] = dataclasses.field(default_factory=list)
    rss_after: float = 0.0


def ps_window(client: Any, seconds: float, agents: int) -> list[float]:
    """``ps`` round trips, ``PS_GAP`` apart, for ``seconds``."""
    samples = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        payload = client.request("ps")
        samples.append(time.perf_counter() - t0)
        if payload.get("status") != "success":
            raise RuntimeError(f"ps failed: {payload.get('error')}")
        if len(payload["data"]["agents"]) < agents:
            raise RuntimeError("ps did not list every agent")
        time.sleep(PS_GAP)
    return samples


def uncaptured_window(client: Any, seconds: float, agents: int) -> list[float]:
    """``ps`` round trips while ``yes`` writes to ``/dev/null``, started here, not by
    the orchestrator: the CPU a chatty job takes, without capturing it."""
    hog = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL)
    try:
        return ps_window(client, seconds, agents)
    finally:
        hog.kill()
        hog.wait()


def _growth(path: Path, before: int, after: int) -> tuple[int, int]:
    """Lines and bytes written to ``path`` between two sizes."""
    with path.open("rb") as file:
        file.seek(before)
        data = file.read(after - before)
    return data.count(b"\n"), len(data)


def chatty_window(
    host: Host, client: Any, label: str, seconds: float, agents: int, into: Chatty
) -> None:
    """Start the chatty job, measure its capture and ``ps`` for ``seconds``, stop it."""
    from pyorchestrate.core.utilities.outputfiles import format_stamp

    stamp = len(format_stamp(0.0)) + 1  # what we add before each stored line
    started = host.send(f"chatty {label}")
    if started.get("file") is None:
        raise RuntimeError(f"the chatty job has no output file: {started}")
    path = Path(started["file"])
    before, t0 = path.stat().st_size, time.perf_counter()
    into.ps += ps_window(client, seconds, agents)
    after, t1 = path.stat().st_size, time.perf_counter()
    rss, _ = host.rss()
    into.rss_after = max(into.rss_after, rss)
    host.send("quiet")
    lines, size = _growth(path, before, after)
    into.lines.append(lines / (t1 - t0))
    into.mbs.append((size - stamp * lines) / (t1 - t0) / 1e6)
    path.unlink()  # up to a GB a window: do not keep it


def sv_chatty_window(
    handle: Supervisord, path: Path, seconds: float, into: Chatty
) -> None:
    """The same with supervisord: its program w0 is the chatty command, ``path`` its
    ``stdout_logfile``."""
    handle.supervisor.startProcess("w0", True)
    before, t0 = path.stat().st_size, time.perf_counter()
    time.sleep(seconds)
    after, t1 = path.stat().st_size, time.perf_counter()
    handle.supervisor.stopProcess("w0", True)
    lines, size = _growth(path, before, after)
    into.sv_lines.append(lines / (t1 - t0))
    into.sv_mbs.append(size / (t1 - t0) / 1e6)
    with path.open("r+b") as file:
        file.truncate(0)  # supervisord appends (O_APPEND): the next window starts at 0


def sv_chatty(
    bin_dir: Path | None, workdir: Path, command: list[str], log: Path
) -> contextlib.AbstractContextManager[Supervisord | None]:
    from bench import _supervisord

    if bin_dir is None:
        return contextlib.nullcontext(None)
    return _supervisord.supervisord(
        1,
        workdir,
        bin_dir=bin_dir,
        command=command,
        options={
            "stdout_logfile": str(log),
            "stdout_logfile_maxbytes": "0",
            "redirect_stderr": "true",
            "autorestart": "false",
        },
    )


# --------------------------------------------------------------------- the table


def _cells(samples: list[float], fmt: Callable[[float], str]) -> tuple[str, str]:
    if not samples:
        return "n/a", "n/a"
    p50, p95 = _stats.p50_p95(samples)
    return fmt(p50), fmt(p95)


def _mb(value: float) -> str:
    return f"{value / 2**20:.1f} MB"


def relative_row(name: str, ours: list[float], theirs: list[float]) -> None:
    """Judged "no slower than supervisord": our p95 against its p95."""
    if theirs:
        verdict = (
            "met"
            if _stats.percentile(ours, 95) <= _stats.percentile(theirs, 95)
            else "MISSED"
        )
        target = f"p95 <= sv p95: {verdict}"
    else:
        target = "<= supervisord: no baseline"
    _stats.print_row(
        name, *_cells(ours, _stats.fmt_ms), *_cells(theirs, _stats.fmt_ms), target
    )


def print_supervision(f: Figures, programs: int) -> None:
    _stats.print_header()
    relative_row(f"start {programs} commands -> all READY", f.start, f.sv_start)
    _stats.print_row(
        "kill -9 -> AGENT_ERROR vs sv 'exited'",
        *_cells(f.detect, _stats.fmt_ms),
        *_cells(f.sv_exited, _stats.fmt_ms),
        "none set (shown)",
    )
    relative_row("kill -9 -> READY again vs sv unpolled", f.restart, f.sv_running)
    relative_row("kill -9 -> READY again vs sv polled", f.restart, f.sv_polled)
    relative_row(f"stop {programs} commands -> processes gone", f.stop, f.sv_stop)
    relative_row("stop all -> last exit (pidfd watcher)", f.exited, f.sv_exited_all)
    if f.sv_rss:
        ratio = _stats.percentile(f.rss, 50) / _stats.percentile(f.sv_rss, 50)
        verdict = "met" if ratio <= RSS_RATIO else "MISSED"
        target = f"<= {RSS_RATIO:g}x sv: {verdict} ({ratio:.2f}x)"
    else:
        target = f"<= {RSS_RATIO:g}x sv: no baseline"
    _stats.print_row(
        f"RSS, {programs} running (orchestrator + guard)",
        *_cells(f.rss, _mb),
        *_cells(f.sv_rss, _mb),
        target,
    )


def _rate(value: float) -> str:
    return f"{value:,.0f}/s"


def _mbs(value: float) -> str:
    return f"{value:.1f} MB/s"


def _slow_cells(samples: list[float], fmt: Callable[[float], str]) -> tuple[str, str]:
    """The median window and the slow side (5th percentile of the rate)."""
    if not samples:
        return "n/a", "n/a"
    return fmt(_stats.percentile(samples, 50)), fmt(_stats.percentile(samples, 5))


def print_output(
    chatty: dict[str, Chatty], uncaptured: list[float], programs: int
) -> None:
    _stats.print_header(HIGH)
    for label, c in chatty.items():
        _stats.latency_row(
            f"ps, {programs} + chatty `{label}` vs idle", c.ps, c.idle, PS_TARGET, HIGH
        )
    idle = [sample for c in chatty.values() for sample in c.idle]
    _stats.latency_row(
        f"ps, {programs} + `yes >/dev/null` (not ours)",
        uncaptured,
        idle,
        PS_TARGET,
        HIGH,
    )
    for label, c in chatty.items():
        _stats.print_row(
            f"`{label}` -> file, lines/s vs sv",
            *_slow_cells(c.lines, _rate),
            *_slow_cells(c.sv_lines, _rate),
            "none set",
        )
        _stats.print_row(
            f"`{label}` -> file, MB/s vs sv",
            *_slow_cells(c.mbs, _mbs),
            *_slow_cells(c.sv_mbs, _mbs),
            "none set",
        )


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    if "--host" in args_list:
        return host(args_list)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small and short")
    parser.add_argument("--programs", type=int, help="default 100, quick 10")
    parser.add_argument(
        "--cycles", type=int, help="measured cycles (default 10, quick 1)"
    )
    parser.add_argument("--kills", type=int, help="kills in all (default 20, quick 1)")
    parser.add_argument(
        "--windows", type=int, help="chatty windows each (default 3, quick 1)"
    )
    parser.add_argument(
        "--window", type=float, help="seconds a window (default 1.5, quick 0.3)"
    )
    parser.add_argument(
        "--supervisord",
        choices=("always", "auto", "never"),
        help="run the anchor: always (pip-installs it once), auto (only if already "
        "installed), never; default always, quick auto",
    )
    args = parser.parse_args(args_list)
    quick = args.quick
    programs = args.programs or (10 if quick else 100)
    cycles = args.cycles or (1 if quick else 10)
    kills = args.kills or (1 if quick else 20)
    windows = args.windows or (1 if quick else 3)
    window = args.window or (0.3 if quick else 1.5)
    warmup = 0 if quick else 1
    mode = args.supervisord or ("auto" if quick else "always")
    per_cycle = -(-kills // cycles)
    if per_cycle > programs:
        parser.error(f"{kills} kills over {cycles} cycles need more programs")

    from bench import _supervisord
    from bench._supervision import _load, supervisor_bin

    wall = time.perf_counter()
    bin_dir = supervisor_bin(mode)
    figures = Figures()
    chatty = {label: Chatty() for label in CHATTY}
    uncaptured: list[float] = []
    leftovers: list[int] = []
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bc-")))
        handle: Supervisord | None = None
        if bin_dir is not None:
            handle = stack.enter_context(
                _supervisord.supervisord(
                    programs, work, bin_dir=bin_dir, command=PROGRAM
                )
            )
        _stats.print_title(
            f"commands: {programs} CommandAgents vs supervisord, `{shlex.join(PROGRAM)}`",
            programs=programs,
            cycles=cycles,
            warmup=warmup,
            kills=kills,
            windows=f"{windows}x{window:g}s",
            supervisord=handle.version if handle is not None else "not run",
            load=_load(),
        )
        left = kills
        for cycle in range(warmup + cycles):
            measured = cycle >= warmup
            now = min(per_cycle, left) if measured else 1
            orchestrator_cycle(programs, now, figures if measured else None)
            if measured:
                left -= now
            if handle is not None:
                # --quick: no unpolled kill (2 s each), its rows show n/a
                supervisord_cycle(
                    handle, now, figures if measured else None, unpolled=not quick
                )

        # RSS and output: one orchestrator process, 100 commands running.
        if handle is not None:
            _supervisord.start_all(handle)
        sv_logs = {label: work / f"chatty-{i}.log" for i, label in enumerate(CHATTY)}
        sv_chatty_handles = {
            label: stack.enter_context(
                sv_chatty(bin_dir, work, command, sv_logs[label])
            )
            for label, command in CHATTY.items()
        }
        with running_host(programs, work) as host_process:
            import psutil

            from pyorchestrate.core.control.client import ControlClient

            for _ in range(2 if quick else 5):
                rss, parts = host_process.rss()
                figures.rss.append(rss)
                figures.rss_parts = ", ".join(parts)
                if handle is not None:
                    figures.sv_rss.append(psutil.Process(handle.pid).memory_info().rss)
                time.sleep(0.1)
            figures.uss = _mb(host_process.uss())
            if handle is not None:
                sv_uss = psutil.Process(handle.pid).memory_full_info().uss
                figures.uss += f" (sv {_mb(sv_uss)})"
            with ControlClient(
                host_process.socket, timeout=_stats.WAIT_TIMEOUT
            ) as client:
                ps_window(client, window / 4, programs)  # warm-up
                for _ in range(windows):
                    uncaptured += uncaptured_window(client, window, programs)
                    for label, c in chatty.items():
                        c.idle += ps_window(client, window, programs)
                        chatty_window(host_process, client, label, window, programs, c)
                        sv_handle = sv_chatty_handles[label]
                        if sv_handle is not None:
                            sv_chatty_window(
                                sv_handle, sv_logs[label], min(window, SV_WINDOW), c
                            )
        if handle is not None:
            _supervisord.stop_all(handle)
    for sv in (handle, *sv_chatty_handles.values()):
        if sv is not None:
            leftovers += sv.leftovers

    print_supervision(figures, programs)
    print()
    print_output(chatty, uncaptured, programs)
    print()
    print("baselines, supervisord (sv) on the same programs, same run:")
    print("  start: startAllProcesses until all RUNNING (startsecs=0: forked);")
    print("  'exited': its log stamp of reaping the killed program (detection);")
    print(
        "  unpolled: its log stamp of RUNNING again, nobody polling (what users get);"
    )
    print("  polled: RUNNING again with a new pid, RPC-polled every 5 ms (flattering);")
    print("  stop: stopAllProcesses until all STOPPED and their processes gone;")
    print("  last exit: the same stops, until a separate process waiting on a pidfd")
    print("    of each program saw the last one exit (ours: shutdown() was called);")
    print("  RSS: supervisord's process alone, with its programs running;")
    print("  ps: the same ps round trips with no chatty job (windows alternate);")
    print("  `yes >/dev/null`: ps while this script runs yes, output not captured")
    print("    (the CPU a chatty program takes, without our capture);")
    print("  lines/s, MB/s: the same command to its stdout_logfile (raw bytes).")
    print("rates: p50 is the median window, the next column the slowest (5th pct).")
    print(f"RSS counted: {figures.rss_parts}; USS of our process {figures.uss}")
    for label, c in chatty.items():
        print(f"RSS after the `{label}` windows: {_mb(c.rss_after)} (max)")
    if bin_dir is None:
        why = "--supervisord never" if mode == "never" else "not installed yet"
        print(f"supervisord: not run ({why}; `--supervisord always` installs it)")
    print(f"wall time: {time.perf_counter() - wall:.1f} s; load average now {_load()}")
    if leftovers:
        print(f"supervisord left children behind: {leftovers}", file=sys.stderr)
        return 1
    return _stats.finish()


if __name__ == "__main__":
    sys.exit(main())
