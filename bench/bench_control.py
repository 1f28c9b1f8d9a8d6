"""Command channel: ``ps`` round trips on one connection, and the CLI as a process.

Against one DAEMON orchestrator with 100 idle thread agents, all started and READY
(``bench._agents.IdleThread``: each waits on its stop event, so none uses CPU), its
command interface on a Unix socket in a private temporary directory:

* ``ps`` round trip: ``ControlClient.request("ps")`` on one persistent connection,
  from sending the request line to the parsed reply (about 60 KB: 100 agents with
  their configs). Baseline, interleaved request by request: a bare ``AF_UNIX``
  echo server on a thread, sent a JSON line of the same size as the ps reply,
  timed until the client has read the line back and parsed it with ``json.loads``.
* CLI end to end: ``pyorchestrate ps --socket PATH`` (the table, as written to a
  pipe) and ``pyorchestrate ps --json --socket PATH`` run as processes (stdout to a
  pipe that is read and discarded) until they have exited, interleaved with
  ``python -c pass`` (the interpreter's floor) and, when ``bench_supervision.py``
  has installed supervisor into its private venv, ``supervisorctl status`` against
  a supervisord running 100 programs (all RUNNING) on a unix socket.

Targets: ps round trip p99 < 5 ms; ``pyorchestrate ps`` p50 at most supervisorctl's;
``ps --json`` p50 within 1.5x ``python -c pass`` (a stretch goal); the CLI p99 under
150 ms.

Run: ``python bench/bench_control.py [--quick] [--requests N] [--runs N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _stats

SERVER_TARGET = 0.005  # ps round trip under 5 ms p99
CLI_TARGET = 0.150  # the CLI end to end under 150 ms p99
AGENTS = 100
HIGH = 99  # the upper percentile shown and judged

STRETCH_RATIO = 1.5  # ps --json p50 within 1.5x python -c pass
SUPERVISORCTL_RATIO = 1.0  # pyorchestrate ps p50 at most supervisorctl status p50


@contextlib.contextmanager
def fleet(socket_path: str, agents: int) -> Iterator[Any]:
    """A DAEMON orchestrator with ``agents`` idle thread agents, READY, ``join()`` on
    a thread; stopped and joined on the way out, whatever happens."""
    from bench._agents import IdleThread
    from pyorchestrate import Orchestrator, RunMode
    from pyorchestrate.core.control.client import ControlClient
    from pyorchestrate.testing import wait_until

    config = Orchestrator.Config(
        run_mode=RunMode.DAEMON,
        command_socket_path=socket_path,
        max_workers=agents,
        agent_stop_timeout=5.0,
    )

    def ready() -> bool:
        try:
            with ControlClient(socket_path, timeout=1.0) as client:
                return bool(client.ps()["running_count"] == agents)
        except Exception:  # not listening yet
            return False

    with Orchestrator("bench-control", config) as orchestrator:
        for i in range(agents):
            orchestrator.register_agent(IdleThread, f"agent-{i:03d}")
        orchestrator.start()
        joiner = threading.Thread(target=orchestrator.join, name="bench-join")
        joiner.start()
        try:
            if not wait_until(ready, _stats.WAIT_TIMEOUT):
                raise TimeoutError(f"{agents} agents not READY behind {socket_path}")
            yield orchestrator
        finally:
            orchestrator.stop()
            joiner.join(_stats.WAIT_TIMEOUT + 5)


class EchoServer:
    """A bare AF_UNIX server on one thread: reads lines and writes each one back."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        self._listener.listen(1)
        self._thread = threading.Thread(
            target=self._serve, name="bench-echo", daemon=True
        )
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:  # closed before anyone connected
            return
        with conn:
            buffer = bytearray()
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buffer += chunk
                while (end := buffer.find(b"\n")) >= 0:
                    conn.sendall(bytes(buffer[: end + 1]))
                    del buffer[: end + 1]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes a pending accept()
        self._listener.close()
        self._thread.join(_stats.WAIT_TIMEOUT)
        Path(self.path).unlink(missing_ok=True)


@contextlib.contextmanager
def echo_round_trips(path: str, line: bytes) -> Iterator[Callable[[], float]]:
    """Yield a sampler: send ``line`` to a bare echo server, read it back, parse it."""
    server = EchoServer(path)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(path)
        client.settimeout(_stats.WAIT_TIMEOUT)
        buffer = bytearray()

        def sample() -> float:
            t0 = time.perf_counter()
            client.sendall(line)
            while (end := buffer.find(b"\n")) < 0:
                chunk = client.recv(65536)
                if not chunk:
                    raise ConnectionError("the echo server closed the connection")
                buffer.extend(chunk)
            json.loads(bytes(buffer[:end]))
            del buffer[: end + 1]
            return time.perf_counter() - t0

        yield sample
    finally:
        client.close()
        server.close()


@contextlib.contextmanager
def ps_round_trips(socket_path: str, agents: int) -> Iterator[Callable[[], float]]:
    """Yield a sampler: one ``ps`` request and its parsed reply, on one connection."""
    from pyorchestrate.core.control.client import ControlClient

    with ControlClient(socket_path, timeout=_stats.WAIT_TIMEOUT) as client:

        def sample() -> float:
            t0 = time.perf_counter()
            payload = client.request("ps")
            t1 = time.perf_counter()
            if payload.get("status") != "success":
                raise RuntimeError(f"ps failed: {payload.get('error')}")
            if len(payload["data"]["agents"]) != agents:
                raise RuntimeError("ps did not list every agent")
            return t1 - t0

        yield sample


