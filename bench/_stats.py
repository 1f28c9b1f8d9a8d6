"""Tiny helpers shared by the benchmarks: percentiles, the table, arrival stamps.

Standard library only (psutil, a dependency of pyorchestrate, is imported where it is
used): spawn and forkserver children re-run a benchmark's top level, and the bare
baselines must not pay for importing anything heavy.
"""

from __future__ import annotations

import atexit
import math
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

HEADER = ("name", "p50", "p95", "baseline p50", "baseline p95", "target")
_WIDTHS = (44, 12, 12, 12, 12, 28)

_STATE_MARK = "PYORCHESTRATE_BENCH_STATE"


def _private_state_home() -> None:
    """Process agents write their output to files under ``$XDG_STATE_HOME``: a
    benchmark's go to a directory of its own, removed at exit, not to the user's
    ``~/.local/state``. Its children (spawn and forkserver re-run this module) find
    it already set."""
    if os.environ.get(_STATE_MARK):
        return
    path = tempfile.mkdtemp(prefix="po-bench-state-")
    os.environ["XDG_STATE_HOME"] = os.environ[_STATE_MARK] = path
    atexit.register(shutil.rmtree, path, True)


_private_state_home()

WAIT_TIMEOUT = 10.0
"""Longest any benchmark waits for one event before giving up (seconds)."""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, interpolated linearly."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def p50_p95(values: Sequence[float]) -> tuple[float, float]:
    """The median and the 95th percentile of ``values``."""
    return percentile(values, 50), percentile(values, 95)


def fmt_ms(seconds: float) -> str:
    """Seconds as milliseconds, e.g. ``0.412 ms`` or ``212.5 ms``."""
    ms = seconds * 1e3
    return f"{ms:.1f} ms" if ms >= 100 else f"{ms:.3f} ms"


def fmt_rate(per_second: float) -> str:
    """A rate, e.g. ``31,204/s``."""
    return f"{per_second:,.0f}/s"


def print_title(title: str, **details: object) -> None:
    """A title line and one line of run details (machine, Python, samples)."""
    print(f"\n## {title}\n")
    facts = {
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        **details,
    }
    print(", ".join(f"{key}={value}" for key, value in facts.items()))
    print()


def print_header(high: int = 95) -> None:
    """The table header: name | p50 | p95 | baseline p50 | baseline p95 | target.

    ``high`` names the upper percentile column (``99``: p99 and baseline p99).
    """
    print_row(*(cell.replace("p95", f"p{high}") for cell in HEADER))
    print("|" + "|".join("-" * (w + 2) for w in _WIDTHS) + "|")


def print_row(*cells: str) -> None:
    """One row of the table, pipe-separated (valid Markdown)."""
    padded = [
        cell.rjust(width) if 0 < i < 5 else cell.ljust(width)
        for i, (cell, width) in enumerate(zip(cells, _WIDTHS, strict=True))
    ]
    print("| " + " | ".join(padded) + " |")


def _latency_cells(
    samples: Sequence[float], baseline: Sequence[float], high: int
) -> tuple[float, float, list[str]]:
    """p50 and the ``high`` percentile of ``samples``, the baseline's p50, and the
    four figure cells of a latency row."""
    p50, top = percentile(samples, 50), percentile(samples, high)
    b50, btop = percentile(baseline, 50), percentile(baseline, high)
    return p50, top, [fmt_ms(p50), fmt_ms(top), fmt_ms(b50), fmt_ms(btop)]


def latency_row(
    name: str,
    samples: Sequence[float],
    baseline: Sequence[float],
    target: float,
    high: int = 95,
) -> None:
    """Print a latency row; the target (seconds) is judged on the ``high`` percentile
    (p95 unless told), not asserted."""
    _, top, cells = _latency_cells(samples, baseline, high)
    verdict = "met" if top <= target else "MISSED"
    print_row(name, *cells, f"p{high} < {target * 1e3:g} ms: {verdict}")


