"""Debian's binaries the browser and Prometheus tests drive, and the rule for their
absence: skip on a developer's machine, fail on CI (``scripts/test.sh`` installs them
there with apt, so a missing one is a broken install step, never a silent skip)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"  # in the prometheus package


def require(*binaries: str) -> None:
    """Skip the test (fail it on CI) unless every binary is installed."""
    missing = [binary for binary in binaries if not Path(binary).exists()]
    if not missing:
        return
    message = f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver prometheus)"
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"{message}: scripts/test.sh installs them on CI", pytrace=False)
    pytest.skip(message)
