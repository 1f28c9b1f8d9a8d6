"""One Ray cluster for the whole test session, bound to 127.0.0.1.

It is started the way the docs tell a user to start an external cluster
(``ray start --head --node-ip-address=127.0.0.1``), in a temp dir of its own, so its
processes are not children of the test process (the leak check stays as it is), and
at the end only the processes of that temp dir (and what they started) are ended:
never ``ray stop``, which would end every Ray cluster of the machine. Each test's
orchestrator connects to it with ``ray_address`` and disconnects at shutdown.

Where ``ray`` is not installed the tests skip, except on CI (``CI=true``), which
installs the ``[ray]`` extra: there they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pyorchestrate.core.agent.ray_backend import LOCAL_ENV

# Before ray is imported: Ray reads these once, at import.
for _key, _value in LOCAL_ENV.items():
    os.environ.setdefault(_key, _value)

try:
    import ray
except ImportError:  # pragma: no cover - CI installs the extra
    ray = None

RAY_BIN = Path(sys.executable).with_name("ray")


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            # One worker runs them all, with the one cluster (--dist loadgroup).
            item.add_marker(pytest.mark.xdist_group("ray"))
            item.add_marker(pytest.mark.process)


def _require_ray() -> None:
    if ray is not None and RAY_BIN.exists():
        return
    message = "ray is not installed (pip install 'pyorchestrate[ray]')"
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"{message}: CI installs it", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Cluster:
    """A Ray head started with ``ray start`` in a temp dir of its own."""

    def __init__(self, num_cpus: int = 2) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
        started = time.monotonic()
        subprocess.run(
            [
                str(RAY_BIN),
                "start",
                "--head",
                "--node-ip-address=127.0.0.1",
                f"--port={self.port}",
                f"--num-cpus={num_cpus}",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--temp-dir={self.temp_dir}",
            ],
            check=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # its daemons inherit the pipes: none here
            stderr=subprocess.DEVNULL,
            env={**os.environ, **LOCAL_ENV},
        )
        self.start_seconds = time.monotonic() - started
        self.roots = self._own_processes()

    def _own_processes(self) -> list[psutil.Process]:
        """The cluster's daemons: every process whose command line names its dir."""
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if self.temp_dir in cmdline:
                found.append(proc)
        return found

    def processes(self) -> list[psutil.Process]:
        """The daemons and everything they started (workers included)."""
        found: dict[int, psutil.Process] = {}
        for proc in self.roots + self._own_processes():
            try:
                if proc.is_running():
                    found[proc.pid] = proc
                    for child in proc.children(recursive=True):
                        found[child.pid] = child
            except psutil.Error:
                continue
        return list(found.values())

    def workers(self) -> list[psutil.Process]:
        """Its worker processes that host an agent's actor."""
        out = []
        for proc in self.processes():
            try:
                if "AgentHost" in proc.name() or "AgentHost" in " ".join(
                    proc.cmdline()
                ):
                    out.append(proc)
            except psutil.Error:
                continue
        return out

    def stop(self) -> None:
        """End the processes this cluster is made of (and only those): SIGKILL, as
        nothing of a test cluster needs saving (its GCS ignores SIGTERM for seconds)."""
        procs = self.processes()
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(procs, timeout=5)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@pytest.fixture(autouse=True)
def _needs_ray() -> None:
    """Every test here needs ray: skip without it (fail on CI)."""
    _require_ray()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Cluster]:
    """The session's Ray cluster on 127.0.0.1 (started on first use)."""
    _require_ray()
    cluster = Cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def ray_address(ray_cluster: Cluster) -> str:
    """The address a test's orchestrator connects to."""
    return ray_cluster.address
