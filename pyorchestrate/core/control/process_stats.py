"""psutil readings of the orchestrator's and its process agents' processes."""

from __future__ import annotations

import threading
from typing import Any

import psutil

__all__ = ["ProcessStats"]


class ProcessStats:
    """psutil readings per pid; keeps ``Process`` objects so CPU % is meaningful."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}
        self._lock = threading.Lock()

    def read(self, pid: int | None) -> dict[str, Any]:
        """CPU %, memory and threads of ``pid``; ``"N/A"`` for what cannot be read."""
        empty: dict[str, Any] = dict.fromkeys(
            ("cpu_percent", "memory_mb", "memory_percent", "threads"), "N/A"
        )
        if pid is None:
            return empty
        with self._lock:
            proc = self._procs.get(pid)
            if proc is None:
                try:
                    proc = psutil.Process(pid)
                except psutil.Error:
                    return empty
                self._procs[pid] = proc
        try:
            with proc.oneshot():
                return {
                    "cpu_percent": proc.cpu_percent(None),
                    "memory_mb": round(proc.memory_info().rss / 1_048_576, 2),
                    "memory_percent": round(proc.memory_percent(), 2),
                    "threads": proc.num_threads(),
                }
        except psutil.Error:
            with self._lock:
                self._procs.pop(pid, None)
            return empty
