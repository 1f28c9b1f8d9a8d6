"""The benchmarks still run: each script, with ``--quick``, exits 0 and prints its table.

Figures are not checked here (speed is measured in bench/, never asserted in tests).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
HEADER = "| name"


HIGH_PERCENTILE = {"bench_control.py": "p99", "bench_notify.py": "p99"}
"""The upper percentile column of a script's table, if not p95."""


@pytest.mark.slow
@pytest.mark.process
@pytest.mark.parametrize(
    "script",
    [
        "bench_start.py",
        "bench_death.py",
        "bench_callbacks.py",
        "bench_control.py",
        "bench_notify.py",
        "bench_alerts.py",
        "bench_supervision.py",
    ],
)
def test_benchmark_runs_quick(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    output = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, output
    header = [line for line in result.stdout.splitlines() if line.startswith(HEADER)]
    assert header, output
    high = HIGH_PERCENTILE.get(script, "p95")
    for column in ("p50", high, "baseline p50", f"baseline {high}", "target"):
        assert column in header[0], output
    assert "child processes left behind: none" in result.stdout, output
    assert "Traceback" not in result.stderr, output
    assert "left behind" not in result.stderr, output


@pytest.mark.slow
@pytest.mark.process
@pytest.mark.timeout(120)  # above the 90 s the run itself is given (default: 60 s)
def test_run_all_runs_every_benchmark() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "run_all.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    output = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, output
    headers = [line for line in result.stdout.splitlines() if line.startswith(HEADER)]
    assert len(headers) == 7, output
