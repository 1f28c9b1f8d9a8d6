"""Agents for the process-hygiene tests (module level, so process agents unpickle).

``HygieneProcess`` is one configurable process agent; its keyword arguments (all
optional, deliberately not class attributes) are:

* ``marker``: a token; each grandchild runs with ``PYO_HYGIENE_MARKER=<marker>`` in its
  environment, so a test finds it by scanning ``/proc/*/environ``;
* ``children``: how many grandchildren ``setup()`` starts (``python -c`` sleeping
  600 s); the grandchildren with an odd index ignore SIGTERM, the others die of it
  (after appending ``"grandchild-SIGTERM <time.monotonic()>"`` to ``log`` if there is
  one). ``setup()`` returns (and READY is sent) only once every grandchild runs with
  its handlers in place;
* ``ignore_stop``: ``execute()`` ignores the stop event (default ``False``);
* ``catch``: names of signals (``"SIGTERM"``, ``"SIGINT"``) the agent catches,
  records in ``log`` and otherwise ignores;
* ``log``: a file the agent appends ``"<SIGNAME> <time.monotonic()>"`` to for each
  caught signal, then ``"tick <time.monotonic()>"`` every 20 ms while it still runs
  (``time.monotonic`` is one clock for every process on Linux);
* ``crash_flag``: a path; ``execute()`` raises ``RuntimeError`` once it exists.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from pyorchestrate.core.agent import BaseProcessAgent

MARKER_ENV = "PYO_HYGIENE_MARKER"
"""The environment variable that marks every process a hygiene test starts."""

GRANDCHILD_CODE = """
import os, signal, sys, time
mode, log = sys.argv[1], sys.argv[2]
if mode == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
elif log:
    def record(signum, frame):
        with open(log, "a") as file:
            file.write(f"grandchild-SIGTERM {time.monotonic()!r}\\n")
        os._exit(0)
    signal.signal(signal.SIGTERM, record)
print("up", flush=True)
time.sleep(600)
"""
"""What a grandchild runs: sets its SIGTERM handling, says ``up``, sleeps 600 s."""


class HygieneProcess(BaseProcessAgent):
    """A process agent that starts grandchildren and may resist stopping (see above)."""

    def setup(self) -> None:
        super().setup()
        self._caught = False
        for name in getattr(self, "catch", ()):
            signal.signal(signal.Signals[name], self._record_signal)
        env = dict(os.environ)
        marker = getattr(self, "marker", None)
        if marker is not None:
            env[MARKER_ENV] = marker
        self._grandchildren: list[subprocess.Popen[str]] = []
        log = getattr(self, "log", None) or ""
        for index in range(getattr(self, "children", 0)):
            mode = "ignore-term" if index % 2 else "default"
            child = subprocess.Popen(
                [sys.executable, "-c", GRANDCHILD_CODE, mode, log],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                text=True,
            )
            self._grandchildren.append(child)
        for child in self._grandchildren:
            assert child.stdout is not None
            line = child.stdout.readline().strip()
            if line != "up":
                raise RuntimeError(f"grandchild {child.pid} did not start: {line!r}")

    def _record_signal(self, signum: int, frame: FrameType | None) -> None:
        self._caught = True
        self._log(f"{signal.Signals(signum).name} {time.monotonic()!r}")

    def _log(self, line: str) -> None:
        log = getattr(self, "log", None)
        if log is not None:
            with Path(log).open("a") as file:
                file.write(line + "\n")

    def execute(self) -> None:
        ignore_stop = getattr(self, "ignore_stop", False)
        crash_flag = getattr(self, "crash_flag", None)
        while ignore_stop or not self.stop_requested:
            if crash_flag is not None and Path(crash_flag).exists():
                raise RuntimeError("crashed on purpose")
            if self._caught:
                self._log(f"tick {time.monotonic()!r}")
            time.sleep(0.02)