def ratio_row(
    name: str,
    samples: Sequence[float],
    baseline: Sequence[float],
    max_ratio: float,
    high: int = 95,
) -> float:
    """Print a latency row judged on its p50 against the baseline's p50 in the same
    run: met when ``p50 <= max_ratio * baseline p50``. Returns the ratio."""
    p50, _, cells = _latency_cells(samples, baseline, high)
    ratio = p50 / percentile(baseline, 50)
    verdict = "met" if ratio <= max_ratio else "MISSED"
    print_row(name, *cells, f"p50 <= {max_ratio:g}x: {verdict} ({ratio:.2f}x)")
    return ratio


def rate_row(
    name: str,
    seconds_per_event: Sequence[float],
    baseline: Sequence[float],
    target: float,
) -> None:
    """Print a throughput row from per-round seconds per event.

    p50 is the median round; "p95" is the round at the 95th percentile of time per
    event, i.e. the slow side. The target (events/s) is judged on that slow figure.
    """
    p50, p95 = p50_p95(seconds_per_event)
    b50, b95 = p50_p95(baseline)
    verdict = "met" if 1 / p95 >= target else "MISSED"
    print_row(
        name,
        fmt_rate(1 / p50),
        fmt_rate(1 / p95),
        fmt_rate(1 / b50),
        fmt_rate(1 / b95),
        f">= {fmt_rate(target)}: {verdict}",
    )


def interleave(
    rounds: int, warmup: int, *samplers: Callable[[], float]
) -> list[list[float]]:
    """Call each sampler in turn, ``warmup + rounds`` times; drop the warm-up values.

    Interleaving puts the measurement and its baseline under the same machine load.
    """
    results: list[list[float]] = [[] for _ in samplers]
    for i in range(warmup + rounds):
        for sampler, found in zip(samplers, results, strict=True):
            value = sampler()
            if i >= warmup:
                found.append(value)
    return results


class Arrival:
    """An event callback that stamps when it ran (``time.perf_counter``) and wakes a waiter.

    Register it with ``orchestrator.register_event(event, arrival)``; call
    :meth:`clear` before causing the event and :meth:`wait` for the stamp.
    """

    def __init__(self) -> None:
        self._ran = threading.Event()
        self.at = 0.0
        self.kwargs: dict[str, Any] = {}

    def __call__(self, **kwargs: Any) -> None:
        self.at = time.perf_counter()
        self.kwargs = kwargs
        self._ran.set()

    def clear(self) -> None:
        """Forget the last arrival."""
        self._ran.clear()

    def wait(self, what: str = "event") -> float:
        """The stamp of the next arrival; raise ``TimeoutError`` after ``WAIT_TIMEOUT``."""
        if not self._ran.wait(WAIT_TIMEOUT):
            raise TimeoutError(f"{what} did not arrive within {WAIT_TIMEOUT} s")
        return self.at


def reap(process: BaseProcess) -> None:
    """Join a started bare child, killing it if it will not end in ``WAIT_TIMEOUT``."""
    process.join(WAIT_TIMEOUT)
    if process.exitcode is None:
        process.kill()
        process.join()


def leftover_children(timeout: float = 5.0) -> list[str]:
    """Child processes still alive, waiting up to ``timeout`` s for them to end.

    multiprocessing's forkserver and resource tracker are not counted: they are shared
    helpers that end with this process. Leftovers are killed and described.
    """
    import multiprocessing.forkserver
    import multiprocessing.resource_tracker

    import psutil

    helpers = {
        getattr(multiprocessing.forkserver._forkserver, "_forkserver_pid", None),
        getattr(multiprocessing.resource_tracker._resource_tracker, "_pid", None),
    }
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for child in psutil.Process().children(recursive=True):
            try:
                if child.pid in helpers or child.status() == psutil.STATUS_ZOMBIE:
                    continue
            except psutil.NoSuchProcess:
                continue
            alive.append(child)
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    described = []
    for child in alive:
        try:
            described.append(f"{child.pid} {' '.join(child.cmdline()[-2:])}")
            child.kill()
        except psutil.Error:
            pass
    return described


def finish() -> int:
    """Print whether child processes were left behind; return the exit code."""
    left = leftover_children()
    if left:
        print(f"\nchild processes left behind (killed now): {left}", file=sys.stderr)
        return 1
    print("\nchild processes left behind: none")
    return 0
