"""The documentation site builds strictly, lists every page, and has the env table."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RAW_ROLE = re.compile(r":(?:class|meth|func|attr|data|exc|mod|obj):(?:`|<code>)[^<`]*")

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
    # Environment types show their pipes as pipes, not as an escaped "\\|".
    assert "<code>str &#124; None</code>" in env_page
    assert "\\|" not in env_page
    # The docstrings' Sphinx roles became links (docs/griffe_roles.py), none is raw.
    raw = {
        f"{page.relative_to(site)}: {m}"
        for page in site.rglob("*.html")
        for m in RAW_ROLE.findall(page.read_text("utf-8"))
    }
    assert raw == set()
    notifiers_page = (site / "reference" / "notifiers" / "index.html").read_text()
    assert (
        'href="#notifiers.RateLimiter"><code>RateLimiter</code></a>' in notifiers_page
    )


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


def test_env_table_types_are_code_with_real_pipes() -> None:
    sys.path.insert(0, str(DOCS))
    try:
        import hooks
    finally:
        sys.path.remove(str(DOCS))
    row = next(
        line
        for line in hooks.env_table().splitlines()
        if "`PYORCHESTRATE_NOTIFY_TELEGRAM__NAME`" in line
    )
    cells = [cell.strip() for cell in row.strip("|").split(" | ")]
    assert cells[1].startswith("<code>") and "&#124;" in cells[1], row
    assert "\\|" not in cells[1]


ROLES_MODULE = '''"""A module whose docstrings use Sphinx roles."""

import threading


class Present:
    """Documented; see :meth:`run`, :class:`~threading.Thread` and :func:`helper`."""

    def run(self) -> None:
        """Runs; made by :class:`Present` and waits for :meth:`_private`."""

    def _private(self) -> None:
        """Not documented."""


def helper() -> None:
    """Returns :data:`None`-free results of :meth:`Present.run`. BROKEN"""
'''


def _build_roles_site(tmp_path: Path, broken: str) -> subprocess.CompletedProcess[str]:
    project = tmp_path / "project"
    (project / "docs").mkdir(parents=True)
    (project / "rolesdemo.py").write_text(ROLES_MODULE.replace("BROKEN", broken))
    (project / "docs" / "index.md").write_text("# Demo\n\n::: rolesdemo\n")
    extension = DOCS / "griffe_roles.py"
    (project / "mkdocs.yml").write_text(
        "site_name: roles\n"
        "plugins:\n"
        "  - mkdocstrings:\n"
        "      handlers:\n"
        "        python:\n"
        "          paths: [.]\n"
        "          options:\n"
        "            show_source: false\n"
        f"            extensions: ['{extension}:SphinxRoles']\n"
    )
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", "site"],
        cwd=project,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_sphinx_roles_become_links_and_a_broken_one_fails_the_build(
    tmp_path: Path,
) -> None:
    good = _build_roles_site(tmp_path / "good", "")
    assert good.returncode == 0, good.stderr
    page = (tmp_path / "good" / "project" / "site" / "index.html").read_text()
    assert RAW_ROLE.findall(page) == []
    assert 'href="#rolesdemo.Present.run"><code>run</code></a>' in page
    assert 'href="#rolesdemo.helper"><code>helper</code></a>' in page
    assert 'href="#rolesdemo.Present"><code>Present</code></a>' in page
    assert 'href="#rolesdemo.Present.run"><code>Present.run</code></a>' in page
    assert "<code>Thread</code>" in page  # outside the package: code, no link
    assert '<span title="rolesdemo.Present._private"><code>_private</code>' in page

    broken = _build_roles_site(tmp_path / "broken", "See :class:`Absent`.")
    assert broken.returncode != 0, broken.stderr
    assert "Absent" in broken.stderr


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_docs_extra_alone_builds_the_site(tmp_path: Path) -> None:
    """README's recipe, ``pip install -e '.[docs]' && mkdocs build``, in a fresh venv.

    Nothing but the ``docs`` extra (and the package's own dependencies) is installed:
    the hook's ``notifiers.settings`` and the roles extension must find what they
    need there (pip's cache keeps this to ~30 s).
    """
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    bindir = env_dir / "bin"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYORCHESTRATE_", "PYTHON", "VIRTUAL_ENV", "PIP_"))
    }
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["NO_MKDOCS_2_WARNING"] = "1"
    install = subprocess.run(
        [
            *(str(bindir / "python"), "-m", "pip", "install", "--quiet"),
            *("--disable-pip-version-check", "-e", ".[docs]"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    site = tmp_path / "site"
    build = subprocess.run(
        [str(bindir / "mkdocs"), "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    env_page = (site / "reference" / "environment" / "index.html").read_text()
    assert "PYORCHESTRATE_NOTIFY_TELEGRAM__TOKEN" in env_page
