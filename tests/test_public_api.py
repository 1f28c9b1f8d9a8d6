"""Every public module declares a sorted ``__all__`` that names what it defines."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import notifiers
import pyorchestrate


def _modules() -> list[ModuleType]:
    found: list[ModuleType] = []
    for package in (pyorchestrate, notifiers):
        found.append(package)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if any(part.startswith("_") for part in info.name.split(".")):
                continue
            if info.name.endswith("__main__"):
                continue
            found.append(importlib.import_module(info.name))
    return found


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then everything else."""
    if name.isupper() and len(name) > 1:
        return (0, name)
    return (1 if name[:1].isupper() else 2, name)


@pytest.mark.parametrize("module", _modules(), ids=lambda m: m.__name__)
def test_all_is_sorted_and_resolves(module: ModuleType) -> None:
    assert hasattr(module, "__all__"), f"{module.__name__} has no __all__"
    names = list(module.__all__)
    assert names == sorted(names, key=_isort_key), (
        f"{module.__name__}.__all__ is not sorted"
    )
    assert len(names) == len(set(names))
    for name in names:
        assert hasattr(module, name), f"{module.__name__}.__all__ names missing {name}"


@pytest.mark.parametrize("module", _modules(), ids=lambda m: m.__name__)
def test_all_lists_every_public_definition(module: ModuleType) -> None:
    defined = {
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", None) == module.__name__
    }
    missing = defined - set(module.__all__)
    assert not missing, (
        f"{module.__name__} defines public names not in __all__: {missing}"
    )


def test_seed_import_paths() -> None:
    from pyorchestrate.core.orchestrator import Orchestrator, RunMode
    from pyorchestrate.core.utilities.event import OrchestratorEvent

    assert Orchestrator.Config is pyorchestrate.OrchestratorConfig
    assert RunMode.DAEMON.value == "daemon"
    assert OrchestratorEvent.AGENT_STARTED.value == "agent_started"
    assert pyorchestrate.__version__ != "0.0.0"