def process_run(argv: list[str], env: dict[str, str]) -> Callable[[], float]:
    """A sampler: run ``argv`` to its exit (stdout discarded); it must exit 0."""

    def sample() -> float:
        t0 = time.perf_counter()
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            timeout=60,
            check=False,
        )
        elapsed = time.perf_counter() - t0
        if result.returncode != 0:
            raise RuntimeError(
                f"{argv[:3]} exited {result.returncode}: {result.stderr.decode()[-500:]}"
            )
        return elapsed

    return sample


def cli_command() -> list[str]:
    """The installed ``pyorchestrate`` script beside this interpreter, else ``-m``."""
    script = Path(sys.executable).with_name("pyorchestrate")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "pyorchestrate"]


@contextlib.contextmanager
def supervisorctl_status(work: Path, programs: int) -> Iterator[list[str] | None]:
    """``supervisorctl status`` argv against a supervisord running ``programs``
    programs, all RUNNING; ``None`` when supervisor is not installed in the
    benchmarks' private venv (``python bench/bench_supervision.py`` installs it)."""
    from bench import _supervisord

    bin_dir = _supervisord.cached_supervisor()
    if bin_dir is None:
        yield None
        return
    with _supervisord.supervisord(programs, work, bin_dir=bin_dir) as handle:
        _supervisord.start_all(handle)
        server = f"unix://{handle.directory / 'supervisor.sock'}"
        try:
            yield [str(bin_dir / "supervisorctl"), "-s", server, "status"]
        finally:  # its programs end before supervisord does (none left behind)
            _supervisord.stop_all(handle)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples (smoke run)")
    parser.add_argument("--requests", type=int, help="ps round trips (default 500)")
    parser.add_argument("--runs", type=int, help="CLI process runs (default 30)")
    args = parser.parse_args(argv)
    requests = args.requests or (50 if args.quick else 500)
    runs = args.runs or (3 if args.quick else 30)
    cli = cli_command()

    _stats.print_title(
        "Command channel: ps round trip, and the CLI as a process",
        agents=AGENTS,
        requests=requests,
        cli_runs=runs,
        cli=" ".join(Path(part).name for part in cli),
    )
    work = Path(tempfile.mkdtemp(prefix="po-bench-", dir="/tmp"))  # a short path
    orchestrator_socket = str(work / "o.sock")
    try:
        with fleet(orchestrator_socket, AGENTS):
            from pyorchestrate.core.control.client import ControlClient

            with ControlClient(orchestrator_socket) as client:
                reply = client.request("ps")
            # A JSON line the size of the ps reply, for the bare echo.
            line = (
                json.dumps({"payload": reply}, separators=(",", ":")) + "\n"
            ).encode()
            with (
                ps_round_trips(orchestrator_socket, AGENTS) as ps,
                echo_round_trips(str(work / "echo.sock"), line) as echo,
            ):
                ps_samples, echo_samples = _stats.interleave(requests, 20, ps, echo)

            env = dict(os.environ)
            env.pop("PYORCHESTRATE_SOCKET", None)
            samplers = [
                process_run([*cli, "ps", "--socket", orchestrator_socket], env),
                process_run(
                    [*cli, "ps", "--json", "--socket", orchestrator_socket], env
                ),
                process_run([sys.executable, "-c", "pass"], env),
            ]
            with supervisorctl_status(work, AGENTS) as supervisorctl:
                if supervisorctl is not None:
                    samplers.append(process_run(supervisorctl, env))
                cli_samples, json_samples, pass_samples, *sv_samples = (
                    _stats.interleave(runs, 1 if args.quick else 2, *samplers)
                )
    finally:
        for path in work.iterdir():  # none expected: every server removes its own
            print(f"left behind and removed: {path}", file=sys.stderr)
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        work.rmdir()

    _stats.print_header(HIGH)
    _stats.latency_row(
        f"ps round trip, {AGENTS} agents, 1 connection",
        ps_samples,
        echo_samples,
        SERVER_TARGET,
        HIGH,
    )
    if sv_samples:
        _stats.ratio_row(
            "CLI ps vs supervisorctl status",
            cli_samples,
            sv_samples[0],
            SUPERVISORCTL_RATIO,
            HIGH,
        )
    _stats.ratio_row(
        "CLI ps --json vs python -c pass",
        json_samples,
        pass_samples,
        STRETCH_RATIO,
        HIGH,
    )
    _stats.latency_row(
        "CLI ps as a process vs python -c pass",
        cli_samples,
        pass_samples,
        CLI_TARGET,
        HIGH,
    )
    print()
    print(f"ps reply: {len(line):,} bytes; the echo baseline sends and reads back a")
    print("  JSON line of that size and parses it.")
    if not sv_samples:
        print(
            "supervisorctl: not installed in the benchmarks' private venv; "
            "`python bench/bench_supervision.py` installs it (then this row shows)."
        )
    p50 = {
        "ps": _stats.percentile(cli_samples, 50),
        "json": _stats.percentile(json_samples, 50),
        "pass": _stats.percentile(pass_samples, 50),
    }
    print(
        f"CLI ps --json p50 {_stats.fmt_ms(p50['json'])} = python "
        f"{_stats.fmt_ms(p50['pass'])} + pyorchestrate "
        f"{_stats.fmt_ms(p50['json'] - p50['pass'])}; the table adds "
        f"{_stats.fmt_ms(p50['ps'] - p50['json'])}"
    )
    return _stats.finish()


if __name__ == "__main__":
    sys.exit(main())
