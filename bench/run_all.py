"""Run every benchmark, each in a fresh interpreter, and print their tables in turn.

Run: ``python bench/run_all.py [--quick]`` from any directory. Arguments are passed
to each benchmark; the exit code is non-zero if any benchmark failed.
``--only bench_a.py,bench_b.py`` runs those alone (in this order); ``--list`` prints
the benchmarks, one per line.
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
    "bench_web.py",
    "bench_chatops.py",
    "bench_ray.py",
)


def _select(argv: list[str]) -> tuple[tuple[str, ...], list[str]] | str:
    """The scripts to run and the arguments left for them, or a usage error."""
    scripts, rest, args = BENCHMARKS, [], iter(argv)
    for arg in args:
        if arg == "--only" or arg.startswith("--only="):
            value = arg.partition("=")[2] if "=" in arg else next(args, "")
            scripts = tuple(name for name in value.split(",") if name)
            unknown = [name for name in scripts if name not in BENCHMARKS]
            if unknown or not scripts:
                return f"--only: not a benchmark: {', '.join(unknown) or '(none)'}"
        else:
            rest.append(arg)
    return scripts, rest


def main(argv: list[str]) -> int:
    if argv == ["--list"]:
        print("\n".join(BENCHMARKS))
        return 0
    selected = _select(argv)
    if isinstance(selected, str):
        print(f"run_all.py: {selected} (see --list)", file=sys.stderr)
        return 2
    scripts, argv = selected
    here = Path(__file__).resolve().parent
    failed = []
    began = time.perf_counter()
    for script in scripts:
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
