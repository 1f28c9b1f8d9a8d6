"""Targets of the bare ``multiprocessing`` baselines: standard library only.

They live apart from ``_agents`` (which imports pyorchestrate) so that a bare spawn
child imports nothing of pyorchestrate, as a program without it would not.
"""

from __future__ import annotations

import time
from multiprocessing.connection import Connection

_LIFETIME = 60.0  # a bare child never outlives a benchmark, whatever happens


def signal_back(conn: Connection) -> None:
    """First line of the child: tell the parent it runs, then end."""
    conn.send_bytes(b"up")
    conn.close()


def sleep_until_killed(conn: Connection) -> None:
    """Tell the parent it runs, then sleep until killed (or ``_LIFETIME`` passes)."""
    conn.send_bytes(b"up")
    deadline = time.monotonic() + _LIFETIME
    while time.monotonic() < deadline:
        time.sleep(0.05)
