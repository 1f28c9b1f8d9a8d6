"""Run every benchmark, each in a fresh interpreter, and print their tables in turn.

Run: ``python bench/run_all.py [--quick]`` from any directory. Arguments are passed
to each benchmark; the exit code is non-zero if any benchmark failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCHMARKS = (
    "bench_start.py",
    "bench_death.py",
    "bench_callbacks.py",
    "bench_control.py",
    "bench_notify.py",
    "bench_alerts.py",
    "bench_supervision.py",
    "bench_commands.py",
    "bench_fleet.py",
    "bench_schedule.py",
)


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    failed = []
    began = time.perf_counter()
    for script in BENCHMARKS:
        t0 = time.perf_counter()
        # A fresh interpreter each: no forkserver, threads or imports carried over.
        code = subprocess.call([sys.executable, str(here / script), *argv])
        print(f"({script}: {time.perf_counter() - t0:.1f} s, exit code {code})")
        if code != 0:
            failed.append(script)
    print(f"\nall benchmarks: {time.perf_counter() - began:.1f} s")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
