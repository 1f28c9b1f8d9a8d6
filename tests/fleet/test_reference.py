"""The fleet file reference (docs/reference/fleet.md) is generated from the models:
every key the loader takes is in it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pyorchestrate.core.orchestrator.config import OrchestratorConfig
from pyorchestrate.core.schedule import Schedule
from pyorchestrate.core.supervision_config import SupervisionConfig
from pyorchestrate.fleet._model import AgentTable, table_keys

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_key_of_the_fleet_file_is_in_the_reference() -> None:
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    page = (DOCS / "reference" / "fleet.md").read_text()
    rendered = hooks.on_page_markdown(page)
    assert "{{ fleet_toml_reference }}" not in rendered
    keys = {
        *("name", *OrchestratorConfig.model_fields),
        *(k for k in table_keys(AgentTable) if k not in ("supervision", "config")),
        *SupervisionConfig.model_fields,
        *("schedule" if k == "cron" else k for k in Schedule.model_fields),
        "notify.telegram.token",
        "notify.email.recipients",
        "notify.preset",
        "notify.rules.recovery",
    }
    missing = sorted(k for k in keys if f"| `{k}` |" not in rendered)
    assert missing == []
