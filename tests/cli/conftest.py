"""Fixtures for the CLI tests: running orchestrators (always shut down) and the runner."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from pyorchestrate.cli import _render
from pyorchestrate.cli._app import app

from ._support import WIDTH, Fleet

MakeFleet = Callable[..., Fleet]
Invoke = Callable[..., Result]


@pytest.fixture
def make_fleet(short_tmp: Path) -> Iterator[MakeFleet]:
    """Start fleets on sockets in a short temporary directory; shut them all down."""
    made: list[Fleet] = []

    def make(socket_name: str | None = "o.sock", **kwargs: Any) -> Fleet:
        path = short_tmp / socket_name if socket_name else None
        fleet = Fleet(path, **kwargs)
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        fleet.close()


@pytest.fixture
def fleet(make_fleet: MakeFleet) -> Fleet:
    """The standard fleet: forever (READY), boom and quick (TERMINATED)."""
    return make_fleet()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Invoke the CLI in-process (typer's runner); tables are rendered wide, no colour.

    Exceptions are not caught: a crash of the CLI fails the test with its traceback.
    """
    monkeypatch.setattr(
        _render, "console", Console(highlight=False, width=WIDTH, color_system=None)
    )
    monkeypatch.setattr(
        _render,
        "err_console",
        Console(stderr=True, highlight=False, width=WIDTH, color_system=None),
    )
    runner = CliRunner()

    def invoke(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
        return runner.invoke(
            app, [str(a) for a in args], env=env, catch_exceptions=False
        )

    return invoke
