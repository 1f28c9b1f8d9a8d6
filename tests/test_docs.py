"""The documentation site builds strictly, lists every page, and has the env table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")
yaml = pytest.importorskip("yaml")


def _nav_files(nav: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(nav, str):
        found.add(nav)
    elif isinstance(nav, list):
        for item in nav:
            found |= _nav_files(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            found |= _nav_files(value)
    return found


def _load_config() -> dict[str, Any]:
    # mkdocs.yml uses a !!python/name tag (the mermaid fence); skip such tags here.
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda *a: None)
    with (ROOT / "mkdocs.yml").open() as f:
        config: dict[str, Any] = yaml.load(f, Loader=Loader)
    return config


def test_every_page_is_in_the_nav() -> None:
    in_nav = _nav_files(_load_config()["nav"])
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages - in_nav == set(), "pages missing from mkdocs.yml nav"
    assert in_nav - pages == set(), "nav entries without a page"


def test_env_table_is_generated_from_the_settings() -> None:
    sys.path.insert(0, str(DOCS))
    try:
        import hooks
    finally:
        sys.path.remove(str(DOCS))
    table = hooks.env_table()
    assert "`PYORCHESTRATE_NOTIFY_TELEGRAM__TOKEN`" in table
    assert "`PYORCHESTRATE_NOTIFY_RULES__QUIET_HOURS__START`" in table
    assert "(computed at run time)" in table  # no machine-specific default paths


@pytest.mark.slow
def test_strict_build(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    env_page = (site / "reference" / "environment" / "index.html").read_text()
    assert "PYORCHESTRATE_NOTIFY_TELEGRAM__TOKEN" in env_page
    assert "{{ notifier_env_table }}" not in env_page
    lifecycle = (site / "explanation" / "lifecycle" / "index.html").read_text()
    assert 'class="mermaid"' in lifecycle
    assert "Keep a Changelog" in (site / "changelog" / "index.html").read_text()
    reference = (site / "reference" / "pyorchestrate" / "index.html").read_text()
    assert 'id="pyorchestrate.Orchestrator"' in reference  # lazy exports resolved


def test_the_lifecycle_diagram_is_the_transition_table() -> None:
    """The hand-drawn state diagram has exactly the edges of ``TRANSITIONS``."""
    import re

    from pyorchestrate.core.orchestrator.states import TRANSITIONS

    page = (
        Path(__file__).resolve().parents[1] / "docs/explanation/lifecycle.md"
    ).read_text()
    drawn = {
        (a, b) for a, b in re.findall(r"^\s+(\w+) --> (\w+)", page, re.M) if a != "[*]"
    }
    table = {(a.value, b.value) for a, targets in TRANSITIONS.items() for b in targets}
    assert drawn == table
