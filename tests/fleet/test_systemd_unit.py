"""examples/systemd/pyorchestrate.service: what the docs promise of it, and
``systemd-analyze verify`` finds nothing to say about it (where it is installed)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = (
    Path(__file__).resolve().parents[2]
    / "examples"
    / "systemd"
    / "pyorchestrate.service"
)


def service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def test_the_unit_runs_the_fleet_restarts_on_failure_and_reloads_on_sighup() -> None:
    section = service()
    assert section["ExecStart"].split()[1:] == [
        "run",
        "/etc/pyorchestrate/fleet.toml",
    ]
    assert section["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert section["Restart"] == "on-failure"
    assert section["RestartPreventExitStatus"] == "2"  # an invalid file
    assert section["KillMode"] == "mixed"


def test_systemd_analyze_verify_accepts_it(short_tmp: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    program = str(Path(sys.executable).parent / "pyorchestrate")
    unit = short_tmp / "pyorchestrate.service"
    unit.write_text(
        UNIT.read_text().replace("/opt/pyorchestrate/bin/pyorchestrate", program)
    )
    result = subprocess.run(
        [analyze, "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
