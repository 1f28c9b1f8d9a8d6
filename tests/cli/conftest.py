"""Fixtures for the CLI tests: running orchestrators (always shut down) and the runner."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ._support import Fleet, Result, invoke_cli

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
def cli() -> Invoke:
    """Invoke the CLI in this process, its output captured (plain lines, no colour).

    Exceptions are not caught: a crash of the CLI fails the test with its traceback.
    """
    return invoke_cli
