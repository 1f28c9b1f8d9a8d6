"""examples/monitoring/: the alert rules fire as documented (promtool's own rule
tests), the Prometheus config is valid, and the rules and the Grafana dashboard ask
only for metrics the dashboard's /metrics really has."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from notifiers.state import NotifierState
from pyorchestrate.web import build_app

from ._binaries import PROMTOOL, require
from .conftest import LOCAL, Fleet

MONITORING = Path(__file__).resolve().parents[2] / "examples" / "monitoring"
METRIC = re.compile(r"\b((?:pyorchestrate|notify)_[a-z_]+)")


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "rules", "pyorchestrate-rules.yml"],
        ["test", "rules", "pyorchestrate-rules.test.yml"],
        ["check", "config", "prometheus.yml"],
    ],
    ids=["check-rules", "rule-tests", "check-config"],
)
def test_promtool_accepts_the_examples(argv: list[str]) -> None:
    require(PROMTOOL)
    result = subprocess.run(
        [PROMTOOL, *argv],
        cwd=MONITORING,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _exported(client: TestClient) -> set[str]:
    """Every metric family /metrics declares (with or without samples now)."""
    names = set()
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            total = kind == "counter" and not name.endswith("_total")
            names.add(f"{name}_total" if total else name)
    return names


def test_the_examples_use_only_exported_metrics(fleet: Fleet, tmp_path: Path) -> None:
    state = tmp_path / "notify.sqlite3"
    NotifierState(state).close()  # the alerting metrics need a state file
    app = build_app(socket_path=fleet.socket, notify_state=str(state))
    with TestClient(app, base_url=LOCAL) as client:
        exported = _exported(client)
    board = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in board["panels"] for target in panel["targets"]]
    rules = (MONITORING / "pyorchestrate-rules.yml").read_text()
    used = {name for expr in [*exprs, rules] for name in METRIC.findall(expr)}
    assert used, "no metric found in the examples"
    assert used <= exported, sorted(used - exported)
    assert "pyorchestrate_agent_restarts_total" in used
    assert "notify_failed_total" in used
