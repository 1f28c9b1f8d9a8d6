"""The dependency rule: the core never imports notifiers, not even lazily."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import sys
import pyorchestrate
from pyorchestrate import Orchestrator, OrchestratorEvent, LoopingThreadAgent
import pyorchestrate.core.orchestrator, pyorchestrate.core.control.server
import pyorchestrate.core.control.client, pyorchestrate.testing
loaded = sorted(m for m in sys.modules if m == "notifiers" or m.startswith("notifiers."))
print("LOADED", loaded)
"""


def test_importing_the_core_loads_no_notifier_module() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "LOADED []" in result.stdout, result.stdout


def _loaded_by_cli(*argv: str) -> str:
    """Run ``pyorchestrate ARGV`` in a fresh interpreter; its stdout, then a line
    ``LOADED [...]`` naming the notifier and channel modules it imported."""
    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['pyorchestrate', *{list(argv)!r}]\n"
        "try:\n"
        "    runpy.run_module('pyorchestrate', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in "
        "('notifiers', 'pydantic_settings', 'tenacity', 'telegram', 'apprise', "
        "'pydantic', 'rich', 'typer', 'click')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_the_cli_help_lists_the_notify_plugin_without_loading_it() -> None:
    """``pyorchestrate --help`` lists ``notify`` (an entry point, read from the
    installed metadata) and imports neither notifiers nor a CLI framework."""
    out = _loaded_by_cli("--help")
    assert "LOADED []" in out, out
    assert "notify" in out  # listed in the help


def test_ps_json_imports_no_third_party_module(short_tmp: Path) -> None:
    """The hot path (``ps --json``, here failing to connect) is standard library
    plus pyorchestrate's client: no pydantic, rich, typer or click."""
    out = _loaded_by_cli("ps", "--json", "--socket", str(short_tmp / "none.sock"))
    assert "LOADED []" in out, out


def test_notify_help_loads_only_the_light_notify_plugin() -> None:
    """``pyorchestrate notify --help`` loads ``notifiers`` (lazy), the
    ``notifiers.cli`` package and its modules, and the stdlib-only
    ``notifiers.redact`` (plus typer to run them); no channel library, no settings
    machinery."""
    out = _loaded_by_cli("notify", "--help")
    loaded = out[out.rindex("LOADED ") :]
    notifier_modules = [
        name
        for name in ast.literal_eval(loaded.removeprefix("LOADED ").splitlines()[0])
        if name.split(".")[0] in ("notifiers", "pydantic_settings", "tenacity")
        or name.split(".")[0] in ("telegram", "apprise")
    ]
    assert notifier_modules == [
        "notifiers",
        "notifiers._durations",  # stdlib only: "10m", shared with the settings
        "notifiers.cli",
        "notifiers.cli._common",
        "notifiers.cli._durations",
        "notifiers.cli._format",
        "notifiers.cli._statefile",
        "notifiers.cli.mutes",
        "notifiers.cli.outbox",
        "notifiers.cli.sending",
        "notifiers.cli.status",
        "notifiers.redact",
    ], out
    assert "Usage: pyorchestrate notify" in out


def test_no_core_source_names_notifiers() -> None:
    pattern = re.compile(
        r"^\s*(from|import)\s+notifiers\b|import_module\([\"']notifiers", re.M
    )
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "pyorchestrate").rglob("*.py")
        if pattern.search(path.read_text())
    ]
    assert offenders == []


def test_only_the_ray_backend_imports_ray() -> None:
    """``ray`` (a heavy, optional import) is imported in one module, lazily: never at
    the top of any module, and nowhere else in pyorchestrate or notifiers."""
    backend = ROOT / "pyorchestrate" / "core" / "agent" / "ray_backend.py"
    offenders = []
    for package in ("pyorchestrate", "notifiers"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            top_level = set(map(id, tree.body))
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module or ""]
                if not any(n == "ray" or n.startswith("ray.") for n in names):
                    continue
                if path != backend or id(node) in top_level:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_importing_the_orchestrator_does_not_import_ray() -> None:
    code = (
        "import sys\n"
        "from pyorchestrate import Orchestrator, LoopingThreadAgent\n"
        "Orchestrator(Orchestrator.Config(enable_command_interface=False)).shutdown()\n"
        "print('ray' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_no_module_imports_another_modules_private_names() -> None:
    """A name another module needs is public in its (possibly private) module:
    ``from .x import _helper`` across modules is an object spread over files."""
    offenders = []
    for package in ("pyorchestrate", "notifiers"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
                    continue
                base = path.parent
                for _ in range(max(node.level - 1, 0)):
                    base = base.parent
                if node.level == 0:
                    if not (node.module or "").startswith(
                        ("pyorchestrate", "notifiers")
                    ):
                        continue
                    base = ROOT
                parts = (node.module or "").split(".") if node.module else []
                source = base.joinpath(*parts)
                for alias in node.names:
                    name = alias.name
                    if not name.startswith("_") or name.startswith("__"):
                        continue
                    module = source / name
                    if module.with_suffix(".py").exists() or module.is_dir():
                        continue  # a private module, imported as a module
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


# Hierarchies that are the point of their classes, each a taxonomy or a public
# extension point, not one object assembled from partial classes: errors (caught by
# their base), pydantic models (a section adds fields to its base's), and the agent
# kinds of the seed's public API (``PeriodicAgent`` is a ``LoopingAgent``; users
# subclass ``LoopingThreadAgent`` and friends).
_TAXONOMIES = ("BaseException", "BaseModel", "BaseAgent")


def test_no_class_is_a_chain_of_the_projects_classes() -> None:
    """Issue 14's rule: no class whose MRO holds more than two classes of this
    project (itself and one base), but for the taxonomies above."""
    import importlib
    import inspect
    import pkgutil

    ours = {"pyorchestrate", "notifiers"}
    checked, chains = 0, []
    for package_name in sorted(ours):
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            module = importlib.import_module(info.name)
            for cls in vars(module).values():
                if not inspect.isclass(cls) or cls.__module__ != module.__name__:
                    continue
                checked += 1
                if any(base.__name__ in _TAXONOMIES for base in cls.__mro__):
                    continue
                chain = [
                    c.__qualname__
                    for c in cls.__mro__
                    if c.__module__.partition(".")[0] in ours
                ]
                if len(chain) > 2:
                    chains.append(f"{module.__name__}: {' -> '.join(chain)}")
    assert checked > 150
    assert chains == []
